"""Decoding (SPEC §3): one raw record → zero or more API events, and a dead letter for each bad part.

``decode_record`` is pure (no Beam) so it can be tested and benchmarked alone; ``DecodeRecords``
wraps it in a DoFn with a tagged dead-letter output and metrics.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import apache_beam as beam
import orjson
from apache_beam.metrics import Metrics

from transforms import formats
from transforms.dead_letters import DEAD_LETTER_TAG, dead_letter
from transforms.event import transaction_id_for
from transforms.formats.common import DecodeError
from transforms.records import RawRecord, SourcedEvent

_GZIP_MAGIC = b"\x1f\x8b"
_INFLATE_CHUNK = 64 * 1024


@dataclass(frozen=True)
class DecodeSettings:
    """Limits and overrides of the decode stage; see the matching options in ``pipeline/options.py``."""

    max_record_bytes: int = 1024 * 1024
    max_decompressed_bytes: int = 10 * 1024 * 1024
    input_format: str = "auto"


class DecodeResult(NamedTuple):
    events: list[SourcedEvent]
    dead_letters: list[dict[str, Any]]


@dataclass
class _Collector:
    raw: bytes
    source: str
    events: list[SourcedEvent] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, reason: str, detail: str, source: str | None = None, payload: bytes | None = None) -> None:
        self.dead_letters.append(
            dead_letter("decode", reason, detail, source or self.source, self.raw if payload is None else payload)
        )


def decode_record(record: RawRecord, settings: DecodeSettings = DecodeSettings()) -> DecodeResult:
    """All events in one raw record; never raises (a bug in a decoder becomes a `decoder_error` dead letter)."""
    out = _Collector(record.data, record.source)
    data = record.data
    if len(data) > settings.max_record_bytes:
        out.reject("record_too_large", f"{len(data)} bytes (limit {settings.max_record_bytes})")
        return DecodeResult(out.events, out.dead_letters)
    if data[:2] == _GZIP_MAGIC:
        try:
            data = _gunzip(data, settings.max_decompressed_bytes)
        except DecodeError as exc:
            out.reject(exc.reason, exc.detail)
            return DecodeResult(out.events, out.dead_letters)
    if not data.strip():
        out.reject("empty_input", "the record holds no data")
        return DecodeResult(out.events, out.dead_letters)
    format_name = record.format_hint or (None if settings.input_format == "auto" else settings.input_format)
    for index, (element, element_source, element_raw) in enumerate(_json_values(data, record.source, out)):
        _decode_element(element, element_source, element_raw, index, format_name, out)
    return DecodeResult(out.events, out.dead_letters)


def _gunzip(data: bytes, limit: int) -> bytes:
    """Inflates in bounded steps so that a gzip bomb is stopped at ``limit`` bytes, never held whole."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    parts: list[bytes] = []
    size = 0
    pending = data
    try:
        while pending:
            chunk = inflater.decompress(pending, _INFLATE_CHUNK)
            size += len(chunk)
            if size > limit:
                raise DecodeError("decompressed_size_limit_exceeded", f"inflates past {limit} bytes")
            parts.append(chunk)
            pending = inflater.unconsumed_tail
            if inflater.eof:
                # Concatenated gzip members are legal (`cat a.gz b.gz`): inflate the next one too.
                pending = inflater.unused_data
                if pending[:2] != _GZIP_MAGIC:
                    break
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        if not inflater.eof:
            raise DecodeError("corrupt_gzip", "the gzip stream is truncated")
    except zlib.error as exc:
        raise DecodeError("corrupt_gzip", str(exc)) from None
    return b"".join(parts)


def _json_values(data: bytes, source: str, out: _Collector):
    """Yields (object, source, raw bytes) for each top-level JSON object: one, an array's items, or NDJSON lines."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if b"\n" not in data.strip():
            out.reject(*_json_error(exc))
            return
        yield from _ndjson_values(data, source, out)
        return
    yield from _container_items(value, source, data, out)


def _ndjson_values(data: bytes, source: str, out: _Collector):
    for line_number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        line_source = f"{source}#line={line_number}"
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            reason, detail = _json_error(exc)
            out.reject(reason, detail, line_source, line)
            continue
        yield from _container_items(value, line_source, line, out)


def _container_items(value: Any, source: str, raw: bytes, out: _Collector):
    if isinstance(value, dict):
        yield value, source, raw
    elif isinstance(value, list):
        if not value:
            out.reject("empty_input", "an empty JSON array", source, raw)
        for position, item in enumerate(value):
            item_source = f"{source}#index={position}"
            if isinstance(item, dict):
                yield item, item_source, None
            else:
                out.reject("not_an_object", f"array item is a {type(item).__name__}", item_source, orjson.dumps(item))
    else:
        out.reject("not_an_object", f"the record is a JSON {type(value).__name__}", source, raw)


def _json_error(exc: orjson.JSONDecodeError) -> tuple[str, str]:
    message = str(exc)
    if "utf-8" in message.lower() or "surrogate" in message.lower():
        return "invalid_utf8", message[:300]
    return "invalid_json", message[:300]


def _decode_element(
    element: dict[str, Any],
    source: str,
    raw: bytes | None,
    index: int,
    format_name: str | None,
    out: _Collector,
) -> None:
    name = format_name or formats.detect(element)
    decoder = formats.DECODERS.get(name) if name else None
    try:
        if decoder is None:
            detail = f"format {name!r} is not supported yet" if name else "no known gateway format has this shape"
            raise DecodeError("unknown_format", detail)
        event = decoder.decode(element, transaction_id_for(out.raw, index))
    except DecodeError as exc:
        reason, detail = exc.reason, exc.detail
    except Exception as exc:  # a decoder bug must cost one dead letter, not the bundle
        reason, detail = "decoder_error", f"{name}: {type(exc).__name__}: {str(exc)[:200]}"
    else:
        out.events.append(SourcedEvent(source, event))
        return
    # An array item has no raw bytes of its own: it is re-serialized, but only when it is rejected.
    out.reject(reason, detail, source, raw if raw is not None else orjson.dumps(element))


class _DecodeFn(beam.DoFn):
    def __init__(self, settings: DecodeSettings):
        self._settings = settings
        self._records = Metrics.counter("gatewaystream", "records_read")
        self._events = Metrics.counter("gatewaystream", "events_decoded")

    def process(self, record: RawRecord):
        self._records.inc()
        result = decode_record(record, self._settings)
        self._events.inc(len(result.events))
        yield from result.events
        for letter in result.dead_letters:
            yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, letter)


class DecodeRecords(beam.PTransform):
    """RawRecord → SourcedEvent, with dead letters on the ``dead_letters`` output."""

    def __init__(self, settings: DecodeSettings):
        super().__init__()
        self._settings = settings

    def expand(self, records):
        return records | beam.ParDo(_DecodeFn(self._settings)).with_outputs(DEAD_LETTER_TAG, main="events")
