"""The Kinesis source end to end: records put on a real local Kinesis server (kinesalite on 127.0.0.1), read by
``python -m pipeline --kinesis_stream`` (streaming, DirectRunner), delivered to the real local collector."""
from __future__ import annotations

import gzip
import http.client
import os
import random
import signal
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from devtools.local_services import (
    LOCAL_AWS_ENVIRONMENT,
    create_stream,
    dead_letters_in,
    local_kinesis_client,
    put_records,
    start_pipeline,
    wait_for,
)
from devtools.sample_traffic import aws_access_log, cloudwatch_envelope, kong_record
from tests.conftest import APPLICATION_ID, run_cli
from tests.test_kinesis_unit import aggregate
from transforms.io.kinesis import CHECKPOINT_WRITE_SECS, MAX_RECORDS_PER_CALL, read_checkpoints

pytestmark = pytest.mark.integration


def kong_records(count: int, first: int = 0) -> list[bytes]:
    rng = random.Random(first)  # request ids come from the generator: another start, other ids
    return [orjson.dumps(kong_record("3.9", first + n, rng)) for n in range(count)]


def ids_of(records: list[bytes]) -> set[str]:
    return {orjson.loads(record)["request"]["id"] for record in records}


def start_reader(stream: str, endpoint: str, collector, tmp_path, *extra: str, name: str = "pipeline"):
    run_dir = tmp_path / name
    run_dir.mkdir()
    return start_pipeline(
        ["--runner=DirectRunner", f"--kinesis_stream={stream}", f"--kinesis_endpoint_url={endpoint}",
         f"--api_endpoint={collector.url}", f"--dead_letter={tmp_path / 'dl'}", "--max_batch_delay_secs=1", *extra],
        run_dir, {**LOCAL_AWS_ENVIRONMENT, "GATEWAYSTREAM_APPLICATION_ID": APPLICATION_ID},
    )


def await_events(collector, pipeline, count: int, timeout: float = 120) -> None:
    wait_for(lambda: collector.store.counts()["distinct_transaction_ids"] >= count or not pipeline.running(),
             timeout, f"{count} distinct events")
    assert pipeline.running(), pipeline.log_tail(30)


def new_stream(endpoint: str, shards: int) -> str:
    name = f"logs-{uuid.uuid4().hex[:8]}"
    create_stream(endpoint, name, shards)
    return name


def test_records_on_a_two_shard_stream_all_arrive_once(kinesis_server, collector, tmp_path):
    stream = new_stream(kinesis_server, 2)
    plain = kong_records(1500)
    kpl_payloads = kong_records(40, first=5000)
    kpl_record = aggregate(kpl_payloads)  # one Kinesis record holding 40 user records
    # What a CloudWatch Logs subscription filter writes to Kinesis: a gzip envelope of access-log lines.
    access_logs = [aws_access_log(n, random.Random(n)) for n in range(5)]
    cloudwatch_record = gzip.compress(orjson.dumps(cloudwatch_envelope(access_logs)))
    broken = b'{"request": {"method": "GET"'
    pipeline = start_reader(stream, kinesis_server, collector, tmp_path, "--kinesis_initial_position=LATEST")
    try:
        # LATEST: the readers must hold their iterators before the records are put.
        wait_for(lambda: pipeline.log_tail(100).count("from LATEST") == 2 or not pipeline.running(), 60,
                 "both shard readers")
        put_records(kinesis_server, stream, [*plain, kpl_record, cloudwatch_record, broken])
        expected = ids_of(plain) | ids_of(kpl_payloads) | {line["requestId"] for line in access_logs}
        await_events(collector, pipeline, len(expected))
        wait_for(lambda: dead_letters_in(tmp_path / "dl"), 30, "the dead letter")
    finally:
        pipeline.stop()

    events = collector.store.events()
    assert {event["transaction_id"] for event in events} == expected
    assert len(expected) == len(plain) + len(kpl_payloads) + len(access_logs)
    assert collector.store.counts()["events"] == len(expected)  # nothing twice
    [letter] = dead_letters_in(tmp_path / "dl")
    assert (letter["stage"], letter["reason"], letter["payload"]) == ("decode", "invalid_json", broken)
    assert letter["source"].split("#")[0] in {f"kinesis:{stream}/shardId-00000000000{n}" for n in (0, 1)}
    by_id = {event["transaction_id"]: event for event in events}
    for line in access_logs:
        arrived = by_id[line["requestId"]]
        assert (arrived["request"]["verb"], arrived["response"]["status"]) == (line["httpMethod"],
                                                                               int(line["status"]))
    sample = orjson.loads(plain[7])
    assert by_id[sample["request"]["id"]]["request"]["verb"] == sample["request"]["method"]
    assert by_id[sample["request"]["id"]]["response"]["status"] == sample["response"]["status"]


@pytest.mark.parametrize("runner", ["DirectRunner", "PrismRunner"])
def test_a_shard_split_mid_run_loses_and_duplicates_nothing(runner, kinesis_server, collector, tmp_path, request):
    on_runner = [f"--runner={runner}"]
    if runner == "PrismRunner":
        on_runner.append("--streaming")
        request.getfixturevalue("prism_binary")
    stream = new_stream(kinesis_server, 2)
    client = local_kinesis_client(kinesis_server)
    before, after = kong_records(800), kong_records(800, first=800)
    pipeline = start_reader(stream, kinesis_server, collector, tmp_path, *on_runner,
                            "--kinesis_initial_position=TRIM_HORIZON")
    try:
        put_records(kinesis_server, stream, before)
        await_events(collector, pipeline, len(before))
        parent = client.list_shards(StreamName=stream)["Shards"][0]
        middle = (int(parent["HashKeyRange"]["StartingHashKey"]) + int(parent["HashKeyRange"]["EndingHashKey"])) // 2
        client.split_shard(StreamName=stream, ShardToSplit=parent["ShardId"], NewStartingHashKey=str(middle))
        wait_for(lambda: len(client.list_shards(StreamName=stream)["Shards"]) == 4, 30, "the split")
        # Half the keys hash to the parent's range: those records land in the two children.
        landed = [entry for chunk in (after[:400], after[400:]) for entry in client.put_records(
            StreamName=stream, Records=[{"Data": data, "PartitionKey": f"k{index}"} for index, data in enumerate(chunk)]
        )["Records"]]
        assert {"shardId-000000000002", "shardId-000000000003"} <= {entry["ShardId"] for entry in landed}
        assert not any("ErrorCode" in entry for entry in landed)
        await_events(collector, pipeline, len(before) + len(after))
        time.sleep(2)  # anything read twice would arrive by now
    finally:
        pipeline.stop()
    assert {event["transaction_id"] for event in collector.store.events()} == ids_of(before) | ids_of(after)
    assert collector.store.counts()["events"] == len(before) + len(after)
    log = pipeline.log_path.read_text()
    assert "ended; reading its children ['shardId-000000000002', 'shardId-000000000003']" in log
    assert ("cache/prism" in log) == (runner == "PrismRunner")


def test_a_merge_mid_run_reads_the_merged_shard_once(kinesis_server, collector, tmp_path):
    stream = new_stream(kinesis_server, 2)
    client = local_kinesis_client(kinesis_server)
    before, after = kong_records(400, first=20_000), kong_records(400, first=30_000)
    pipeline = start_reader(stream, kinesis_server, collector, tmp_path, "--kinesis_initial_position=TRIM_HORIZON")
    try:
        put_records(kinesis_server, stream, before)
        await_events(collector, pipeline, len(before))
        client.merge_shards(StreamName=stream, ShardToMerge="shardId-000000000000",
                            AdjacentShardToMerge="shardId-000000000001")
        wait_for(lambda: len(client.list_shards(StreamName=stream)["Shards"]) == 3, 30, "the merge")
        landed = client.put_records(StreamName=stream, Records=[
            {"Data": data, "PartitionKey": f"k{index}"} for index, data in enumerate(after)])["Records"]
        assert {entry["ShardId"] for entry in landed} == {"shardId-000000000002"}
        await_events(collector, pipeline, len(before) + len(after))
        time.sleep(2)  # a second reader of the merged shard would deliver its copies by now
    finally:
        pipeline.stop()
    assert {event["transaction_id"] for event in collector.store.events()} == ids_of(before) | ids_of(after)
    assert collector.store.counts()["events"] == len(before) + len(after)
    log = pipeline.log_tail(200)
    assert "shardId-000000000000 ended; reading its children ['shardId-000000000002']" in log
    assert "shardId-000000000001 ended; reading its children (none: they belong to another reader)" in log


def test_a_restart_from_the_checkpoint_resumes_where_it_stopped(kinesis_server, collector, tmp_path):
    stream = new_stream(kinesis_server, 2)
    checkpoints = tmp_path / "checkpoints"
    first, second = kong_records(600), kong_records(600, first=600)
    options = ("--kinesis_initial_position=TRIM_HORIZON", f"--kinesis_checkpoint_dir={checkpoints}")
    client = local_kinesis_client(kinesis_server)
    pipeline = start_reader(stream, kinesis_server, collector, tmp_path, *options, name="first-run")
    try:
        landed = client.put_records(StreamName=stream, Records=[
            {"Data": data, "PartitionKey": f"k{index}"} for index, data in enumerate(first[:300])])["Records"]
        landed += client.put_records(StreamName=stream, Records=[
            {"Data": data, "PartitionKey": f"m{index}"} for index, data in enumerate(first[300:])])["Records"]
        last = {}
        for entry in landed:  # each shard's last sequence number (they grow within a shard)
            last[entry["ShardId"]] = max(last.get(entry["ShardId"], "0"), entry["SequenceNumber"], key=int)
        await_events(collector, pipeline, len(first))
        # The readers save their cursors about once a second: wait until both saved the last record.
        wait_for(lambda: {r.name: r.cursors[0].after for r in read_checkpoints(str(checkpoints), stream)} == last,
                 30, "checkpoints at the last records")
    finally:
        pipeline.stop()
    assert sorted(path.name for path in (checkpoints / stream).iterdir()) == [
        "shardId-000000000000.json", "shardId-000000000001.json"]

    put_records(kinesis_server, stream, second)  # while no pipeline runs
    pipeline = start_reader(stream, kinesis_server, collector, tmp_path, *options, name="second-run")
    try:
        await_events(collector, pipeline, len(first) + len(second))
        time.sleep(2)  # a re-read of the first 600 would arrive by now
    finally:
        pipeline.stop()
    # TRIM_HORIZON would have read the first 600 again: the checkpoint made the second run start after them.
    assert {event["transaction_id"] for event in collector.store.events()} == ids_of(first) | ids_of(second)
    assert collector.store.counts()["events"] == len(first) + len(second)
    assert "resuming 2 reader(s)" in pipeline.log_tail(200)


def test_events_still_buffered_when_a_run_is_killed_arrive_with_the_next_run(kinesis_server, collector, tmp_path):
    """On the DirectRunner the checkpoint moves only past records whose events were delivered or dead-lettered
    (transforms/io/acks.py): a run killed while the collector is down saved no position past what it could not
    deliver, so the next run reads those records again and every event arrives."""
    stream = new_stream(kinesis_server, 2)
    checkpoints = tmp_path / "checkpoints"
    records = kong_records(400)
    options = ("--kinesis_initial_position=TRIM_HORIZON", f"--kinesis_checkpoint_dir={checkpoints}",
               "--max_retry_secs=600")
    collector.faults.configure(down_for_secs=600)
    put_records(kinesis_server, stream, records)
    first = start_reader(stream, kinesis_server, collector, tmp_path, *options, name="first-run")
    try:
        wait_for(lambda: collector.request_counts()["requests_by_status"].get("closed", 0) >= 2
                 or not first.running(), 120, "the first run's delivery attempts")
        assert first.running(), first.log_tail(30)
        time.sleep(2 * CHECKPOINT_WRITE_SECS)  # a reader saving what it read would have saved it by now
        saved = [cursor.after for reader in read_checkpoints(str(checkpoints), stream) for cursor in reader.cursors]
        os.killpg(first.process.pid, signal.SIGKILL)
    finally:
        first.stop()
    assert collector.store.counts()["events"] == 0
    assert [after for after in saved if after is not None] == []

    collector.faults.configure(down_for_secs=0)
    second = start_reader(stream, kinesis_server, collector, tmp_path, *options, name="second-run")
    try:
        await_events(collector, second, len(records))
    finally:
        second.stop()
    assert {event["transaction_id"] for event in collector.store.events()} == ids_of(records)


def test_a_kill_during_a_large_read_rereads_at_most_what_was_not_yet_delivered(kinesis_server, collector, tmp_path):
    """The checkpoint moves past the longest delivered prefix of a read as deliveries happen: it used to wait for
    a reader's whole read (up to 5 000 records), so a run killed early left no checkpoint at all and the next one
    read everything again (issue 26)."""
    stream = new_stream(kinesis_server, 2)
    checkpoints = tmp_path / "checkpoints"
    records = kong_records(10_000)
    options = ("--kinesis_initial_position=TRIM_HORIZON", f"--kinesis_checkpoint_dir={checkpoints}",
               "--batches_in_flight=1")
    put_records(kinesis_server, stream, records)
    collector.faults.configure(stall_secs=0.3)  # deliveries trickle, so the kill comes in the middle of a read
    first = start_reader(stream, kinesis_server, collector, tmp_path, *options, name="first-run")

    def saved_cursors() -> list:
        return [cursor for reader in read_checkpoints(str(checkpoints), stream) for cursor in reader.cursors]

    try:
        await_events(collector, first, 1000)
        wait_for(lambda: any(cursor.after is not None for cursor in saved_cursors()) or not first.running(),
                 timeout=10 * CHECKPOINT_WRITE_SECS, what="a checkpoint saved mid-read")
        saved = saved_cursors()
        os.killpg(first.process.pid, signal.SIGKILL)
        delivered_before_kill = collector.store.counts()["events"]
    finally:
        first.stop()
    assert delivered_before_kill < len(records)
    assert any(cursor.after is not None for cursor in saved), saved  # progress was saved mid-read

    collector.faults.configure(stall_secs=0)
    second = start_reader(stream, kinesis_server, collector, tmp_path, *options, name="second-run")
    try:
        await_events(collector, second, len(records))
        time.sleep(2)  # anything read twice would arrive by now
    finally:
        second.stop()
    counts = collector.store.counts()
    assert counts["distinct_transaction_ids"] == len(records)  # 0 lost
    duplicates = counts["events"] - len(records)
    print(f"{delivered_before_kill} delivered before the kill; {duplicates} delivered twice")
    assert duplicates < delivered_before_kill  # the second run did not start over
    assert duplicates <= 2 * MAX_RECORDS_PER_CALL  # at most one read's worth per shard


class ThrottlingProxy:
    """A real HTTP proxy in front of the Kinesis server that answers GetRecords with Kinesis' throttling error
    (HTTP 400, ProvisionedThroughputExceededException) while ``throttling`` is set, and counts those calls."""

    def __init__(self, upstream: str):
        host, port = upstream.removeprefix("http://").split(":")
        self.throttling = threading.Event()
        self.throttled_calls: list[float] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                target = self.headers.get("X-Amz-Target", "")
                if proxy.throttling.is_set() and target.endswith(".GetRecords"):
                    proxy.throttled_calls.append(time.monotonic())
                    error = orjson.dumps({"__type": "ProvisionedThroughputExceededException",
                                          "message": "Rate exceeded for shard"})
                    self._answer(400, {"Content-Type": "application/x-amz-json-1.1"}, error)
                    return
                upstream_connection = http.client.HTTPConnection(host, int(port), timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream_connection.request("POST", self.path, body=body, headers=headers)
                response = upstream_connection.getresponse()
                self._answer(response.status, {k: v for k, v in response.getheaders()
                                                if k.lower() in ("content-type", "x-amzn-requestid")}, response.read())
                upstream_connection.close()

            def _answer(self, status, headers, body):
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self):
        self._server.shutdown()
        self._server.server_close()


def test_a_throttled_stream_slows_down_and_recovers(kinesis_server, collector, tmp_path):
    stream = new_stream(kinesis_server, 2)
    proxy = ThrottlingProxy(kinesis_server)
    records = kong_records(400)
    pipeline = start_reader(stream, proxy.url, collector, tmp_path, "--kinesis_initial_position=TRIM_HORIZON")
    try:
        proxy.throttling.set()
        put_records(kinesis_server, stream, records)
        wait_for(lambda: pipeline.log_tail(100).count("from TRIM_HORIZON") == 2 or not pipeline.running(), 60,
                 "both shard readers")
        began = time.monotonic()
        time.sleep(6)  # the throttled period itself: every read is refused for 6 s
        proxy.throttling.clear()
        assert collector.store.counts()["events"] == 0  # nothing got through while every read was refused
        await_events(collector, pipeline, len(records))
    finally:
        pipeline.stop()
        proxy.close()
    assert {event["transaction_id"] for event in collector.store.events()} == ids_of(records)
    # Two shards asking 5 times a second each for 6 s would make 60 calls; backing off exponentially makes far
    # fewer, and fewer in the second half of the throttled time than in the first.
    calls = [moment - began for moment in proxy.throttled_calls if moment >= began]
    first_half, second_half = sum(1 for t in calls if t < 3), sum(1 for t in calls if t >= 3)
    assert 4 <= len(calls) <= 30, calls
    assert second_half <= first_half, calls
    assert "ProvisionedThroughputExceededException on" in pipeline.log_tail(200)


@pytest.mark.parametrize(("stream", "endpoint", "named"), [
    ("no-such-stream", None, "no-such-stream: ResourceNotFoundException"),
    ("logs", "http://127.0.0.1:9", "logs: EndpointConnectionError"),
])
def test_a_stream_that_cannot_be_read_is_a_one_line_error(kinesis_server, tmp_path, stream, endpoint, named):
    result = run_cli("--runner=DirectRunner", f"--kinesis_stream={stream}",
                     f"--kinesis_endpoint_url={endpoint or kinesis_server}", f"--output={tmp_path / 'out'}",
                     f"--dead_letter={tmp_path / 'dl'}", env=dict(LOCAL_AWS_ENVIRONMENT), timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"python -m pipeline: --kinesis_stream: {named}"), result.stderr
