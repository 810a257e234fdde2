"""The Parquet archive (issue 8): every masked event, also written to a data lake in event-time windows.

Layout: ``{archive}/dt=YYYY-MM-DD/hour=HH/part-{window start}-{window end}-{shard}-{pane}.parquet`` (the
window's start gives the partition). A file's name is unique per window, shard and pane and is the same on
a retry, and each file is written under a temporary name and renamed: a retried bundle rewrites its own
file with the same rows and never clobbers another's.

Columns (``ARCHIVE_SCHEMA``, derived from ``schemas/api_event.avsc``): ``request`` and ``response`` are
structs; headers are ``map<string, string>`` (``request.headers['user-agent']`` in DuckDB, a repeated
key/value field in BigQuery); ``metadata`` and JSON bodies are JSON text, because their keys differ by
gateway and their values are nested and typed, which a map of strings would flatten and a struct could not
hold across gateways; every JSON engine reads them (``json_extract``, ``JSON_VALUE``). ``event_time`` (the
request time as a UTC timestamp) is added for range filters, and ``route`` (``metadata.route``, the endpoint's
path template, ``transforms/stages/routes.py``) as a column of its own, to group by without parsing JSON.

Windows close on the watermark. Late events within ``allowed_lateness_secs`` are written as extra ``late``
panes of their window. Beam's GroupByKey drops, without a count, an event whose window ended more than the
allowed lateness before the watermark. Our sources' watermarks never pass an unread record's arrival time (see
``pipeline/workarounds/pubsub_read.py`` and ``transforms/io/kinesis.py``), so an event whose window plus lateness
ended by its own arrival time could be dropped: such an event is routed around the windows and written to a ``late``
file of its own hour (``beyond_allowed_lateness``), so that nothing is dropped silently. The test is on the
window's end, not on the event's age: an event from a window's last second that arrives two seconds later is
already behind a watermark that passed the window. A failed write dead-letters each of its events with stage
``archive``; delivery does not depend on the archive.
"""
from __future__ import annotations

import io
import logging
import time
import zlib
from types import MappingProxyType
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import Duration, Timestamp
from apache_beam.utils.windowed_value import PaneInfoTiming

import schemas
from transforms.io.dead_letters import DEAD_LETTER_TAG, dead_letter
from transforms.model.event import parse_iso_ms, serialize, to_avro_record
from transforms.model.records import SourcedEvent
from transforms.stages.grouping import GroupIntoBatchesWithElementCoder

_log = logging.getLogger(__name__)

LATE_FIRING_DELAY_SECS = 30  # late events of one window are gathered this long into one late pane
COMPRESSION = "zstd"
ROWS_PER_GROUP = 10_000

_AVRO_TO_ARROW = MappingProxyType(
    {"string": pa.string(), "int": pa.int32(), "long": pa.int64(), "boolean": pa.bool_()})


def _arrow_type(avro_type: Any) -> tuple[pa.DataType, bool]:
    """(arrow type, nullable) of an Avro type from our schemas."""
    if isinstance(avro_type, list):
        non_null = [branch for branch in avro_type if branch != "null"]
        inner, _ = _arrow_type(non_null[0])
        return inner, True
    if isinstance(avro_type, dict):
        if avro_type["type"] == "record":
            return pa.struct([_arrow_field(field) for field in avro_type["fields"]]), False
        if avro_type["type"] == "map":
            return pa.map_(pa.string(), _arrow_type(avro_type["values"])[0]), False
        return _arrow_type(avro_type["type"])
    return _AVRO_TO_ARROW[avro_type], False


def _arrow_field(avro_field: dict[str, Any]) -> pa.Field:
    arrow_type, nullable = _arrow_type(avro_field["type"])
    return pa.field(avro_field["name"], arrow_type, nullable=nullable)


def archive_schema() -> pa.Schema:
    """The Parquet schema: ``schemas/api_event.avsc`` field by field, plus ``event_time`` and ``route``."""
    fields = [_arrow_field(field) for field in schemas.load("api_event")["fields"]]
    return pa.schema([*fields, pa.field("event_time", pa.timestamp("ms", tz="UTC"), nullable=False),
                      pa.field("route", pa.string(), nullable=True)])


ARCHIVE_SCHEMA = archive_schema()


def to_archive_row(event: dict[str, Any]) -> dict[str, Any]:
    """One event as one archive row (the documented column mapping)."""
    row = to_avro_record(event)
    for side in ("request", "response"):
        if row.get(side) is not None:
            row[side] = {**row[side], "headers": list(row[side]["headers"].items())}
    row["event_time"] = parse_iso_ms(event["request"]["time"])
    metadata = event.get("metadata")
    route = metadata.get("route") if isinstance(metadata, dict) else None
    row["route"] = route if type(route) is str else None
    return row


def parquet_bytes(events: list[dict[str, Any]]) -> bytes:
    """The Parquet file of ``events``, in row groups of ROWS_PER_GROUP."""
    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, ARCHIVE_SCHEMA, compression=COMPRESSION) as writer:
        for start in range(0, len(events), ROWS_PER_GROUP):
            rows = [to_archive_row(event) for event in events[start:start + ROWS_PER_GROUP]]
            writer.write_table(pa.Table.from_pylist(rows, schema=ARCHIVE_SCHEMA))
    return buffer.getvalue()


def partition_path(root: str, window_start_ms: int) -> str:
    day_hour = time.strftime("dt=%Y-%m-%d/hour=%H", time.gmtime(window_start_ms // 1000))
    return FileSystems.join(root, *day_hour.split("/"))


def write_file(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically: a temporary name in the same directory, then a rename."""
    directory, name = path.rsplit("/", 1)
    if not FileSystems.exists(directory):
        FileSystems.mkdirs(directory)
    temporary = FileSystems.join(directory, f".tmp-{name}")
    with FileSystems.create(temporary) as handle:
        handle.write(data)
    if FileSystems.exists(path):  # a retry of this very pane: same rows, same name
        FileSystems.delete([path])
    FileSystems.rename([temporary], [path])


def beyond_allowed_lateness(event_ms: int, arrival_ms: int, window_ms: int, lateness_ms: int) -> bool:
    """Whether the event's fixed window, plus the allowed lateness, had ended by the time the event arrived.

    The watermark may stand at the arrival time when the event reaches the windows' GroupByKey, which then
    drops the event if ``window end + lateness`` is not after the watermark.
    """
    window_end_ms = event_ms - event_ms % window_ms + window_ms
    return window_end_ms + lateness_ms <= arrival_ms


class _TimestampByEventTime(beam.DoFn):
    """Gives each event its request time as its timestamp; routes events too late for any window around."""

    TOO_LATE = "too_late"

    def __init__(self, window_secs: int, allowed_lateness_secs: int):
        self._window_ms = window_secs * 1000
        self._lateness_ms = allowed_lateness_secs * 1000

    def process(self, item: SourcedEvent, arrival=beam.DoFn.TimestampParam):
        event_ms = parse_iso_ms(item.event["request"]["time"])
        # A bounded read (files) gives no arrival time, and its watermark passes no window before the end.
        if arrival > window.MIN_TIMESTAMP and beyond_allowed_lateness(
                event_ms, arrival.micros // 1000, self._window_ms, self._lateness_ms):
            yield beam.pvalue.TaggedOutput(self.TOO_LATE, item)
            return
        yield window.TimestampedValue(item, Timestamp(micros=event_ms * 1000))


class _WriteParquet(beam.DoFn):
    """Writes one window pane of one shard to one Parquet file; a failure dead-letters its events."""

    def __init__(self, root: str):
        self._root = root
        self._files = Metrics.counter("gatewaystream", "archive_files_written")
        self._events = Metrics.counter("gatewaystream", "events_archived")
        self._late = Metrics.counter("gatewaystream", "events_archived_late")

    def process(self, keyed, pane=beam.DoFn.PaneInfoParam, win=beam.DoFn.WindowParam):
        shard, items = keyed
        items = list(items)
        late = pane.timing == PaneInfoTiming.LATE
        if isinstance(win, window.IntervalWindow):
            start_ms, end_ms = win.start.micros // 1000, win.end.micros // 1000
            label = f"{'late' if late else 'pane'}{pane.index}"
        else:  # too late for any window: one file per hour and batch
            start_ms = parse_iso_ms(items[0].event["request"]["time"]) // 3_600_000 * 3_600_000
            end_ms, late = start_ms + 3_600_000, True
            label = f"late-{zlib.crc32(items[0].event['transaction_id'].encode()):08x}"
        name = (f"part-{time.strftime('%Y%m%dT%H%M%S', time.gmtime(start_ms // 1000))}-"
                f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(end_ms // 1000))}-{shard}-{label}.parquet")
        path = FileSystems.join(partition_path(self._root, start_ms), name)
        try:
            write_file(path, parquet_bytes([item.event for item in items]))
        except Exception as exc:  # the archive must never stop delivery: each event becomes a dead letter
            _log.error("archive write to %s failed: %s: %s", path, type(exc).__name__, exc)
            for item in items:
                yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter(
                    "archive", "archive_write_failed", f"{path}: {type(exc).__name__}: {exc}"[:300],
                    item.source, serialize(item.event)))
            return
        self._files.inc()
        self._events.inc(len(items))
        if late:
            self._late.inc(len(items))
        yield path


class ArchiveEvents(beam.PTransform):
    """Masked SourcedEvents → Parquet files in event-time windows; outputs ``files`` and ``dead_letters``."""

    def __init__(self, root: str, window_secs: int = 300, allowed_lateness_secs: int = 0, shards: int = 1,
                 late_firing_delay_secs: int = LATE_FIRING_DELAY_SECS):
        super().__init__()
        self._root = root
        # 0 fires a late pane per late arrival: what tests use, since TestStream on the DirectRunner cannot
        # drive the processing-time timer of AfterProcessingTime (the pipeline stalls).
        self._late_trigger = (trigger.AfterProcessingTime(late_firing_delay_secs) if late_firing_delay_secs
                              else trigger.AfterCount(1))
        self._window_secs = window_secs
        self._allowed_lateness_secs = allowed_lateness_secs
        self._shards = shards

    def _shard_of(self, item: SourcedEvent) -> tuple[str, SourcedEvent]:
        # A str key, like the batching keys: a deterministic key coder on every runner.
        return f"{zlib.crc32(item.event['transaction_id'].encode()) % self._shards:03d}", item

    def expand(self, events):
        timed = events | "EventTime" >> beam.ParDo(
            _TimestampByEventTime(self._window_secs, self._allowed_lateness_secs)
        ).with_outputs(_TimestampByEventTime.TOO_LATE, main="on_time")
        windowed = (
            timed.on_time
            | "Window" >> beam.WindowInto(
                window.FixedWindows(self._window_secs),
                trigger=trigger.AfterWatermark(late=self._late_trigger),
                accumulation_mode=trigger.AccumulationMode.DISCARDING,
                allowed_lateness=Duration(seconds=self._allowed_lateness_secs),
            )
            | "KeyByShard" >> beam.Map(self._shard_of).with_output_types(beam.typehints.KV[str, SourcedEvent])
            | "GroupByWindowAndShard" >> beam.GroupByKey()
        )
        too_late = (
            timed[_TimestampByEventTime.TOO_LATE]
            | "KeyTooLate" >> beam.Map(self._shard_of).with_output_types(beam.typehints.KV[str, SourcedEvent])
            | "BatchTooLate" >> GroupIntoBatchesWithElementCoder(10_000, LATE_FIRING_DELAY_SECS)
        )
        # Windowed panes and too-late batches are written by separate steps (Flatten needs one windowing),
        # and their outputs go back to the global window to join the pipeline's other dead letters.
        panes = windowed | "WritePanes" >> beam.ParDo(_WriteParquet(self._root)).with_outputs(
            DEAD_LETTER_TAG, main="files")
        late = too_late | "WriteTooLate" >> beam.ParDo(_WriteParquet(self._root)).with_outputs(
            DEAD_LETTER_TAG, main="files")
        return {
            name: (
                tuple(outputs[name] | f"Global{name.title()}{n}" >> beam.WindowInto(window.GlobalWindows())
                      for n, outputs in enumerate((panes, late)))
                | f"All{name.title()}" >> beam.Flatten()
            )
            for name in ("files", DEAD_LETTER_TAG)
        }
