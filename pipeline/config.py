"""The pipeline's configuration, typed and built once from the options (``build_config``): what
``pipeline/graph.py`` builds the graph from, so that the graph never reads a command line.

Each stage's settings are the stage's own type (``DecodeSettings``, ``MaskSettings``, …); this module only
gathers them, with the few values that several stages share (whether the run is bounded, where batches go).
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

from pipeline.options import (
    application_id,
    decode_settings,
    hash_salt,
    identity_settings,
    kinesis_settings,
    mask_settings,
    route_settings,
)
from pipeline.runners import is_local_runner, pubsub_source_for
from transforms.io.kinesis import KinesisSettings
from transforms.io.sink import RetryPolicy
from transforms.io.sources import pubsub_source_name
from transforms.stages.decode import DecodeSettings
from transforms.stages.identity import IdentitySettings
from transforms.stages.masking import MaskSettings
from transforms.stages.routes import RouteSettings


@dataclass(frozen=True)
class FileSource:
    """A replay of files (``--input``), one record per line or per file."""

    pattern: str
    max_record_bytes: int


@dataclass(frozen=True)
class PubSubSource:
    """A Pub/Sub subscription or topic (``--subscription``, ``--topic``)."""

    subscription: str | None
    topic: str | None
    implementation: str  # native or cross_language (pipeline/runners.py)
    expansion_service: str | None

    @property
    def name(self) -> str:
        return pubsub_source_name(self.subscription or self.topic or "")


@dataclass(frozen=True)
class Batching:
    """How events are grouped into batches (SPEC §6)."""

    destination: str  # the key batches are grouped under: the API endpoint or the output directory
    batch_size: int
    max_delay_secs: float
    shards: int
    max_bytes: int


@dataclass(frozen=True)
class ApiDelivery:
    """Batches to a Moesif-compatible collection API (SPEC §7)."""

    endpoint: str
    application_id: str
    connect_timeout_ms: int
    send_timeout_ms: int
    retry: RetryPolicy
    batches_in_flight: int
    other_secrets: tuple[str, ...]  # kept out of delivery errors besides the application id (the hash salt)


@dataclass(frozen=True)
class FileDelivery:
    """Batches as JSON files in a directory (``--output``), for dry runs."""

    directory: str
    batches_in_flight: int


@dataclass(frozen=True)
class Archive:
    """Every masked event also to Parquet files in event-time windows (``--archive``)."""

    location: str
    window_secs: int
    allowed_lateness_secs: int
    shards: int


@dataclass(frozen=True)
class DeadLetters:
    """Where dead letters go and what they keep of their payload (SPEC §8)."""

    target: str  # a directory, or pubsub:projects/P/topics/T
    payload_policy: str  # raw, masked or none (--dead_letter_payload)


@dataclass(frozen=True)
class PipelineConfig:
    """Everything ``graph.build`` needs, each stage's part in the stage's own type."""

    source: FileSource | PubSubSource | KinesisSettings
    decode: DecodeSettings
    routes: RouteSettings
    identity: IdentitySettings
    mask: MaskSettings
    batching: Batching
    delivery: ApiDelivery | FileDelivery
    archive: Archive | None
    dead_letters: DeadLetters
    # The source whose records its reader holds until they are accounted for (transforms/io/acks.py): set only
    # on the local runner, for a source that holds records there (Pub/Sub, Kinesis).
    held_source: str | None = None

    @property
    def bounded(self) -> bool:
        """A file replay ends when its input is read; the other sources are streams."""
        return isinstance(self.source, FileSource)


def build_config(args: argparse.Namespace, runner: str | None) -> PipelineConfig:
    """The configuration of a run with the validated options ``args`` (``options.parse_options``) on ``runner``
    (the ``--runner`` value; None is the DirectRunner)."""
    local = is_local_runner(runner)
    source: FileSource | PubSubSource | KinesisSettings
    held_source = None
    if args.input:
        source = FileSource(args.input, args.max_record_bytes)
    elif args.kinesis_stream:
        source = kinesis_settings(args)
        if local:
            source = dataclasses.replace(source, checkpoint_delivered=True)
            held_source = source.source_name
    else:
        source = PubSubSource(args.subscription, args.topic, pubsub_source_for(runner, args.pubsub_source),
                              args.pubsub_expansion_service)
        if local and source.implementation == "native":
            held_source = source.name
    delivery: ApiDelivery | FileDelivery
    if args.output:
        delivery = FileDelivery(args.output, args.batches_in_flight)
    else:
        delivery = ApiDelivery(args.api_endpoint, application_id(args), args.connect_timeout, args.send_timeout,
                               RetryPolicy(max_retry_secs=args.max_retry_secs), args.batches_in_flight,
                               tuple(filter(None, [hash_salt(args)])))
    return PipelineConfig(
        source=source,
        decode=decode_settings(args),
        routes=route_settings(args),
        identity=identity_settings(args),
        mask=mask_settings(args),
        batching=Batching(args.output or args.api_endpoint, args.batch_size, args.max_batch_delay_secs, args.shards,
                          args.batch_max_bytes),
        delivery=delivery,
        archive=(Archive(args.archive, args.archive_window_secs, args.allowed_lateness_secs, args.shards)
                 if args.archive else None),
        dead_letters=DeadLetters(args.dead_letter, args.dead_letter_payload),
        held_source=held_source,
    )
