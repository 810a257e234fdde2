"""Batching (SPEC §6): events are serialized, keyed by destination and shard, and grouped by count and time.

Beam's GroupIntoBatches closes a batch at ``batch_size`` events or ``max_batch_delay_secs`` after the
batch's first event (its processing-time timer is armed on the first element), and keeps the buffer
in the runner's state, so memory does not grow in-process while the sink is slow. A bounded input (file
replay) is batched within each bundle instead, with no shuffle (``transforms/stages/grouping.py`` says why).

Python's GroupIntoBatches has no byte bound (Java's has ``ofByteSize``), so ``batch_max_bytes`` is applied
right after it: each batch is cut, in order, into the fewest runs whose JSON array (``[a,b,…]``) stays within
the bound. A batch therefore closes on count, time or bytes, whichever comes first. An event that cannot fit
a batch alone is a dead letter (``event_too_large``) before it is ever buffered.
"""
from __future__ import annotations

import time
import zlib
from collections.abc import Callable

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.io.dead_letters import DEAD_LETTER_TAG, dead_letter, event_failure
from transforms.model.event import MAX_EVENT_BYTES, serialize
from transforms.model.records import SerializedEvent, SourcedEvent
from transforms.stages.grouping import BatchByKey


def shard_key(destination: str, transaction_id: str, shards: int) -> str:
    """``destination#shard``; the shard is a stable hash of the transaction id, so a replay lands alike."""
    return f"{destination}#{zlib.crc32(transaction_id.encode()) % shards}"


def split_by_bytes(items: list[SerializedEvent], max_bytes: int) -> list[list[SerializedEvent]]:
    """``items`` cut in order into runs whose JSON array is at most ``max_bytes`` (an item alone may exceed
    it only if it was let through, which ``BatchEvents`` does not do)."""
    runs: list[list[SerializedEvent]] = []
    current: list[SerializedEvent] = []
    size = 2  # the brackets
    for item in items:
        added = len(item.json) + (1 if current else 0)  # the comma
        if current and size + added > max_bytes:
            runs.append(current)
            current, size, added = [], 2, len(item.json)
        current.append(item)
        size += added
    if current:
        runs.append(current)
    return runs


class _SplitByBytesFn(beam.DoFn):
    def __init__(self, max_bytes: int):
        self._max_bytes = max_bytes
        self._cut = Metrics.counter("gatewaystream", "batches_cut_by_bytes")

    def process(self, keyed_batch):
        key, items = keyed_batch
        runs = split_by_bytes(list(items), self._max_bytes)
        if len(runs) > 1:
            self._cut.inc(len(runs) - 1)
        for run in runs:
            yield key, run


class _SerializeAndKeyFn(beam.DoFn):
    def __init__(self, destination: str, shards: int, max_event_bytes: int):
        self._destination = destination
        self._shards = shards
        self._max_event_bytes = max_event_bytes
        self._bytes = Metrics.distribution("gatewaystream", "event_bytes")

    def process(self, item: SourcedEvent):
        try:
            data = serialize(item.event)
        except Exception as exc:
            yield event_failure("batch", "serialize_error", exc, item.source, item.event)
            return
        if len(data) > self._max_event_bytes:
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTER_TAG,
                dead_letter("batch", "event_too_large", f"{len(data)} bytes (limit {self._max_event_bytes})",
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
        batch_max_bytes: int = 1024 * 1024,
        bounded: bool = False,
    ):
        super().__init__()
        self._bounded = bounded
        self._batch_max_bytes = batch_max_bytes
        self._destination = destination
        self._batch_size = batch_size
        self._max_batch_delay_secs = max_batch_delay_secs
        self._shards = shards
        self._clock = clock

    def expand(self, events):
        # A typed key gives GroupIntoBatches a deterministic key coder (str) instead of a pickling one.
        keyed = events | "SerializeAndKey" >> beam.ParDo(
            _SerializeAndKeyFn(self._destination, self._shards, min(MAX_EVENT_BYTES, self._batch_max_bytes - 2))
        ).with_output_types(beam.typehints.KV[str, SerializedEvent]).with_outputs(DEAD_LETTER_TAG, main="events")
        batches = (
            keyed.events
            | "GroupIntoBatches" >> BatchByKey(self._batch_size, self._max_batch_delay_secs, self._bounded,
                                               self._clock)
            | "CutByBytes" >> beam.ParDo(_SplitByBytesFn(self._batch_max_bytes))
        )
        return {"batches": batches, DEAD_LETTER_TAG: keyed[DEAD_LETTER_TAG]}
