"""Delivery under real faults of the real local collector (SPEC §7): retries, Retry-After, final 4xx, 413
splits, giving up after max_retry_secs, and end to end with thousands of events through a failing collector."""
import glob
import random
import threading
import time

import apache_beam as beam
import orjson

from devtools.local_services import dead_letters_in, wait_for
from devtools.sample_traffic import GENERATIONS, kong_record
from tests.conftest import run_cli
from tests.test_transforms import BeamTestPipeline, decoded_events
from transforms.io.dead_letters import DEAD_LETTER_TAG, WriteDeadLetters, read_dead_letter_file
from transforms.io.sink import AnalyticsApiSink, RetryPolicy, WriteToAnalyticsApi, retry_after_secs
from transforms.model.event import serialize
from transforms.stages.batching import BatchEvents


def open_sink(collector, max_retry_secs: float = 30) -> AnalyticsApiSink:
    sink = AnalyticsApiSink(collector.url, "app", 1000, 2000, RetryPolicy(max_retry_secs, initial_backoff_secs=0.05))
    sink.open()
    return sink


def batch_body(count: int = 3) -> bytes:
    return b"[" + b",".join(serialize(item.event) for item in decoded_events(count)) + b"]"


def test_5xx_and_dropped_connections_are_retried_until_delivered(collector):
    collector.faults.configure(fail_next=3, status=503)
    collector.faults.configure(close_next=2)
    result = open_sink(collector).send(batch_body(), 3)
    assert (result.ok, result.attempts) == (True, 6)
    assert collector.request_counts()["requests_by_status"] == {"503": 3, "closed": 2, "201": 1}
    assert collector.store.counts()["events"] == 3


def test_sinks_of_one_process_share_kept_alive_connections(collector):
    """Beam's DirectRunner sets the delivery DoFn up and tears it down for every bundle: each sink below stands
    for one bundle's, and the second sends over the connection the first opened."""
    for _ in range(3):
        sink = open_sink(collector)
        assert sink.send(batch_body(), 3).ok
        sink.close()
    assert collector.request_counts()["connections"] == 1
    assert collector.store.counts()["events"] == 9


def test_a_stopped_collector_ends_its_kept_alive_connections(tmp_path):
    from devtools.collector import Collector

    with Collector(str(tmp_path / "first.db")) as first:
        assert open_sink(first).send(batch_body(), 3).ok
    with Collector(str(tmp_path / "second.db")) as second:
        assert open_sink(second).send(batch_body(), 3).ok
        assert second.request_counts()["connections"] == 1
    assert first.request_counts()["connections"] == 1


def test_retry_after_is_honoured(collector):
    collector.faults.configure(fail_next=1, status=429, retry_after="2")
    started = time.monotonic()
    result = open_sink(collector).send(batch_body(), 3)
    assert (result.ok, result.attempts) == (True, 2)
    assert time.monotonic() - started >= 2  # the backoff alone would have waited ~0.05 s
    assert retry_after_secs("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0 and retry_after_secs("soon") is None


def test_other_4xx_are_final_and_not_retried(collector):
    collector.faults.configure(fail_next=1, status=400)
    result = open_sink(collector).send(batch_body(), 3)
    assert (result.ok, result.attempts, result.http_status, result.reason) == (False, 1, 400, "http_400")
    assert collector.request_counts()["requests"] == 1


def test_giving_up_after_max_retry_secs_makes_dead_letters_with_attempts(collector, tmp_path):
    collector.faults.configure(failure_rate=1.0, failure_status=500)
    with BeamTestPipeline() as p:
        batched = p | beam.Create(decoded_events(4)) | BatchEvents(collector.url, 10, 60, 1)
        delivered = batched["batches"] | WriteToAnalyticsApi(collector.url, "app", retry=RetryPolicy(1.0, 0.05))
        _ = delivered[DEAD_LETTER_TAG] | WriteDeadLetters(str(tmp_path))
    letters = [letter for path in glob.glob(str(tmp_path / "*.avro")) for letter in read_dead_letter_file(path)]
    assert len(letters) == 4
    assert {(letter["reason"], letter["http_status"]) for letter in letters} == {("http_500", 500)}
    assert all(letter["attempts"] == collector.request_counts()["requests"] > 2 for letter in letters)
    assert all("gave up after" in letter["detail"] for letter in letters)


def test_413_splits_the_batch_in_halves(collector):
    collector.faults.configure(fail_next=1, status=413)
    with BeamTestPipeline() as p:
        batched = p | beam.Create(decoded_events(10)) | BatchEvents(collector.url, 10, 60, 1)
        _ = batched["batches"] | WriteToAnalyticsApi(collector.url, "app")
    assert collector.request_counts()["requests_by_status"] == {"413": 1, "201": 2}
    assert collector.store.counts() == {"events": 10, "distinct_transaction_ids": 10}


def test_batches_in_flight_are_sent_at_once_and_all_arrive(collector):
    """With every answer slowed down, up to --batches_in_flight batches are at the collector together; with 1,
    never more than one (the runner's thread waits for each answer)."""
    collector.faults.configure(stall_secs=0.3)
    for run, (in_flight, most_at_once) in enumerate(((1, 1), (4, 4)), start=1):
        with BeamTestPipeline() as p:
            batched = p | beam.Create(decoded_events(24)) | BatchEvents(collector.url, 3, 60, 1)
            _ = batched["batches"] | WriteToAnalyticsApi(collector.url, "app", batches_in_flight=in_flight)
        assert collector.request_counts()["most_batch_requests_at_once"] == most_at_once  # the most since start
        assert collector.store.counts() == {"events": 24 * run, "distinct_transaction_ids": 24}


def write_kong_records(path, count: int) -> None:
    rng = random.Random(11)
    path.write_bytes(b"\n".join(orjson.dumps(kong_record(GENERATIONS[n % len(GENERATIONS)], n, rng))
                                for n in range(count)) + b"\n")


def test_10000_events_through_a_failing_collector_all_arrive(collector, tmp_path):
    """30 % of requests fail at random (500/503), 10 % of connections are dropped, and the collector is down
    for 20 s in the middle: every event arrives, none is dead-lettered."""
    write_kong_records(tmp_path / "traffic.jsonl", 10_000)
    collector.faults.configure(failure_rate=0.3, failure_status=503, close_rate=0.1)
    went_down = threading.Event()

    def go_down_in_the_middle():
        wait_for(lambda: collector.store.counts()["events"] >= 3000, timeout=600, what="3000 events")
        collector.faults.configure(down_for_secs=20)
        went_down.set()

    threading.Thread(target=go_down_in_the_middle, daemon=True).start()
    result = run_cli(f"--input={tmp_path / 'traffic.jsonl'}", f"--api_endpoint={collector.url}",
                     f"--dead_letter={tmp_path / 'dl'}", "--batch_size=100", "--max_retry_secs=120", timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert went_down.is_set()
    assert dead_letters_in(tmp_path / "dl") == []
    counts = collector.store.counts()
    assert counts["distinct_transaction_ids"] == 10_000 and counts["events"] == 10_000
    by_status = collector.request_counts()["requests_by_status"]
    assert by_status["503"] > 10 and by_status["closed"] > 10  # the faults really happened


def test_a_collector_answering_400_dead_letters_every_event(collector, tmp_path):
    write_kong_records(tmp_path / "traffic.jsonl", 500)
    collector.faults.configure(failure_rate=1.0, failure_status=400)
    result = run_cli(f"--input={tmp_path / 'traffic.jsonl'}", f"--api_endpoint={collector.url}",
                     f"--dead_letter={tmp_path / 'dl'}", "--batch_size=50")
    assert result.returncode == 0, result.stderr[-2000:]
    letters = dead_letters_in(tmp_path / "dl")
    assert collector.store.counts()["events"] == 0
    assert len(letters) == 500 and len({orjson.loads(letter["payload"])["transaction_id"] for letter in letters}) == 500
    assert {(letter["stage"], letter["http_status"], letter["attempts"]) for letter in letters} == {("deliver", 400, 1)}
    assert collector.request_counts()["requests_by_status"] == {"400": 10}


SECRET_APPLICATION_ID = "eyJhcHAiOiJzZWNyZXQtYXBwbGljYXRpb24taWQtMDA0MiJ9-0042"


def test_an_answer_echoing_the_application_id_never_carries_it_on(collector):
    """SPEC §7: at most the last 4 characters of a secret anywhere. Answers that echo the request's headers put
    the application id in the excerpt at every offset, including across the point where the excerpt is cut."""
    for padding in (0, 100, 440, 480, 490, 499, 520):
        collector.faults.configure(fail_next=1, status=400, echo_headers_after=padding)
        sink = AnalyticsApiSink(collector.url, SECRET_APPLICATION_ID, 1000, 2000, RetryPolicy(1))
        sink.open()
        result = sink.send(batch_body(), 3)
        assert (result.ok, result.reason) == (False, "http_400")
        assert SECRET_APPLICATION_ID[:-4] not in result.detail and SECRET_APPLICATION_ID[:12] not in result.detail
        if padding < 400:
            assert "…0042" in result.detail  # the header is still named, its value redacted


def test_scrub_secrets_finds_plain_json_escaped_and_percent_encoded_forms():
    from transforms.io.sink import scrub_secrets

    salt = 'salt/with"quote and space'
    text = f'a {salt} b {orjson.dumps(salt).decode()} c salt%2Fwith%22quote%20and%20space d'
    assert scrub_secrets(text, [salt]) == "a …pace b \"…pace\" c …pace d"
    assert scrub_secrets("nothing here", [salt, SECRET_APPLICATION_ID]) == "nothing here"
    # Cut: a secret's head left at the end of the cut (or of the text) goes too.
    assert scrub_secrets("id: " + SECRET_APPLICATION_ID, [SECRET_APPLICATION_ID], 20) == "id: …0042"
    assert scrub_secrets("id: " + SECRET_APPLICATION_ID[:30], [SECRET_APPLICATION_ID], 500) == "id: "
    many = (SECRET_APPLICATION_ID + " ") * 2000  # scrubbing shortens the text: later text moves into the excerpt
    assert SECRET_APPLICATION_ID[:8] not in scrub_secrets(many, [SECRET_APPLICATION_ID], 500)


def test_a_pipeline_whose_collector_echoes_headers_logs_and_dead_letters_no_secret(collector, tmp_path):
    collector.faults.configure(fail_next=10, status=400, echo_headers_after=150)
    result = run_cli("--runner=DirectRunner", "--input=samples/kong-3.x.jsonl", f"--api_endpoint={collector.url}",
                     f"--dead_letter={tmp_path / 'dl'}", "--hash_salt=pepper-secret-salt-value",
                     env={"GATEWAYSTREAM_APPLICATION_ID": SECRET_APPLICATION_ID})
    assert result.returncode == 0, result.stderr[-2000:]
    letters = [letter for letter in dead_letters_in(tmp_path / "dl") if letter["stage"] == "deliver"]
    assert letters and all(letter["reason"] == "http_400" for letter in letters)
    assert all("…0042" in letter["detail"] for letter in letters)
    everything = result.stdout + result.stderr + "".join(letter["detail"] for letter in letters)
    assert "batch of" in result.stderr and "failed: http_400" in result.stderr  # the WARNING line was written
    assert SECRET_APPLICATION_ID[:-4] not in everything and "pepper-secret-salt-value" not in everything
