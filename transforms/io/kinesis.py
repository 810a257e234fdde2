"""Amazon Kinesis Data Streams → RawRecord, as a splittable DoFn that runs on every runner.

Why not Beam's ``ReadDataFromKinesis``: it is a cross-language transform (a Java expansion service jar
fetched from Maven when the pipeline is built), takes only static AWS keys, and cannot run on the local
DirectRunner. This source is plain Python and boto3, so credentials come from boto3's standard chain
(environment, profile, instance or workload role).

The graph: ``Impulse → DiscoverShards → Reshuffle → ReadShards (splittable)``.

- **One restriction per shard** found at start (its roots for ``TRIM_HORIZON``/``AT_TIMESTAMP``, its open
  shards for ``LATEST``). A restriction is the list of shard cursors its reader owns; each cursor is a shard
  and the sequence number of the last record handed to the pipeline, so a restart resumes after it.
- **Resharding.** When a shard is read to its end (a split or merge closed it, ``NextShardIterator`` is
  null), its reader replaces its cursor with cursors on the children from their first record: a child is
  read after its parent. A merged child is continued by the reader of its ``ParentShardId`` (or of its
  ``AdjacentParentShardId`` when the first parent has expired), so it is read once.
- **Checkpoints.** Readers claim positions before they emit records, so the runner's checkpoint (Dataflow,
  Flink) is always a position whose records were emitted. With ``checkpoint_dir`` set, each reader also
  writes its cursors to ``<dir>/<stream>/<reader>.json`` (any Beam filesystem) at most once a second, and a
  new pipeline starts from those files instead of the initial position: that is how a local run resumes. On
  the local DirectRunner (``checkpoint_delivered``) a file only moves past records whose events were all delivered or
  dead-lettered (``_DeliveredPositions``), so a killed local run loses nothing it had buffered.
- **Throttling.** ``ProvisionedThroughputExceededException`` (and other transient errors) back a shard off
  exponentially with full jitter, up to 10 s; the read goes on with the other shards.
- **Watermark**: the oldest of the reader's shards' positions, each the ``ApproximateArrivalTimestamp`` of
  its last record read, or "now" less ``DELIVERY_LAG_SECS`` when it is caught up (a record is readable shortly
  after it arrives). The oldest, because a record of a lagging shard that arrives behind the watermark can be
  dropped by an event-time window downstream (the archive, issue 8); a shard not yet read holds it. Beam 2.77's
  DirectRunner holds an SDF's output watermark at -∞ until it finishes, so locally event-time windows
  downstream close only when the pipeline ends.
- **KPL-aggregated records** are split into their user records (``transforms.io.kpl``).
"""
from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.iobase import RestrictionProgress, RestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.metrics import Metrics
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.utils.timestamp import Duration, Timestamp

from transforms.io.acks import AckLedger, held_records
from transforms.io.kpl import KplFormatError, user_records
from transforms.model.records import RawRecord

_log = logging.getLogger(__name__)

INITIAL_POSITIONS = ("LATEST", "TRIM_HORIZON", "AT_TIMESTAMP:<ISO 8601 time>")
_ARN = re.compile(r"^arn:aws[a-z-]*:kinesis:(?P<region>[a-z0-9-]+):\d{12}:stream/(?P<name>[A-Za-z0-9_.-]{1,128})$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
GET_RECORDS_LIMIT = 10_000  # Kinesis' maximum per GetRecords call
BUSY_SHARD_INTERVAL_SECS = 0.2  # Kinesis allows 5 GetRecords calls per second per shard
IDLE_SHARD_INTERVAL_SECS = 0.5  # a shard that returned nothing is asked again after this
MAX_BACKOFF_SECS = 10.0
# One call reads for at most this long or this many records, then defers the rest (a self-checkpoint): the
# records are returned as a list, so they reach the pipeline with the position they were claimed at.
MAX_CALL_SECS = 1.0
MAX_RECORDS_PER_CALL = 5_000
# Waiting blocks the DirectRunner's only worker thread: at 0.25 s the rest of the pipeline starved at low load
# (p50 latency 2.9 s at 300 events/s), at 0.02 s it does not (p50 1.9 s at 480 events/s).
IDLE_WAIT_SECS = 0.02
CHECKPOINT_WRITE_SECS = 1.0
_MAX_CACHED_ITERATORS = 1000
DELIVERY_LAG_SECS = 2.0  # a record is readable this long after its ApproximateArrivalTimestamp (~1 s on AWS)
_TRANSIENT_ERRORS = ("ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException",
                     "KMSThrottlingException", "InternalFailure", "ServiceUnavailable", "InternalServerError")


class KinesisConfigError(ValueError):
    """A Kinesis option that cannot work; the message names it."""


@dataclass(frozen=True)
class KinesisSettings:
    """Where and how to read; credentials are never here (boto3's chain supplies them)."""

    stream: str  # a stream name or ARN
    region: str | None = None
    endpoint_url: str | None = None
    initial_position: str = "LATEST"
    checkpoint_dir: str | None = None
    # On the local DirectRunner: the readers hold their records in the stream's AckLedger (transforms/io/acks.py),
    # so that a checkpoint saves only positions whose records were delivered or dead-lettered. Elsewhere the
    # runner's own checkpoints carry that guarantee.
    checkpoint_delivered: bool = False

    @cached_property  # read for every record's source: parsed once (frozen dataclasses allow it)
    def stream_name(self) -> str:
        return parse_stream(self.stream)[0]

    @cached_property
    def source_name(self) -> str:
        """What every record's source starts with, and the name its held records are acknowledged under."""
        return f"kinesis:{self.stream_name}"

    @property
    def region_name(self) -> str | None:
        return self.region or parse_stream(self.stream)[1]


def parse_stream(stream: str) -> tuple[str, str | None]:
    """(stream name, region from an ARN or None)."""
    if match := _ARN.match(stream):
        return match["name"], match["region"]
    if _NAME.match(stream):
        return stream, None
    raise KinesisConfigError(f"kinesis_stream: {stream!r} is neither a stream name nor a Kinesis stream ARN")


def parse_initial_position(text: str) -> tuple[str, datetime | None]:
    """("LATEST" | "TRIM_HORIZON" | "AT_TIMESTAMP", the timestamp for AT_TIMESTAMP)."""
    if text in ("LATEST", "TRIM_HORIZON"):
        return text, None
    if text.startswith("AT_TIMESTAMP:"):
        raw = text.removeprefix("AT_TIMESTAMP:")
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return "AT_TIMESTAMP", moment.astimezone(timezone.utc)
        raise KinesisConfigError(f"kinesis_initial_position: {raw!r} is not an ISO 8601 time with a zone")
    raise KinesisConfigError(f"kinesis_initial_position: {text!r} is not one of {', '.join(INITIAL_POSITIONS)}")


def kinesis_client(settings: KinesisSettings) -> Any:
    """A boto3 Kinesis client. Its own retries are off: throttling and transient errors are retried here,
    per shard, so one slow shard does not stall the others and every retry is counted."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "kinesis", region_name=settings.region_name, endpoint_url=settings.endpoint_url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30),
    )


def list_shards(client: Any, stream_name: str) -> list[dict[str, Any]]:
    shards: list[dict[str, Any]] = []
    response = client.list_shards(StreamName=stream_name)
    while True:
        shards.extend(response["Shards"])
        if not response.get("NextToken"):
            return shards
        response = client.list_shards(NextToken=response["NextToken"])


def stream_problem(settings: KinesisSettings) -> str | None:
    """One line saying why the stream cannot be read (not found, no access, endpoint unreachable), or None."""
    try:
        list_shards(kinesis_client(settings), settings.stream_name)
    except Exception as exc:  # noqa: BLE001 - any failure is reported as one line before the pipeline starts
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"{settings.stream_name}: {_error_code(exc) or type(exc).__name__}: {detail}"
    return None


def owning_parent(shard: dict[str, Any], listed_ids: set[str]) -> str | None:
    """The listed parent whose reader goes on to ``shard`` when it ends (None: ``shard`` is a root)."""
    for key in ("ParentShardId", "AdjacentParentShardId"):
        if shard.get(key) in listed_ids:
            return shard[key]
    return None


class ShardCursor(NamedTuple):
    """A shard and where its next record is: ``after`` a sequence number, else at ``start``."""

    shard_id: str
    start: str  # LATEST, TRIM_HORIZON or AT_TIMESTAMP:<iso>, used while ``after`` is None
    after: str | None = None

    def iterator_arguments(self) -> dict[str, Any]:
        if self.after is not None:
            return {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": self.after}
        kind, moment = parse_initial_position(self.start)
        return {"ShardIteratorType": kind, **({"Timestamp": moment} if moment else {})}


def pinned(cursor: ShardCursor, now: datetime | None = None) -> ShardCursor:
    """A LATEST cursor whose iterator was just taken, as ``AT_TIMESTAMP:<then - 1 s>``: if the restriction
    resumes elsewhere before its shard's first record (another worker, a restart), asking for LATEST again
    would skip what arrived in between. (Not at discovery: kinesalite hangs on an AT_TIMESTAMP iterator
    for a shard with no record after that time, which real Kinesis answers at once.)"""
    if cursor.start != "LATEST" or cursor.after is not None:
        return cursor
    moment = (now or datetime.now(timezone.utc)) - timedelta(seconds=1)
    return cursor._replace(start=f"AT_TIMESTAMP:{moment.isoformat()}")


class KinesisRestriction(NamedTuple):
    """The cursors one reader owns; empty when all of its shards are read to their end."""

    cursors: tuple[ShardCursor, ...]


class ReaderSpec(NamedTuple):
    """One reader: its name (the shard it started on, which names its checkpoint file) and its cursors."""

    stream: str
    name: str
    cursors: tuple[ShardCursor, ...]


def starting_readers(shards: list[dict[str, Any]], stream_name: str, initial_position: str) -> list[ReaderSpec]:
    """Readers for a stream read from ``initial_position``: the open shards for LATEST (closed shards have no
    new records), else the roots (shards whose parents have expired), whose readers go on to their children."""
    listed = {shard["ShardId"] for shard in shards}
    if initial_position == "LATEST":
        starts = [s for s in shards if "EndingSequenceNumber" not in s.get("SequenceNumberRange", {})]
    else:
        starts = [s for s in shards if owning_parent(s, listed) is None]
    return [ReaderSpec(stream_name, s["ShardId"], (ShardCursor(s["ShardId"], initial_position),)) for s in starts]


def checkpoint_path(checkpoint_dir: str, stream_name: str, reader: str) -> str:
    return FileSystems.join(checkpoint_dir, stream_name, f"{reader}.json")


def read_checkpoints(checkpoint_dir: str, stream_name: str) -> list[ReaderSpec]:
    """The readers saved under ``checkpoint_dir`` for ``stream_name`` (none if there are no files).

    A location that cannot be listed raises: starting over from the initial position instead would re-read the
    stream (TRIM_HORIZON) or skip what arrived while the pipeline was down (LATEST)."""
    pattern = FileSystems.join(checkpoint_dir, stream_name, "*.json")
    matches = FileSystems.match([pattern])[0].metadata_list  # a directory not made yet matches nothing
    readers = []
    for metadata in sorted(matches, key=lambda m: m.path):
        with FileSystems.open(metadata.path) as handle:
            saved = json.loads(handle.read())
        cursors = tuple(ShardCursor(c["shard_id"], c["start"], c.get("after")) for c in saved["cursors"])
        readers.append(ReaderSpec(stream_name, saved["reader"], cursors))
    return readers


def write_checkpoint(checkpoint_dir: str, reader: ReaderSpec) -> None:
    """Writes the reader's cursors to a temporary file, then renames it over the last checkpoint."""
    path = checkpoint_path(checkpoint_dir, reader.stream, reader.name)
    temporary = f"{path}.tmp-{random.getrandbits(32):08x}"
    body = json.dumps({"reader": reader.name, "cursors": [c._asdict() for c in reader.cursors]}).encode()
    with FileSystems.create(temporary) as handle:
        handle.write(body)
    FileSystems.rename([temporary], [path])


def one_reader_per_shard(checkpoint_dir: str, saved: list[ReaderSpec]) -> list[ReaderSpec]:
    """Gives each saved cursor its own reader again: after a split, a reader went on to both children, so a
    restart brings back one reader per shard. The new files are written before the old ones are deleted: a
    crash in between reads some records twice, never loses any."""
    readers = [ReaderSpec(reader.stream, cursor.shard_id, (cursor,)) for reader in saved for cursor in reader.cursors]
    names = {reader.name for reader in readers}
    for reader in readers:
        write_checkpoint(checkpoint_dir, reader)
    stale = [checkpoint_path(checkpoint_dir, r.stream, r.name) for r in saved if r.name not in names]
    if stale:
        FileSystems.delete(stale)
    return readers


class DiscoverShardsFn(beam.DoFn):
    """Impulse → one ReaderSpec per reader: from the checkpoint files if there are any, else from the stream's
    shards and the initial position."""

    def __init__(self, settings: KinesisSettings):
        self._settings = settings

    def process(self, _impulse: bytes) -> Iterator[ReaderSpec]:
        settings = self._settings
        if settings.checkpoint_dir and (saved := read_checkpoints(settings.checkpoint_dir, settings.stream_name)):
            readers = one_reader_per_shard(settings.checkpoint_dir, saved)
            _log.info("kinesis: resuming %d reader(s) of %s from %s", len(readers), settings.stream_name,
                      settings.checkpoint_dir)
            yield from readers
            return
        shards = list_shards(kinesis_client(settings), settings.stream_name)
        readers = starting_readers(shards, settings.stream_name, settings.initial_position)
        if settings.checkpoint_dir:
            # Every reader has a file from the start: a restart resumes only the readers it finds, so a reader
            # killed before its first save would otherwise never be read again.
            for reader in readers:
                write_checkpoint(settings.checkpoint_dir, reader)
        _log.info("kinesis: %s has %d shard(s); starting %d reader(s) at %s", settings.stream_name, len(shards),
                  len(readers), settings.initial_position)
        yield from readers


class KinesisRestrictionTracker(RestrictionTracker):
    """Claims are whole new cursor lists (a reader's progress). A split is a checkpoint: the primary keeps
    nothing more to do and the residual is every cursor as last claimed. Split and claim may come from
    different threads (the DirectRunner checkpoints from a timer), hence the lock."""

    def __init__(self, restriction: KinesisRestriction):
        self._restriction = restriction
        self._checkpointed = False
        self._lock = threading.Lock()

    def current_restriction(self) -> KinesisRestriction:
        with self._lock:
            return self._restriction

    def try_claim(self, cursors: tuple[ShardCursor, ...]) -> bool:
        with self._lock:
            if self._checkpointed:
                return False
            self._restriction = KinesisRestriction(cursors)
            return True

    def try_split(self, fraction_of_remainder: float):
        with self._lock:
            if self._checkpointed:
                return None
            self._checkpointed = True
            residual = self._restriction
            self._restriction = KinesisRestriction(())
            return self._restriction, residual

    def check_done(self) -> None:
        """Always done: a reader stops only after a checkpoint or when every cursor has ended."""

    def current_progress(self) -> RestrictionProgress:
        """Nothing counts as done in a stream; what remains is the shards still read. Portable runners (Prism,
        Flink) ask for it to report progress, and Beam's default raises."""
        with self._lock:
            return RestrictionProgress(completed=0, remaining=len(self._restriction.cursors))

    def is_bounded(self) -> bool:
        return False


class _KinesisRestrictionProvider(RestrictionProvider):
    def initial_restriction(self, reader: ReaderSpec) -> KinesisRestriction:
        return KinesisRestriction(reader.cursors)

    def create_tracker(self, restriction: KinesisRestriction) -> KinesisRestrictionTracker:
        return KinesisRestrictionTracker(restriction)

    def restriction_size(self, reader: ReaderSpec, restriction: KinesisRestriction) -> int:
        return len(restriction.cursors)

    def split(self, reader: ReaderSpec, restriction: KinesisRestriction):
        yield restriction


class _ShardPacing:
    """When each shard may be asked again, and its backoff after throttling or a transient error."""

    def __init__(self):
        self.next_call: dict[str, float] = {}
        self.failures: dict[str, int] = {}

    def ready(self, shard_id: str, now: float) -> bool:
        return self.next_call.get(shard_id, 0.0) <= now

    def answered(self, shard_id: str, had_records: bool, now: float) -> None:
        self.failures.pop(shard_id, None)
        self.next_call[shard_id] = now + (BUSY_SHARD_INTERVAL_SECS if had_records else IDLE_SHARD_INTERVAL_SECS)

    def failed(self, shard_id: str, now: float) -> float:
        attempt = self.failures.get(shard_id, 0) + 1
        self.failures[shard_id] = attempt
        delay = random.uniform(0, min(MAX_BACKOFF_SECS, 0.1 * 2 ** attempt))  # full jitter
        self.next_call[shard_id] = now + max(delay, BUSY_SHARD_INTERVAL_SECS)
        return delay

    def wait_secs(self, shard_ids: list[str], now: float) -> float:
        return max(0.0, min((self.next_call.get(s, 0.0) for s in shard_ids), default=0.0) - now)


def _timestamp(moment: datetime) -> Timestamp:
    """botocore's datetimes carry a local-zone tzinfo that Beam's from_utc_datetime refuses, even when UTC."""
    return Timestamp(micros=round(moment.timestamp() * 1_000_000))


def reader_watermark(positions: dict[str, Timestamp], shard_ids: list[str]) -> Timestamp | None:
    """The oldest position among a reader's shards, or None while one of them has none yet."""
    if not shard_ids or any(shard_id not in positions for shard_id in shard_ids):
        return None
    return min(positions[shard_id] for shard_id in shard_ids)


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def _is_transient(exc: Exception) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import ReadTimeoutError

    return isinstance(exc, (BotoConnectionError, ReadTimeoutError)) or _error_code(exc) in _TRANSIENT_ERRORS


class ReadShardsFn(beam.DoFn):
    """ReaderSpec → RawRecord, one restriction (a list of shard cursors) per reader; see the module doc."""

    def __init__(self, settings: KinesisSettings):
        self._settings = settings
        self._records = Metrics.counter("gatewaystream", "kinesis_records_read")
        self._user_records = Metrics.counter("gatewaystream", "kinesis_user_records")
        self._throttled = Metrics.counter("gatewaystream", "kinesis_throttled")
        self._shards_ended = Metrics.counter("gatewaystream", "kinesis_shards_ended")
        self._behind = Metrics.distribution("gatewaystream", "kinesis_millis_behind_latest")
        self._checkpoint_failures = Metrics.counter("gatewaystream", "kinesis_checkpoint_failures")

    def setup(self) -> None:
        self._client = kinesis_client(self._settings)
        self._iterators: dict[ShardCursor, str] = {}  # cursor → the shard iterator that continues it
        self._pacing = _ShardPacing()
        self._last_checkpoint_write: dict[str, float] = {}
        self._checkpoint_lock = threading.Lock()  # the reader's thread and the delivering one both write
        self._delivered: dict[str, _DeliveredPositions] = {}  # per reader, with checkpoint_delivered
        self._prefetched: dict[ShardCursor, tuple] = {}  # fetched while a split took the cursor away
        self._positions: dict[str, Timestamp] = {}  # shard → arrival time up to which it was read

    def process(self, reader: ReaderSpec,
                tracker=beam.DoFn.RestrictionParam(_KinesisRestrictionProvider()),
                watermark=beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider())):
        if not hasattr(self, "_client"):
            self.setup()  # Beam 2.77's DirectRunner runs a splittable DoFn without calling setup()
        began = time.monotonic()
        cursors = list(tracker.current_restriction().cursors)
        started_at = cursors
        emitted: list[beam.window.TimestampedValue] = []
        while cursors and len(emitted) < MAX_RECORDS_PER_CALL and time.monotonic() - began < MAX_CALL_SECS:
            now = time.monotonic()
            ready = [c for c in cursors if self._pacing.ready(c.shard_id, now)]
            if not ready:
                if emitted:
                    break
                # Nothing to ask for yet: wait a little here (the DirectRunner re-invokes a deferred reader at
                # once, ignoring the delay), the rest of the wait through the deferral below.
                time.sleep(min(self._pacing.wait_secs([c.shard_id for c in cursors], now), IDLE_WAIT_SECS))
                if time.monotonic() - began >= IDLE_WAIT_SECS:
                    break
                continue
            for cursor in ready:
                fetched = self._prefetched.pop(cursor, None) or self._get_records(cursor)
                if fetched is None:
                    continue
                records, successors, arrival = fetched
                position = cursors.index(cursor)
                claimed = cursors[:position] + successors + cursors[position + 1:]
                if not tracker.try_claim(tuple(claimed)):
                    # The runner split the restriction away: the residual holds ``cursor`` as it was. Keep what
                    # was fetched for whoever resumes it here.
                    self._prefetched[cursor] = fetched
                    self._save(reader, started_at, cursors, emitted, force=True)
                    return emitted
                cursors = claimed
                emitted.extend(records)
                if arrival is not None:
                    if len(self._positions) > _MAX_CACHED_ITERATORS:  # shards long gone (splits, other readers)
                        self._positions.clear()
                    self._positions[cursor.shard_id] = arrival
            self._advance_watermark(watermark, cursors)
        self._save(reader, started_at, cursors, emitted, force=not cursors)
        if cursors:
            tracker.defer_remainder(Duration(seconds=self._pacing.wait_secs([c.shard_id for c in cursors],
                                                                            time.monotonic())))
        return emitted

    def _advance_watermark(self, watermark: ManualWatermarkEstimator, cursors: list[ShardCursor]) -> None:
        candidate = reader_watermark(self._positions, [cursor.shard_id for cursor in cursors])
        if candidate is not None and candidate > (watermark.current_watermark() or Timestamp(0)):
            watermark.set_watermark(candidate)

    def _get_records(self, cursor: ShardCursor):
        """(records as timestamped RawRecords, the cursors that replace ``cursor``, watermark candidate), or
        None if the shard is backing off."""
        stream = self._settings.stream_name
        try:
            # An iterator stays cached under its cursor until its records are fetched, so a throttled call
            # retries with the same iterator (a fresh LATEST one would skip what arrived in between).
            iterator = self._iterators.get(cursor)
            if iterator is None:
                iterator = self._client.get_shard_iterator(
                    StreamName=stream, ShardId=cursor.shard_id, **cursor.iterator_arguments())["ShardIterator"]
                self._iterators[cursor] = iterator
                if cursor.after is None:
                    _log.info("kinesis: reading %s/%s from %s", stream, cursor.shard_id, cursor.start)
            response = self._client.get_records(ShardIterator=iterator, Limit=GET_RECORDS_LIMIT)
            # At a shard's end its children are listed in the same attempt: if that fails, the next attempt
            # reads the last records again rather than losing them.
            children = self._children(cursor.shard_id) if response.get("NextShardIterator") is None else None
            del self._iterators[cursor]
        except Exception as exc:
            if _error_code(exc) == "ExpiredIteratorException":
                self._iterators.pop(cursor, None)
                self._pacing.failed(cursor.shard_id, time.monotonic())
                return None
            if not _is_transient(exc):
                raise
            self._throttled.inc()
            delay = self._pacing.failed(cursor.shard_id, time.monotonic())
            _log.warning("kinesis: %s on %s/%s; retrying in %.1f s", _error_code(exc) or type(exc).__name__,
                         stream, cursor.shard_id, delay)
            return None
        cursor = pinned(cursor)
        records = response["Records"]
        self._pacing.answered(cursor.shard_id, bool(records), time.monotonic())
        self._behind.update(int(response.get("MillisBehindLatest", 0)))
        out = []
        for record in records:
            self._records.inc()
            out.extend(self._raw_records(cursor.shard_id, record))
        after = records[-1]["SequenceNumber"] if records else cursor.after
        next_iterator = response.get("NextShardIterator")
        if next_iterator is None:
            self._shards_ended.inc()
            successors = children
            _log.info("kinesis: shard %s/%s ended; reading its children %s", stream, cursor.shard_id,
                      [c.shard_id for c in successors] or "(none: they belong to another reader)")
        else:
            moved = ShardCursor(cursor.shard_id, cursor.start, after)
            if len(self._iterators) > _MAX_CACHED_ITERATORS:  # cursors handed to other workers by checkpoints
                self._iterators.clear()
            self._iterators[moved] = next_iterator
            successors = [moved]
        caught_up = not records or int(response.get("MillisBehindLatest", 1)) == 0
        arrival = (Timestamp.of(time.time() - DELIVERY_LAG_SECS) if caught_up
                   else _timestamp(records[-1]["ApproximateArrivalTimestamp"]))
        return out, successors, arrival

    def _raw_records(self, shard_id: str, record: dict[str, Any]) -> list[beam.window.TimestampedValue]:
        origin = f"{self._settings.source_name}/{shard_id}#seq={record['SequenceNumber']}"
        arrival = _timestamp(record["ApproximateArrivalTimestamp"])
        try:
            payloads = user_records(record["Data"])
        except KplFormatError as exc:
            # Handed on whole: the decoder dead-letters it with its payload, nothing is dropped.
            _log.warning("kinesis: %s is not a readable KPL record (%s); passing it on as one record", origin, exc)
            payloads = [record["Data"]]
        if len(payloads) == 1:
            self._user_records.inc()
            return [beam.window.TimestampedValue(RawRecord(payloads[0], origin), arrival)]
        self._user_records.inc(len(payloads))
        return [beam.window.TimestampedValue(RawRecord(payload, f"{origin}&sub={index}"), arrival)
                for index, payload in enumerate(payloads)]

    def _children(self, shard_id: str) -> list[ShardCursor]:
        shards = list_shards(self._client, self._settings.stream_name)
        listed = {shard["ShardId"] for shard in shards}
        return [ShardCursor(s["ShardId"], "TRIM_HORIZON") for s in shards if owning_parent(s, listed) == shard_id]

    def _save(self, reader: ReaderSpec, before: list[ShardCursor], cursors: list[ShardCursor],
              emitted: list[beam.window.TimestampedValue], force: bool = False) -> None:
        if not self._settings.checkpoint_dir:
            return
        if not self._settings.checkpoint_delivered:
            self._write_checkpoint(reader, lambda: cursors, force)
            return
        delivered = self._delivered.get(reader.name)
        if delivered is None:
            # Deliveries move the position (on the delivering thread): the local runner may not call the reader
            # again until the events it handed on are delivered, so waiting for its next call saved nothing.
            delivered = self._delivered[reader.name] = _DeliveredPositions(
                held_records(self._settings.source_name),
                on_ready=lambda reader=reader: self._write_checkpoint(reader, self._delivered[reader.name].ready))
        delivered.read(before, cursors, [record.value.source for record in emitted])
        self._write_checkpoint(reader, delivered.ready, force)

    def _write_checkpoint(self, reader: ReaderSpec, position: Callable[[], Sequence[ShardCursor] | None],
                          force: bool = False) -> None:
        """Writes ``position()`` for ``reader``, at most every CHECKPOINT_WRITE_SECS unless forced. The position
        is taken under the lock: a newer one written from another thread is never overwritten by an older."""
        with self._checkpoint_lock:
            now = time.monotonic()
            if not force and now - self._last_checkpoint_write.get(reader.name, 0) < CHECKPOINT_WRITE_SECS:
                return
            if (cursors := position()) is None:
                return
            self._last_checkpoint_write[reader.name] = now
            try:
                write_checkpoint(self._settings.checkpoint_dir, reader._replace(cursors=tuple(cursors)))
            except Exception as exc:  # noqa: BLE001 - the next save (within a second) writes the newer position
                self._checkpoint_failures.inc()
                _log.warning("kinesis: could not save the checkpoint of reader %s in %s: %s", reader.name,
                             self._settings.checkpoint_dir, exc)


def _record_of(source: str) -> tuple[str, str, str]:
    """(shard, sequence number, Kinesis record) of a source ``kinesis:<stream>/<shard>#seq=<n>[&sub=<i>]``."""
    record = source.split("&sub=", 1)[0]
    shard_id, sequence = record.rsplit("/", 1)[1].split("#seq=", 1)
    return shard_id, sequence, record


class _DeliveredPositions:
    """One reader's positions, each saved only once every record read up to it was delivered or written as a
    dead letter: the records are held in an AckLedger (``transforms/io/acks.py``), which acknowledges them
    here. So a local run killed with events still buffered reads them again when it restarts."""

    def __init__(self, ledger: AckLedger, on_ready: Callable[[], None] | None = None) -> None:
        self._ledger = ledger
        self._on_ready = on_ready  # called, outside the lock, when acknowledgements moved the position
        self._lock = threading.Lock()
        self._reads: deque[list[Any]] = deque()  # [serial, cursors after the read, records not yet accounted for]
        self._serial = 0
        self._ready: tuple[ShardCursor, ...] | None = None

    def read(self, before: list[ShardCursor], after: list[ShardCursor], sources: list[str]) -> None:
        """The reader moved from ``before`` to ``after`` handing on the records at ``sources``, in the order it
        read them. Each Kinesis record is a position of its own, so the checkpoint can move past the longest
        accounted-for prefix of a read (up to 5 000 records) instead of waiting for the whole of it."""
        with self._lock:
            if not sources and self._reads and self._reads[-1][1] == tuple(after):
                return  # an idle call: nothing new to wait for
            holds = []
            position = {cursor.shard_id: cursor for cursor in before}
            for index, (shard_id, sequence, record) in enumerate(map(_record_of, sources)):
                if shard_id not in position:  # a child shard first read in this call: its records go with the end
                    holds.extend((source, self._serial + 1) for source in sources[index:])
                    break
                last_of_record = index + 1 == len(sources) or _record_of(sources[index + 1])[2] != record
                if last_of_record:  # a KPL record's user records share its sequence number: after the last one
                    position[shard_id] = position[shard_id]._replace(after=sequence)
                self._serial += 1
                self._reads.append([self._serial, tuple(position[c.shard_id] for c in before), 1])
                holds.append((sources[index], self._serial))
            self._serial += 1
            self._reads.append([self._serial, tuple(after), sum(1 for _, serial in holds if serial == self._serial)])
            self._advance()
        for source, serial in holds:
            self._ledger.hold(source, str(serial), self)

    def ready(self) -> tuple[ShardCursor, ...] | None:
        """The furthest position whose records (and every earlier read's) are all accounted for."""
        with self._lock:
            return self._ready

    def acknowledge(self, ack_ids: list[str]) -> None:
        with self._lock:
            first_serial = self._reads[0][0] if self._reads else 0
            for ack_id in ack_ids:
                # Serials are consecutive from the oldest read still held: its index is the difference.
                index = int(ack_id) - first_serial
                if 0 <= index < len(self._reads):
                    self._reads[index][2] -= 1
            before = self._ready
            self._advance()
            moved = self._ready is not before
        if moved and self._on_ready is not None:
            self._on_ready()

    def extend(self, ack_ids: list[str]) -> None:
        """Records on a stream have no lease to renew."""

    def renew_every_secs(self) -> None:
        return None

    def _advance(self) -> None:
        while self._reads and self._reads[0][2] <= 0:
            self._ready = self._reads.popleft()[1]


class ReadKinesisRecords(beam.PTransform):
    """A Kinesis data stream → RawRecord (unbounded), timestamped with each record's arrival time."""

    def __init__(self, settings: KinesisSettings):
        super().__init__()
        parse_stream(settings.stream)
        parse_initial_position(settings.initial_position)
        self._settings = settings

    def expand(self, pbegin):
        return (
            pbegin
            | "Impulse" >> beam.Impulse()
            | "DiscoverShards" >> beam.ParDo(DiscoverShardsFn(self._settings))
            | "SpreadReaders" >> beam.Reshuffle()
            | "ReadShards" >> beam.ParDo(ReadShardsFn(self._settings))
        )
