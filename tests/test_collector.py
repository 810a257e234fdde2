import gzip
import random

import orjson
import urllib3

from benchmarks.streaming_ceiling import _PerEventWork, smallest_event
from devtools.collector.report import build_report, percentile
from devtools.sample_traffic import kong_record
from pipeline.config import build_config
from pipeline.options import parse_options
from tests.test_event import valid_event
from transforms.model.records import RawRecord


def post(collector, body, headers=None, compress=True):
    data = gzip.compress(body) if compress else body
    base = {"Content-Type": "application/json", "X-Moesif-Application-Id": "app"}
    if compress:
        base["Content-Encoding"] = "gzip"
    response = urllib3.request("POST", f"{collector.url}/v1/events/batch", body=data,
                               headers={**base, **(headers or {})})
    return response.status, orjson.loads(response.data)


def test_stores_a_valid_gzip_batch(collector):
    second = valid_event()
    second.update(transaction_id="t-2", user_id="u-1", company_id="c-1")
    status, _ = post(collector, orjson.dumps([valid_event(), second]))
    assert status == 201
    assert [e["transaction_id"] for e in collector.store.events()] == ["t-1", "t-2"]
    assert collector.store.counts() == {"events": 2, "distinct_transaction_ids": 2}


def test_accepts_plain_json_too(collector):
    status, _ = post(collector, orjson.dumps([valid_event()]), compress=False)
    assert status == 201


def test_the_streaming_ceiling_sends_events_the_collector_accepts(collector):
    """``benchmarks/streaming_ceiling.py`` measures the read and the sink with the smallest valid event: a
    rejected batch would end in dead letters and the benchmark would wait for arrivals that never come."""
    records = [RawRecord(orjson.dumps({"request": {"id": f"req-{n}"}}), f"test#{n}") for n in range(3)]
    events = [smallest_event(record) for record in records]
    status, _ = post(collector, b"[" + b",".join(event.json for event in events) + b"]")
    assert status == 201
    assert [event["transaction_id"] for event in collector.store.events()] == ["req-0", "req-1", "req-2"]
    assert [event.source for event in events] == ["test#0", "test#1", "test#2"]


def test_the_chunked_streaming_ceiling_sends_what_the_pipeline_would(collector, tmp_path):
    """``--ceiling chunked`` runs the pipeline's per-event functions: a Kong record becomes its masked event."""
    args, _ = parse_options([f"--input={tmp_path}", f"--output={tmp_path}", f"--dead_letter={tmp_path}"])
    record = kong_record("3.9", 7, random.Random(1))
    record["request"]["headers"]["authorization"] = "Bearer not-a-jwt-secret"
    events = _PerEventWork(build_config(args, None))(RawRecord(orjson.dumps(record), "test#7"))
    status, _ = post(collector, b"[" + b",".join(event.json for event in events) + b"]")
    assert status == 201
    [stored] = collector.store.events()
    assert stored["transaction_id"] == record["request"]["id"]
    assert stored["request"]["headers"]["authorization"] == "*****"
    assert b"not-a-jwt-secret" not in events[0].json


def test_missing_application_id_is_401(collector):
    status, answer = post(collector, orjson.dumps([valid_event()]), headers={"X-Moesif-Application-Id": ""})
    assert status == 401 and "Application-Id" in answer["error"]
    assert collector.store.counts()["events"] == 0


def test_malformed_batches_are_400_with_a_reason_and_nothing_is_stored(collector):
    bad_status = valid_event()
    bad_status["response"]["status"] = 700
    for body, fragment in (
        (b"{not json", "not JSON"),
        (orjson.dumps(valid_event()), "JSON array"),
        (orjson.dumps([valid_event(), bad_status]), "event 1: response.status 700"),
    ):
        status, answer = post(collector, body)
        assert status == 400 and fragment in answer["error"], answer
    assert collector.store.counts()["events"] == 0


def test_report_shows_status_classes_latency_percentiles_users_and_companies(collector):
    events = []
    for n in range(10):
        event = valid_event()
        event["transaction_id"] = f"t-{n}"
        event["response"]["status"] = 500 if n == 0 else 200
        event["response"]["time"] = f"2026-11-25T10:00:00.{(n + 1) * 10 + 5:03d}Z"  # latency (n+1)*10 ms
        event["user_id"] = "alice" if n < 7 else "bob"
        event["company_id"] = "acme"
        events.append(event)
    post(collector, orjson.dumps(events))
    report = build_report(collector.store)
    assert "events received: 10 (10 distinct transaction ids)" in report
    assert "2xx                 9" in report and "5xx                 1" in report
    route_line = next(line for line in report.splitlines() if "GET /x" in line)
    assert route_line.split()[2:] == ["10", "50", "90", "100"]  # count, p50, p90, p99 (nearest rank)
    assert "alice" in report and report.index("alice") < report.index("bob")
    assert "acme" in report


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert [percentile(values, f) for f in (0.5, 0.9, 0.99)] == [50, 90, 99]
    assert percentile([7], 0.99) == 7
