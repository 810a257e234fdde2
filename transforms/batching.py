"""Batching (SPEC §6): events are serialized, keyed by destination and shard, and grouped by count and time.

Beam's GroupIntoBatches closes a batch at ``batch_size`` events or ``max_batch_delay_secs`` after the
batch's first event (its processing-time timer is armed on the first element), and keeps the buffer
in the runner's state, so memory does not grow in-process while the sink is slow.
Still to come (issue 5): the ``batch_max_bytes`` bound, which Python's GroupIntoBatches lacks.
"""
from __future__ import annotations

import time
import zlib
from collections.abc import Callable

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.dead_letters import DEAD_LETTER_TAG, dead_letter, event_failure
from transforms.event import MAX_EVENT_BYTES, serialize
from transforms.records import SerializedEvent, SourcedEvent


def shard_key(destination: str, transaction_id: str, shards: int) -> str:
    """``destination#shard``; the shard is a stable hash of the transaction id, so a replay lands alike."""
    return f"{destination}#{zlib.crc32(transaction_id.encode()) % shards}"


class _SerializeAndKeyFn(beam.DoFn):
    def __init__(self, destination: str, shards: int):
        self._destination = destination
        self._shards = shards
        self._bytes = Metrics.distribution("gatewaystream", "event_bytes")

    def process(self, item: SourcedEvent):
        try:
            data = serialize(item.event)
        except Exception as exc:
            yield event_failure("batch", "serialize_error", exc, item.source, item.event)
            return
        if len(data) > MAX_EVENT_BYTES:
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTER_TAG,
                dead_letter("batch", "event_too_large", f"{len(data)} bytes (limit {MAX_EVENT_BYTES})",
                            item.source, data),
            )
            return
        self._bytes.update(len(data))
        key = shard_key(self._destination, item.event["transaction_id"], self._shards)
        yield key, SerializedEvent(item.source, data)


class BatchEvents(beam.PTransform):
    """SourcedEvent → ``(key, [SerializedEvent, …])`` batches, with oversize events as dead letters."""

    def __init__(
        self,
        destination: str,
        batch_size: int,
        max_batch_delay_secs: float,
        shards: int,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__()
        self._destination = destination
        self._batch_size = batch_size
        self._max_batch_delay_secs = max_batch_delay_secs
        self._shards = shards
        self._clock = clock

    def expand(self, events):
        # A typed key gives GroupIntoBatches a deterministic key coder (str) instead of a pickling one.
        keyed = events | "SerializeAndKey" >> beam.ParDo(
            _SerializeAndKeyFn(self._destination, self._shards)
        ).with_output_types(beam.typehints.KV[str, SerializedEvent]).with_outputs(DEAD_LETTER_TAG, main="events")
        batches = keyed.events | "GroupIntoBatches" >> beam.GroupIntoBatches(
            self._batch_size, self._max_batch_delay_secs, clock=self._clock
        )
        return {"batches": batches, DEAD_LETTER_TAG: keyed[DEAD_LETTER_TAG]}
