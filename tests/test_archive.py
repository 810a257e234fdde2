"""The Parquet archive (issue 8): rows equal the delivered events, windows and late data, and independence
from delivery in both directions."""
import glob
import json
from pathlib import Path

import apache_beam as beam
import orjson
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing import test_stream
from apache_beam.transforms.window import TimestampedValue

import schemas
from devtools.local_services import dead_letters_in, free_port
from tests.conftest import run_cli
from transforms.io.archive import ArchiveEvents, archive_schema, beyond_allowed_lateness, to_archive_row
from transforms.model.event import format_epoch_ms
from transforms.model.records import SourcedEvent

BASE_S = 1_795_600_800  # 2026-11-25T10:00:00Z: the start of a window of every size used here


def read_rows(root: Path) -> list[dict]:
    rows = []
    for path in sorted(glob.glob(str(root / "**" / "*.parquet"), recursive=True)):
        rows.extend(pq.ParquetFile(path).read().to_pylist())  # one file: no partition columns added
    return rows


def comparable(row: dict) -> dict:
    row = dict(row)
    row["event_time"] = int(row["event_time"].timestamp() * 1000)
    return row


def delivered_events(output: Path) -> list[dict]:
    return [event for path in glob.glob(str(output / "batch-*.json")) for event in json.loads(Path(path).read_text())]


def test_schema_follows_the_avro_schema():
    avro_names = [field["name"] for field in schemas.load("api_event")["fields"]]
    assert archive_schema().names == [*avro_names, "event_time", "route"]
    request = archive_schema().field("request").type
    assert str(request.field("headers").type) == "map<string, string>"


def test_replay_archives_exactly_the_delivered_events(tmp_path):
    result = run_cli("--input=samples/*.jsonl", f"--output={tmp_path / 'out'}", f"--dead_letter={tmp_path / 'dl'}",
                     f"--archive={tmp_path / 'lake'}", "--archive_window_secs=300", "--shards=2")
    assert result.returncode == 0, result.stderr[-2000:]
    delivered = delivered_events(tmp_path / "out")
    rows = read_rows(tmp_path / "lake")
    assert len(rows) == len(delivered) > 300
    expected = {event["transaction_id"]: comparable_expected(event) for event in delivered}
    assert {row["transaction_id"]: comparable(row) for row in rows} == expected
    routes = {row["route"] for row in rows}  # a few templates for ~200 distinct paths with ids
    assert len({row["request"]["uri"] for row in rows}) > 150 and len(routes) < 20
    assert {"/v1/orders/{id}", "/v1/carts/{id}", "/v1/users/me", "/orders/1.0.0/v1/orders/{id}"} <= routes
    for path in glob.glob(str(tmp_path / "lake" / "**" / "*.parquet"), recursive=True):
        relative = Path(path).relative_to(tmp_path / "lake")
        day, hour, name = relative.parts
        start, end, shard, pane = name.removeprefix("part-").removesuffix(".parquet").split("-")
        assert (day, hour) == ("dt=2026-11-25", f"hour={start[9:11]}") and shard in ("000", "001")
        assert pane == "pane0"
        times = [row["request"]["time"] for row in pq.read_table(path).to_pylist()]
        window_start = f"2026-11-25T{start[9:11]}:{start[11:13]}:{start[13:15]}"
        window_end = f"2026-11-25T{end[9:11]}:{end[11:13]}:{end[13:15]}"
        assert all(window_start <= time < window_end for time in times), (name, min(times), max(times))


def comparable_expected(event: dict) -> dict:
    """The documented mapping (``to_archive_row``) with absent optional columns as the nulls Parquet returns."""
    row = to_archive_row(event)
    expected = {name: row.get(name) for name in archive_schema().names}
    for side in ("request", "response"):
        if expected[side] is not None:
            struct = archive_schema().field(side).type
            expected[side] = {struct.field(n).name: row[side].get(struct.field(n).name)
                              for n in range(struct.num_fields)}
    return expected


def event_at(seconds: float, transaction_id: str) -> SourcedEvent:
    time_text = format_epoch_ms(int(seconds * 1000))
    return SourcedEvent(f"test#{transaction_id}", {
        "transaction_id": transaction_id,
        "request": {"time": time_text, "uri": "https://api.acme.io/x", "verb": "GET", "headers": {"a": "b"}},
        "response": {"time": time_text, "status": 200, "headers": {}},
        "direction": "Incoming", "weight": 1, "metadata": {"gateway": "test"},
    })


def test_streaming_windows_close_on_the_watermark_and_late_data_gets_late_files(tmp_path):
    lake = tmp_path / "lake"
    stream = (
        test_stream.TestStream()
        .advance_watermark_to(BASE_S)
        .add_elements([TimestampedValue(event_at(BASE_S + 10, "a1"), BASE_S + 10),
                       TimestampedValue(event_at(BASE_S + 20, "a2"), BASE_S + 20)])
        .add_elements([TimestampedValue(event_at(BASE_S + 70, "b1"), BASE_S + 70)])
        .advance_watermark_to(BASE_S + 65)  # window [0, 60) closes: its on-time file
        .add_elements([TimestampedValue(event_at(BASE_S + 30, "a-late"), BASE_S + 100)])  # late, within lateness
        .add_elements([TimestampedValue(event_at(BASE_S + 5, "too-late"), BASE_S + 400)])  # beyond lateness
        .advance_watermark_to(BASE_S + 125)  # window [60, 120) closes
        # 130 s old on arrival, less than window + lateness (180 s), but its window [0, 60) plus lateness
        # ended at 180: the GroupByKey would drop it, so it goes to its hour's late file.
        .advance_watermark_to(BASE_S + 185)
        .add_elements([TimestampedValue(event_at(BASE_S + 55, "end-of-window"), BASE_S + 185)])
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions([])
    options.view_as(StandardOptions).streaming = True
    with beam.Pipeline(options=options) as pipeline:
        _ = (pipeline | stream | ArchiveEvents(str(lake), window_secs=60, allowed_lateness_secs=120,
                                                         late_firing_delay_secs=0))
    files = {}
    for path in glob.glob(str(lake / "**" / "*.parquet"), recursive=True):
        files[Path(path).name] = sorted(row["transaction_id"] for row in pq.read_table(path).to_pylist())
        assert "dt=2026-11-25/hour=10" in path
    assert files == {
        "part-20261125T100000-20261125T100100-000-pane0.parquet": ["a1", "a2"],
        "part-20261125T100000-20261125T100100-000-late1.parquet": ["a-late"],
        "part-20261125T100100-20261125T100200-000-pane0.parquet": ["b1"],
        next(name for name in files if name.startswith("part-20261125T100000-20261125T110000-000-late-")):
            ["end-of-window", "too-late"],
    }


def test_an_event_is_beyond_lateness_once_its_window_and_lateness_ended_before_it_arrived():
    minute, lateness = 60_000, 120_000
    window_start = BASE_S * 1000
    assert not beyond_allowed_lateness(window_start + 59_000, window_start + 179_999, minute, lateness)
    assert beyond_allowed_lateness(window_start + 59_000, window_start + 180_000, minute, lateness)
    assert not beyond_allowed_lateness(window_start, window_start + 179_999, minute, lateness)
    assert not beyond_allowed_lateness(window_start + 59_999, window_start + 59_999, minute, 0)
    assert beyond_allowed_lateness(window_start + 59_999, window_start + 60_000, minute, 0)


def test_archive_failure_dead_letters_without_stopping_delivery(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the archive directory should be")
    result = run_cli("--input=samples/kong-3.x.jsonl", f"--output={tmp_path / 'out'}",
                     f"--dead_letter={tmp_path / 'dl'}", f"--archive={blocker / 'lake'}")
    assert result.returncode == 0, result.stderr[-2000:]
    delivered = delivered_events(tmp_path / "out")
    letters = dead_letters_in(tmp_path / "dl")
    assert len(delivered) == 100
    assert {(letter["stage"], letter["reason"]) for letter in letters} == {("archive", "archive_write_failed")}
    assert sorted(orjson.loads(letter["payload"])["transaction_id"] for letter in letters) == sorted(
        event["transaction_id"] for event in delivered)


def test_delivery_outage_does_not_stop_archiving(tmp_path):
    unreachable = f"http://127.0.0.1:{free_port()}"
    result = run_cli("--input=samples/kong-3.x.jsonl", f"--api_endpoint={unreachable}", "--max_retry_secs=1",
                     f"--dead_letter={tmp_path / 'dl'}", f"--archive={tmp_path / 'lake'}")
    assert result.returncode == 0, result.stderr[-2000:]
    letters = dead_letters_in(tmp_path / "dl")
    assert len(letters) == 100 and {letter["stage"] for letter in letters} == {"deliver"}
    assert sorted(row["transaction_id"] for row in read_rows(tmp_path / "lake")) == sorted(
        orjson.loads(letter["payload"])["transaction_id"] for letter in letters)
