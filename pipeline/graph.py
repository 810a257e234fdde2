"""The pipeline graph, as SPEC §1 says it: read → decode → identify → mask → batch → deliver,
with every stage's failures flattened into one dead-letter output."""
from __future__ import annotations

import argparse
import dataclasses

import apache_beam as beam
from apache_beam.options.pipeline_options import StandardOptions

from pipeline.options import (
    application_id,
    decode_settings,
    hash_salt,
    identity_settings,
    kinesis_settings,
    mask_settings,
    route_settings,
)
from transforms.io.archive import ArchiveEvents
from transforms.io.dead_letters import DEAD_LETTER_TAG, WriteDeadLetters
from transforms.io.kinesis import ReadKinesisRecords
from transforms.io.sink import DeliverBatches, RetryPolicy, WriteBatchFiles, WriteToAnalyticsApi
from transforms.io.sources import ReadFileRecords, ReadPubSubRecords, is_local_runner, pubsub_source_for
from transforms.stages.batching import BatchEvents
from transforms.stages.dead_letter_payload import PayloadMasker, apply_payload_policy
from transforms.stages.decode import DecodeRecords
from transforms.stages.identity import IdentifyUsers
from transforms.stages.masking import MaskEvents


def read_records(args: argparse.Namespace, runner: str | None = None) -> beam.PTransform:
    if args.input:
        return ReadFileRecords(args.input, args.max_record_bytes)
    if args.kinesis_stream:
        return ReadKinesisRecords(dataclasses.replace(kinesis_settings(args),
                                                      checkpoint_delivered=is_local_runner(runner)))
    return ReadPubSubRecords(subscription=args.subscription, topic=args.topic,
                             implementation=pubsub_source_for(runner, args.pubsub_source),
                             expansion_service=args.pubsub_expansion_service)


def deliver(args: argparse.Namespace) -> DeliverBatches:
    if args.output:
        return WriteBatchFiles(args.output, args.batches_in_flight)
    return WriteToAnalyticsApi(args.api_endpoint, application_id(args), args.connect_timeout, args.send_timeout,
                               RetryPolicy(max_retry_secs=args.max_retry_secs), args.batches_in_flight,
                               other_secrets=tuple(filter(None, [hash_salt(args)])))


def destination(args: argparse.Namespace) -> str:
    return args.output or args.api_endpoint


def build(pipeline: beam.Pipeline, args: argparse.Namespace) -> None:
    """Adds gatewaystream's transforms to ``pipeline``."""
    records = pipeline | "Read" >> read_records(args, pipeline.options.view_as(StandardOptions).runner)
    decoded = records | "Decode" >> DecodeRecords(decode_settings(args), route_settings(args))
    identified = decoded.events | "Identify" >> IdentifyUsers(identity_settings(args))
    masked = identified.events | "Mask" >> MaskEvents(mask_settings(args))
    batched = masked.events | "Batch" >> BatchEvents(
        destination(args), args.batch_size, args.max_batch_delay_secs, args.shards,
        batch_max_bytes=args.batch_max_bytes, bounded=bool(args.input),
    )
    delivered = batched["batches"] | "Deliver" >> deliver(args)
    archived = (
        [masked.events | "Archive" >> ArchiveEvents(args.archive, args.archive_window_secs,
                                                     args.allowed_lateness_secs, args.shards)]
        if args.archive else []
    )

    (
        (
            decoded[DEAD_LETTER_TAG],
            identified[DEAD_LETTER_TAG],
            masked[DEAD_LETTER_TAG],
            batched[DEAD_LETTER_TAG],
            delivered[DEAD_LETTER_TAG],
            *(archive[DEAD_LETTER_TAG] for archive in archived),
        )
        | "AllDeadLetters" >> beam.Flatten()
        | "DeadLetterPayloads" >> beam.Map(apply_payload_policy, args.dead_letter_payload,
                                           PayloadMasker(mask_settings(args)))
        | "WriteDeadLetters" >> WriteDeadLetters(args.dead_letter, bounded=bool(args.input))
    )
