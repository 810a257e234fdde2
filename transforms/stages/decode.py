"""Decoding (SPEC §3): one raw record → zero or more API events, and a dead letter for each bad part.

``decode_record`` is pure (no Beam) so it can be tested and benchmarked alone; ``DecodeRecords``
wraps it in a DoFn with a tagged dead-letter output and metrics.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

import apache_beam as beam
import orjson

from transforms.io.acks import Acknowledgements
from transforms.io.dead_letters import DEAD_LETTER_TAG, dead_letter
from transforms.model.errors import DecodeError
from transforms.model.event import TransactionIds
from transforms.model.records import RawRecord, RecordChunk, SourcedEvent
from transforms.stages.formats import CONTAINERS, DECODERS, FORMAT_CHOICES, SPLITTERS
from transforms.stages.formats.common import AsFormat, PayloadOrEntry, is_ascii_space
from transforms.stages.formats.wso2 import FORMAT as WSO2_FORMAT
from transforms.stages.formats.wso2 import metrics_log_line
from transforms.stages.gunzip import gunzip_layers, is_gzip
from transforms.stages.routes import Router, RouteSettings, add_route
from transforms.stages.shell import Stage, StageWork
from transforms.stages.strict_json import DEFAULT_MAX_DEPTH
from transforms.stages.strict_json import loads as strict_loads
from transforms.stages.worker_gc import tune_for_event_throughput

# NamedTuples built without their generated Python __new__ (a Python frame per event; ~0.3 µs each here).
_new_tuple = tuple.__new__


@dataclass(frozen=True)
class DecodeSettings:
    """Limits and overrides of the decode stage; see the matching options in ``pipeline/options.py``."""

    max_record_bytes: int = 1024 * 1024
    max_decompressed_bytes: int = 10 * 1024 * 1024
    input_format: str = "auto"
    max_depth: int = DEFAULT_MAX_DEPTH
    max_elements: int = 50_000


class DecodeResult(NamedTuple):
    events: list[SourcedEvent]
    dead_letters: list[dict[str, Any]]
    control_messages: int = 0  # CloudWatch Logs health checks: skipped by design, counted (SPEC §3)


# Each leaf format's name, decode and split functions (split is None for one event per object), taken out of
# their modules once: a module attribute is a dict lookup at every call.
_LEAVES = MappingProxyType({name: (name, module.decode, SPLITTERS.get(name)) for name, module in DECODERS.items()})
# Every object is checked for containers first, each by a key every container of its kind has, then for the
# leaf formats in the order of DECODERS (transforms/stages/formats/__init__.py says why the order matters).
_CONTAINER_SHAPES = tuple((module.MARKER_KEY, name, module.looks_like) for name, module in CONTAINERS.items())
_LEAF_SHAPES = tuple((module.looks_like, _LEAVES[name]) for name, module in DECODERS.items())
_TRANSACTION_SEEDS = MappingProxyType({name: getattr(module, "transaction_seed", None)
                                       for name, module in CONTAINERS.items()})

# A Firehose body holding a gzip CloudWatch Logs envelope holding access-log lines is as deep as real
# traffic nests; anything deeper is an attack on the decoder, not a gateway's output.
MAX_CONTAINER_NESTING = 2


def decode_record(record: RawRecord, settings: DecodeSettings = DecodeSettings()) -> DecodeResult:
    """All events in one raw record; never raises (a bug in a decoder becomes a `decoder_error` dead letter)."""
    decoder = _RecordDecoder(record, settings)
    if len(record.data) > settings.max_record_bytes:
        decoder.reject("record_too_large", f"{len(record.data)} bytes (limit {settings.max_record_bytes})",
                       record.source, record.data)
    elif decoder.forced_leaf is None and decoder.forced_container is None and decoder.forced_name:
        decoder.reject("unknown_format", f"format {decoder.forced_name!r:.40} is not one of "
                       f"{', '.join(FORMAT_CHOICES)}", record.source, record.data)
    else:
        try:
            decoder.decode_bytes(record.data, record.source, nesting=0)
        except _TooManyElements as exc:
            # The events before the limit stand; a replay of this dead letter repeats them with the same
            # transaction ids, which the collector deduplicates.
            decoder.add_dead_letter("record_too_large", f"holds more than {settings.max_elements} elements; "
                                    f"nothing after {exc.source} was decoded", record.source, record.data)
    return _new_tuple(DecodeResult, (decoder.events, decoder.dead_letters, decoder.control_messages))


class _TooManyElements(Exception):
    def __init__(self, source: str):
        super().__init__(source)
        self.source = source


class _RecordDecoder:
    """The state of decoding one top-level record: its outputs, the decompression budget it has left
    (shared by every gzip layer inside it, so nesting cannot multiply the limit) and the running event
    index that fallback transaction ids are derived from."""

    def __init__(self, record: RawRecord, settings: DecodeSettings):
        self.raw = record.data
        self.transaction_ids = None  # made for the first event without a gateway request id
        self.max_depth = settings.max_depth
        self.max_elements = settings.max_elements
        forced = record.format_hint or (None if settings.input_format == "auto" else settings.input_format)
        self.forced_name = forced
        self.forced_leaf = forced if forced is not None and forced in DECODERS else None
        self.forced_container = forced if forced is not None and forced in CONTAINERS else None
        self.inflate_budget = settings.max_decompressed_bytes
        self.next_index = 0
        self.elements = 0  # every object, line or item seen, good or bad, against settings.max_elements
        self.events: list[SourcedEvent] = []
        self.dead_letters: list[dict[str, Any]] = []
        self.control_messages = 0

    def reject(self, reason: str, detail: str, source: str, payload: bytes) -> None:
        """A dead letter for one element (object, line, item) that is not counted yet."""
        self._count(source)
        self.add_dead_letter(reason, detail, source, payload)

    def add_dead_letter(self, reason: str, detail: str, source: str, payload: bytes) -> None:
        self.dead_letters.append(dead_letter("decode", reason, detail, source, payload))

    def decode_bytes(self, data: bytes, source: str, nesting: int) -> None:
        if is_gzip(data):
            try:
                inflated, spent = gunzip_layers(data, self.inflate_budget)
            except DecodeError as exc:
                self.reject(exc.reason, exc.detail, source, data)
                return
            self.inflate_budget -= spent
            data = inflated
        # strip() copies the record: only a record that starts or ends with whitespace needs it.
        stripped = data.strip() if _is_space_at(data, 0) or _is_space_at(data, len(data) - 1) else data
        if not stripped:
            self.reject("empty_input", "the record holds no data", source, data)
            return
        # Top-level JSON: one object, an array's items, or newline-delimited lines (including WSO2
        # ``apim_metrics.log`` lines). Each level calls the next directly: generators between them cost
        # ~15 % of a small record's decode.
        if not _opens_json(data):
            if _has_newline(stripped):
                self._decode_lines(data, source, nesting)
            else:
                self._decode_line(data, source, nesting)
            return
        try:
            value = strict_loads(data, self.max_depth)
        except DecodeError as exc:
            if exc.reason != "invalid_json" or not _has_newline(stripped):
                self.reject(exc.reason, exc.detail, source, data)
                return
            self._decode_lines(data, source, nesting)
            return
        self._decode_items(value, source, data, None, nesting)

    def _decode_lines(self, data: bytes, source: str, nesting: int) -> None:
        # Lines are cut one at a time: a 10 MiB record of tiny lines never becomes a list of millions.
        start, line_number = 0, 0
        while start < len(data):
            end = data.find(b"\n", start)
            end = len(data) if end == -1 else end
            line, start, line_number = data[start:end], end + 1, line_number + 1
            if line.strip():
                self._decode_line(line, f"{source}#line={line_number}", nesting)

    def _decode_line(self, line: bytes, source: str, nesting: int) -> None:
        """One line: JSON, or (when it does not open like JSON) a WSO2 ``apim_metrics.log`` line."""
        metrics = None if _opens_json(line) else metrics_log_line(line)
        text, format_name = metrics if metrics else (line, None)
        try:
            value = strict_loads(text, self.max_depth)
        except DecodeError as exc:
            detail = f"apim_metrics.log line: {exc.detail}" if metrics else exc.detail
            self.reject(exc.reason, detail, source, line)
            return
        if metrics and isinstance(value, dict):
            value.setdefault("eventType", "fault" if format_name == "faulty" else "response")
        self._decode_items(value, source, line, WSO2_FORMAT if metrics else None, nesting)

    def _decode_items(self, value: Any, source: str, raw: bytes, format_name: str | None, nesting: int) -> None:
        """A top-level JSON value: an object, or an array of objects."""
        if type(value) is dict:
            self._decode_object(value, source, raw, format_name, nesting)
        elif type(value) is list:
            if not value:
                self.reject("empty_input", "an empty JSON array", source, raw)
            for position, item in enumerate(value):
                item_source = f"{source}#index={position}"
                if type(item) is dict:
                    self._decode_object(item, item_source, None, format_name, nesting)
                else:
                    self.reject("not_an_object", f"array item is a {type(item).__name__}", item_source,
                                orjson.dumps(item))
        else:
            self.reject("not_an_object", f"the record is a JSON {type(value).__name__}", source, raw)

    def _decode_object(
        self, value: dict[str, Any], source: str, raw: bytes | None, format_name: str | None, nesting: int
    ) -> None:
        container = self.forced_container if nesting == 0 and self.forced_container else None
        if container is None and format_name is None:
            container = _detect_container(value)
        if container is not None:
            self._unwrap(CONTAINERS[container], value, source, raw, nesting)
            return
        forced = format_name or self.forced_leaf
        leaf = _LEAVES[forced] if forced else _detect_leaf(value)
        if leaf is None:
            self.reject("unknown_format", "no known gateway format has this shape", source, _payload(raw, value))
            return
        name, decode, split = leaf
        if split is None:
            self._decode_leaf(name, decode, value, source, raw)
            return
        try:
            elements = split(value)
        except DecodeError as exc:
            self.reject(exc.reason, exc.detail, source, _payload(raw, value))
            return
        for label, element in elements:
            self._decode_leaf(name, decode, element, f"{source}#{label}", None)

    def _unwrap(self, module: Any, value: dict[str, Any], source: str, raw: bytes | None, nesting: int) -> None:
        if module.is_control_message(value):
            self.control_messages += 1
            return
        try:
            if nesting >= MAX_CONTAINER_NESTING:
                raise DecodeError("max_depth_exceeded", f"containers nest deeper than {MAX_CONTAINER_NESTING}")
            parts = module.unwrap(value)
        except DecodeError as exc:
            self.reject(exc.reason, exc.detail, source, _payload(raw, value))
            return
        seed = _TRANSACTION_SEEDS[module.FORMAT]
        seed = seed(value) if seed is not None else None
        outer_ids, outer_index = self.transaction_ids, self.next_index
        if seed is not None:
            # The container's own identity (a GCP entry's log name and insertId) names its events, so that the
            # same entry gets the same ids whatever message or file carried it.
            self.transaction_ids, self.next_index = TransactionIds(seed), 0
        try:
            for label, part in parts:
                self._decode_part(part, f"{source}#{label}", raw, value, nesting + 1)
        finally:
            if seed is not None:
                self.transaction_ids, self.next_index = outer_ids, outer_index

    def _decode_part(self, part: Any, source: str, raw: bytes | None, container: dict[str, Any], nesting: int) -> None:
        kind = type(part)
        if kind is bytes:
            self.decode_bytes(part, source, nesting)
        elif kind is dict:
            self._decode_object(part, source, None, None, nesting)
        elif kind is AsFormat:
            self._decode_object(part.value, source, None, part.format, nesting)
        elif kind is PayloadOrEntry:
            if _detect_container(part.payload) is not None or _detect_leaf(part.payload) is not None:
                self._decode_object(part.payload, source, None, None, nesting)
            else:
                self._decode_object(part.otherwise.value, source, None, part.otherwise.format, nesting)
        else:
            self.reject(part.reason, part.detail, source, _payload(raw, container))

    def _count(self, source: str) -> None:
        self.elements += 1
        if self.elements > self.max_elements:
            raise _TooManyElements(source)

    def _decode_leaf(
        self, name: str, decode: Callable[[dict[str, Any]], dict[str, Any]], element: dict[str, Any], source: str,
        raw: bytes | None,
    ) -> None:
        self._count(source)
        index = self.next_index
        self.next_index += 1
        try:
            event = decode(element)
        except DecodeError as exc:
            reason, detail = exc.reason, exc.detail
        except Exception as exc:  # a decoder bug must cost one dead letter, not the bundle
            reason, detail = "decoder_error", f"{name}: {type(exc).__name__}: {str(exc)[:200]}"
        else:
            if "transaction_id" not in event:
                if self.transaction_ids is None:
                    self.transaction_ids = TransactionIds(self.raw)
                event["transaction_id"] = self.transaction_ids.for_index(index)
            self.events.append(_new_tuple(SourcedEvent, (source, event)))
            return
        self.add_dead_letter(reason, detail, source, _payload(raw, element))


def _detect_container(value: dict[str, Any]) -> str | None:
    for marker, name, looks_like in _CONTAINER_SHAPES:
        if marker in value and looks_like(value):
            return name
    return None


def _detect_leaf(value: dict[str, Any]) -> tuple[str, Callable, Callable | None] | None:
    """The ``_LEAVES`` entry of the first leaf format whose shape ``value`` has."""
    for looks_like, leaf in _LEAF_SHAPES:
        if looks_like(value):
            return leaf
    return None


def _opens_json(data: bytes) -> bool:
    return len(data) > 0 and (data[0] == 123 or data[0] == 91)  # { or [


def _has_newline(data: bytes) -> bool:
    # Not ``b"\n" in data``: CPython's bytes.__contains__ first tries the argument as an int, and builds and
    # clears a TypeError with a formatted message each time (~0.5 µs a record).
    return data.find(b"\n") >= 0


def _is_space_at(data: bytes, position: int) -> bool:
    if not 0 <= position < len(data):
        return False
    byte = data[position]
    return is_ascii_space(byte)


def _payload(raw: bytes | None, value: Any) -> bytes:
    # An element of a container has no raw bytes of its own: it is re-serialized, only when rejected.
    return raw if raw is not None else orjson.dumps(value)


class DecodeRecord(StageWork):
    """RawRecord or RecordChunk → its events, each with its route, and its dead letters. With
    ``acknowledgements`` (the local runner's held source, ``transforms/io/acks.py``), each bundle ends by
    reporting how many items each of its records became."""

    counters = ("records_read", "events_decoded", "cloudwatch_control_messages_skipped")

    def __init__(self, settings: DecodeSettings, route_settings: RouteSettings = RouteSettings(),
                 acknowledgements: Acknowledgements | None = None):
        super().__init__()
        self._settings = settings
        self._route_settings = route_settings
        self._acknowledgements = acknowledgements

    def setup(self) -> None:
        self._router = Router(self._route_settings)
        tune_for_event_throughput()  # the first step of every worker that handles events

    def start_bundle(self) -> None:
        super().start_bundle()
        self._expected: list[tuple[str, int]] = []

    def process(self, element: RawRecord | RecordChunk):
        if type(element) is not RecordChunk:
            yield from self._outputs(self._decode(element))
            return
        # The whole chunk first, then its outputs: see RecordChunk.
        results = [self._decode(record) for record in element.records]
        for result in results:
            yield from self._outputs(result)

    def finish_bundle(self):
        if self._acknowledgements is not None:
            self._acknowledgements.expect(self._expected)
        return super().finish_bundle()

    def _decode(self, record: RawRecord) -> DecodeResult:
        counts = self.counts.added
        counts["records_read"] += 1
        result = decode_record(record, self._settings)
        if self._acknowledgements is not None:
            self._expected.append((record.source, len(result.events) + len(result.dead_letters)))
        counts["events_decoded"] += len(result.events)
        router = self._router
        for item in result.events:
            add_route(item.event, router)
        if result.control_messages:
            counts["cloudwatch_control_messages_skipped"] += result.control_messages
        return result

    @staticmethod
    def _outputs(result: DecodeResult):
        yield from result.events
        for letter in result.dead_letters:
            yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, letter)


class DecodeRecords(Stage):
    """RawRecord or RecordChunk → SourcedEvent with its route (``transforms/stages/routes.py``), with dead letters
    on the ``dead_letters`` output; see ``DecodeRecord`` for ``acknowledgements``."""

    def __init__(self, settings: DecodeSettings, route_settings: RouteSettings = RouteSettings(),
                 acknowledgements: Acknowledgements | None = None):
        super().__init__(DecodeRecord(settings, route_settings, acknowledgements))
