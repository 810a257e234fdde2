"""What travels between the stages: a raw record before decoding, an event with its origin after."""
from __future__ import annotations

import pickle
from typing import Any, NamedTuple

import orjson
from apache_beam import coders

# Both coders below write a source as text and a payload as bytes.
_SOURCE_AND_BYTES = coders.TupleCoder((coders.StrUtf8Coder(), coders.BytesCoder()))


class RawRecord(NamedTuple):
    """One input record as read: a Pub/Sub message, a line of a newline-delimited file, or a whole file."""

    data: bytes
    source: str  # where it came from, e.g. "pubsub:projects/p/subscriptions/s#id=123" or "file:/x.jsonl#line=4"
    format_hint: str | None = None  # the message's `format` attribute, if any


class RecordChunk(NamedTuple):
    """Consecutive records of one file, read as one element. A replay's decode step then runs over several records
    in a row, its code and tables hot in the CPU's caches, instead of taking each record between the later steps
    of the one before: ``benchmarks/RESULTS.md`` has the measure. Streaming sources send single records, each
    with its own timestamp."""

    records: list[RawRecord]


class SourcedEvent(NamedTuple):
    """A decoded API event and the source of the record it came from, kept for dead letters downstream."""

    source: str
    event: dict[str, Any]


class SerializedEvent(NamedTuple):
    """A masked event as the JSON bytes that will be sent."""

    source: str
    json: bytes


class SerializedEventCoder(coders.Coder):
    """Serialized events cross every grouping step (batching's GroupByKey and state). Without this coder
    Beam pickles each one (its fallback for a NamedTuple): ~10 % of a file replay's time went to pickle."""

    def encode(self, value: SerializedEvent) -> bytes:
        return _SOURCE_AND_BYTES.encode(value)

    def decode(self, encoded: bytes) -> SerializedEvent:
        return SerializedEvent(*_SOURCE_AND_BYTES.decode(encoded))

    def is_deterministic(self) -> bool:
        return True

    def to_type_hint(self):
        return SerializedEvent


coders.registry.register_coder(SerializedEvent, SerializedEventCoder)


class SourcedEventCoder(coders.Coder):
    """An event as its JSON (events are JSON-shaped by construction, SPEC §2) and its source as text. Without
    this coder Beam pickles each one (its fallback for a NamedTuple) wherever events are encoded: the archive's
    GroupByKey, stage boundaries on distributed runners, and the size sampling of every fused step. orjson
    encodes and decodes an event about twice as fast as pickle. An event orjson refuses (an integer beyond 64
    bits) is pickled instead, marked by a first byte that JSON text never starts with."""

    _PICKLED = b"\x00"

    def encode(self, value: SourcedEvent) -> bytes:
        try:
            data = orjson.dumps(value.event)
        except TypeError:
            data = self._PICKLED + pickle.dumps(value.event, protocol=pickle.HIGHEST_PROTOCOL)
        return _SOURCE_AND_BYTES.encode((value.source, data))

    def decode(self, encoded: bytes) -> SourcedEvent:
        source, data = _SOURCE_AND_BYTES.decode(encoded)
        event = pickle.loads(data[1:]) if data[:1] == self._PICKLED else orjson.loads(data)
        return SourcedEvent(source, event)

    def is_deterministic(self) -> bool:
        return False  # a value, never a key: no need to promise one encoding per event

    def to_type_hint(self):
        return SourcedEvent


coders.registry.register_coder(SourcedEvent, SourcedEventCoder)
