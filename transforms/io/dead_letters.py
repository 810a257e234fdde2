"""Dead-letter records (SPEC §8) and the transform that writes them (Avro files, or Pub/Sub messages).

Every stage that cannot process something emits one of these dicts (shaped like
``schemas/dead_letter.avsc``) on its dead-letter output; ``WriteDeadLetters`` gathers them all.
"""
from __future__ import annotations

import io
import logging
import time
import uuid
from typing import Any

import apache_beam as beam
import fastavro
import orjson
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

import schemas
from transforms.io.acks import Acknowledgements
from transforms.io.filesystems import ensure_directory
from transforms.stages.grouping import BatchByKey

MAX_PAYLOAD_BYTES = 64 * 1024
DEAD_LETTER_TAG = "dead_letters"  # the tagged output every stage sends its dead letters to
STAGES = ("read", "decode", "identify", "mask", "batch", "deliver", "archive")
DEAD_LETTER_FILE_PREFIX = "dead-letters-"

_log = logging.getLogger(__name__)


def dead_letter(
    stage: str,
    reason: str,
    detail: str,
    source: str,
    payload: bytes,
    attempts: int = 0,
    http_status: int | None = None,
    first_seen_ms: int | None = None,
) -> dict[str, Any]:
    """A dead-letter record; the payload is cut to 64 KiB and the cut is recorded."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    return {
        "stage": stage,
        "reason": reason,
        "detail": detail[:2000],
        "source": source,
        "payload": bytes(payload[:MAX_PAYLOAD_BYTES]),
        "payload_truncated": len(payload) > MAX_PAYLOAD_BYTES,
        "payload_masking": "raw",  # read and decode stages: set by --dead_letter_payload (dead_letter_payload.py)
        "attempts": attempts,
        "http_status": http_status,
        "first_seen": first_seen_ms if first_seen_ms is not None else int(time.time() * 1000),
    }


def unmasked_event_payload(event: dict[str, Any]) -> bytes:
    """The payload for an event that failed before or during masking: only its id, since the rest may
    hold secrets that must never reach a dead-letter store."""
    return orjson.dumps({"transaction_id": event.get("transaction_id")})


def event_failure(stage: str, reason: str, error: Exception, source: str, event: dict[str, Any]
                  ) -> beam.pvalue.TaggedOutput:
    """The dead-letter output for an event a stage could not process. The payload keeps only the event's
    id: before masking the event may hold secrets, and a failure is no time to trust that it is masked."""
    return beam.pvalue.TaggedOutput(
        DEAD_LETTER_TAG,
        dead_letter(stage, reason, f"{type(error).__name__}: {error}"[:300], source, unmasked_event_payload(event)),
    )


def accounted_sources(records: list[dict[str, Any]]) -> list[str]:
    """The sources of written dead letters that end an event's or a record's way through the pipeline. An
    ``archive`` dead letter does not: the archive is a side branch, and the same event is delivered as well."""
    return [record["source"] for record in records if record["stage"] != "archive"]


def read_dead_letter_file(path: str) -> list[dict[str, Any]]:
    """All records of one dead-letter Avro file (any Beam filesystem)."""
    with FileSystems.open(path) as handle:
        return list(fastavro.reader(handle))


class _WriteAvroBatch(beam.DoFn):
    """Writes each batch of dead letters to its own Avro file, via a temporary name and a rename.

    A file appears under its final name only once complete, so a reader (a replay, run_local's
    accounting) never sees half a file. A retried bundle writes a second file: dead letters are
    at-least-once, like delivery.
    """

    def __init__(self, directory: str, acknowledgements: Acknowledgements | None = None):
        self._directory = directory
        self._acknowledgements = acknowledgements
        self._written = Metrics.counter("gatewaystream", "dead_letters_written")

    def process(self, keyed_batch):
        _, records = keyed_batch
        buffer = io.BytesIO()
        fastavro.writer(buffer, schemas.dead_letter(), records, codec="deflate")
        name = f"{DEAD_LETTER_FILE_PREFIX}{uuid.uuid4().hex}.avro"
        final = FileSystems.join(self._directory, name)
        temporary = FileSystems.join(self._directory, f".tmp-{name}")
        with FileSystems.create(temporary) as handle:
            handle.write(buffer.getvalue())
        FileSystems.rename([temporary], [final])
        self._written.inc(len(records))
        if self._acknowledgements is not None:
            self._acknowledgements.finish(accounted_sources(records))
        _log.info("wrote %d dead letters to %s", len(records), final)
        yield final


PUBSUB_PREFIX = "pubsub:"
MAX_ATTRIBUTE_CHARS = 1024  # Pub/Sub attribute values are limited to 1024 bytes


def dead_letter_attributes(record: dict[str, Any]) -> dict[str, str]:
    """Every field of a dead letter but its payload, as Pub/Sub message attributes (strings)."""
    attributes = {key: str(value) for key, value in record.items() if key != "payload" and value is not None}
    attributes["detail"] = attributes["detail"].encode()[:MAX_ATTRIBUTE_CHARS].decode("utf-8", "ignore")
    attributes["source"] = attributes["source"].encode()[:MAX_ATTRIBUTE_CHARS].decode("utf-8", "ignore")
    return attributes


class _PublishBatch(beam.DoFn):
    """Publishes each dead letter as one Pub/Sub message: the payload as its data (so subscribing to the
    topic with ``--subscription`` replays it like any record) and the other fields as attributes."""

    def __init__(self, topic: str, acknowledgements: Acknowledgements | None = None):
        self._topic = topic
        self._acknowledgements = acknowledgements
        self._written = Metrics.counter("gatewaystream", "dead_letters_written")

    def setup(self):
        from google.cloud import pubsub_v1

        self._publisher = pubsub_v1.PublisherClient()

    def process(self, keyed_batch):
        _, records = keyed_batch
        futures = [self._publisher.publish(self._topic, record["payload"], **dead_letter_attributes(record))
                   for record in records]
        for future in futures:
            future.result(timeout=120)  # raises: the bundle is retried rather than a dead letter lost
        self._written.inc(len(futures))
        if self._acknowledgements is not None:
            self._acknowledgements.finish(accounted_sources(records))
        _log.info("published %d dead letters to %s", len(futures), self._topic)
        yield self._topic

    def teardown(self):
        publisher = getattr(self, "_publisher", None)
        if publisher is not None:
            publisher.stop()


class WriteDeadLetters(beam.PTransform):
    """Dead-letter dicts → Avro files ``dead-letters-<uuid>.avro`` in ``target`` (a directory, local,
    ``gs://`` or ``s3://``), or messages on a Pub/Sub topic when ``target`` is ``pubsub:projects/P/topics/T``.

    Batched with GroupIntoBatches (1000 records or 2 s) so that a stream of failures makes a few
    files, not one per record; works in batch and streaming alike. With ``acknowledgements`` (the local runner's
    held source, ``transforms/io/acks.py``), each written batch reports the items it finished
    (``accounted_sources``).
    """

    def __init__(self, target: str, max_delay_secs: float = 2.0, bounded: bool = False,
                 acknowledgements: Acknowledgements | None = None):
        super().__init__()
        self._target = target
        self._batching = BatchByKey(1000, max_delay_secs, bounded)
        self._acknowledgements = acknowledgements

    def expand(self, dead_letters):
        to_pubsub = self._target.startswith(PUBSUB_PREFIX)
        if not to_pubsub:
            ensure_directory(self._target)
        write = (_PublishBatch(self._target.removeprefix(PUBSUB_PREFIX), self._acknowledgements) if to_pubsub
                 else _WriteAvroBatch(self._target, self._acknowledgements))
        return (
            dead_letters
            | "CountByReason" >> beam.Map(_count_dead_letter)
            | "KeyDeadLetters" >> beam.Map(lambda record: ("dead-letters", record))
            | "BatchDeadLetters" >> self._batching
            | ("PublishDeadLetters" if to_pubsub else "WriteAvro") >> beam.ParDo(write)
        )


def _count_dead_letter(record: dict[str, Any]) -> dict[str, Any]:
    Metrics.counter("gatewaystream.dead_letters", f"{record['stage']}:{record['reason']}").inc()
    return record
