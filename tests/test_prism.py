"""The unchanged graph on Beam's Prism runner (issue 21), built by ``python -m pipeline.runner_artifacts prism``:
a file replay gives the DirectRunner's events and dead letters exactly, and the Kinesis streaming graph
delivers every event once, closing batches by count and by time."""
from __future__ import annotations

import random
import shutil
import time

import orjson
import pytest

from devtools.collector import Collector
from devtools.local_services import dead_letters_in, wait_for
from devtools.sample_traffic import kong_record
from pipeline import runner_artifacts
from tests.conftest import run_cli
from tests.test_kinesis import new_stream, put_records, start_reader

pytestmark = pytest.mark.integration


def canonical(events: list[dict]) -> list[bytes]:
    return sorted(orjson.dumps(event, option=orjson.OPT_SORT_KEYS) for event in events)


def letters_of(directory) -> list[tuple]:
    return sorted((letter["stage"], letter["reason"], letter["source"], letter["detail"], letter["payload"])
                  for letter in dead_letters_in(directory))


def test_a_replay_on_prism_delivers_exactly_what_the_direct_runner_does(prism_binary, collector, tmp_path):
    with Collector(str(tmp_path / "prism.db")) as on_prism:
        results = {
            runner: run_cli(f"--runner={runner}", "--input=samples/*.jsonl", f"--api_endpoint={target.url}",
                            f"--dead_letter={tmp_path / runner}", "--company_id_header=X-Org-Id")
            for runner, target in (("DirectRunner", collector), ("PrismRunner", on_prism))
        }
        for runner, result in results.items():
            assert result.returncode == 0, f"{runner}: {result.stderr[-3000:]}"
        assert f"with cmd: ('{prism_binary}'" in results["PrismRunner"].stderr  # the cached binary, not a download
        direct_events, prism_events = collector.store.events(), on_prism.store.events()
    assert len(prism_events) == 413 and canonical(prism_events) == canonical(direct_events)
    assert letters_of(tmp_path / "PrismRunner") == letters_of(tmp_path / "DirectRunner")
    assert len(letters_of(tmp_path / "PrismRunner")) == 7  # malformed.jsonl 5, gcp-cloud-logging.jsonl 2
    assert "records read 349, events decoded 413, dead letters 7" in results["PrismRunner"].stdout


def batches_at(collector) -> list[int]:
    """Sizes of the batches the collector received: the events of one request share its arrival time."""
    return sorted(count for _, count in collector.store.query("SELECT received_at, COUNT(*) FROM events "
                                                              "GROUP BY received_at"))


def test_kinesis_streaming_on_prism_delivers_every_event_once(prism_binary, kinesis_server, collector, tmp_path):
    stream = new_stream(kinesis_server, 2)
    rng = random.Random(21)
    first = [orjson.dumps(kong_record("3.9", n, rng)) for n in range(1000)]
    last = [orjson.dumps(kong_record("3.9", n, rng)) for n in range(1000, 1030)]
    broken = b'{"request": {"method": "GET"'
    pipeline = start_reader(stream, kinesis_server, collector, tmp_path, "--runner=PrismRunner", "--streaming",
                            "--kinesis_initial_position=TRIM_HORIZON", "--batch_size=100")
    try:
        put_records(kinesis_server, stream, [*first, broken])
        wait_for(lambda: collector.store.counts()["events"] >= len(first) or not pipeline.running(), 120,
                 "the first 1 000 events")
        wait_for(lambda: dead_letters_in(tmp_path / "dl") or not pipeline.running(), 30, "the dead letter")
        put_records(kinesis_server, stream, last)
        put_at = time.monotonic()
        wait_for(lambda: collector.store.counts()["events"] >= len(first) + len(last) or not pipeline.running(),
                 60, "the last 30 events")
        partial_batch_secs = time.monotonic() - put_at
        assert pipeline.running(), pipeline.log_tail(40)
        time.sleep(2)  # anything read twice would arrive by now
    finally:
        pipeline.stop()
    assert collector.store.counts() == {"events": 1030, "distinct_transaction_ids": 1030}
    sizes = batches_at(collector)
    assert max(sizes) == 100 and sizes.count(100) >= 5  # closed by count
    # closed by time: --max_batch_delay_secs=1, plus the readers' poll of an idle shard (1 s)
    print(f"the last partial batch arrived {partial_batch_secs:.2f} s after its records were put")
    assert partial_batch_secs <= 1 + 1 + 1.5, partial_batch_secs
    [letter] = dead_letters_in(tmp_path / "dl")
    assert letter["reason"] == "invalid_json" and letter["payload"] == broken
    log = pipeline.log_path.read_text()
    assert f"with cmd: ('{prism_binary}'" in log  # it ran on Prism
    assert "NotImplementedError" not in log  # progress is reported by the restriction tracker


def test_a_runner_whose_program_is_not_cached_stops_with_one_line(tmp_path):
    home = {"HOME": str(tmp_path)}  # Beam's cache is under ~/.apache_beam: an empty one
    prism = run_cli("--runner=PrismRunner", "--input=samples/*.jsonl", f"--output={tmp_path / 'out'}",
                    f"--dead_letter={tmp_path / 'dl'}", env=home)
    flink = run_cli("--runner=FlinkRunner", "--flink_master=[local]", "--streaming", "--kinesis_stream=s",
                    "--aws_region=eu-west-1", "--api_endpoint=http://127.0.0.1:9", f"--dead_letter={tmp_path}",
                    env=home)
    pubsub = run_cli("--runner=PrismRunner", f"--prism_location={tmp_path / 'prism'}", "--streaming",
                     "--subscription=projects/gatewaystream-local/subscriptions/s",
                     "--api_endpoint=http://127.0.0.1:9", f"--dead_letter={tmp_path}", env=home)
    (tmp_path / "prism").write_bytes(b"")
    pubsub_with_prism = run_cli("--runner=PrismRunner", f"--prism_location={tmp_path / 'prism'}", "--streaming",
                                "--subscription=projects/gatewaystream-local/subscriptions/s",
                                "--api_endpoint=http://127.0.0.1:9", f"--dead_letter={tmp_path}", env=home)
    cache = tmp_path / ".apache_beam" / "cache"
    assert prism.returncode == flink.returncode == pubsub.returncode == pubsub_with_prism.returncode == 2
    assert prism.stderr == (
        f"python -m pipeline: --runner=PrismRunner: github.com/apache/beam/sdks/v2/go/cmd/prism@v"
        f"{runner_artifacts.BEAM_VERSION} is not in {cache / 'prism' / ('v' + runner_artifacts.BEAM_VERSION)}: "
        "fetch it with `python -m pipeline.runner_artifacts prism`\n")
    assert flink.stderr == (
        f"python -m pipeline: --runner=FlinkRunner: org.apache.beam:beam-runners-flink-"
        f"{runner_artifacts.DEFAULT_FLINK_VERSION}-job-server:{runner_artifacts.BEAM_VERSION} is not in "
        f"{cache / 'jars'}: fetch it with `python -m pipeline.runner_artifacts flink`\n")
    assert pubsub.stderr == ("python -m pipeline: --runner=PrismRunner: --prism_location: "
                             f"no file at {tmp_path / 'prism'}\n")
    assert pubsub_with_prism.stderr.endswith(
        "google-cloud-platform-expansion-service:2.77.0 is not in "
        f"{cache / 'jars'}: fetch it with `python -m pipeline.runner_artifacts pubsub-expansion`\n")
    assert pubsub_with_prism.stderr.count("\n") == 1


def test_an_artifact_that_cannot_be_fetched_is_one_line_naming_it(tmp_path, monkeypatch):
    unknown = runner_artifacts.Artifact("flink", "org.apache.beam:beam-no-such-artifact:2.77.0",
                                        tmp_path / "beam-no-such-artifact-2.77.0.jar")
    with pytest.raises(runner_artifacts.ArtifactUnavailable) as no_mvn:
        monkeypatch.setenv("PATH", str(tmp_path))
        runner_artifacts.fetch(unknown)
    assert str(no_mvn.value) == ("org.apache.beam:beam-no-such-artifact:2.77.0: `mvn` is not installed, "
                                 "and it fetches this artifact")
    monkeypatch.undo()
    if shutil.which("mvn") is None:
        pytest.skip("Maven is not installed: the answer of a real `mvn` could not be checked")
    with pytest.raises(runner_artifacts.ArtifactUnavailable) as not_found:
        runner_artifacts.fetch(unknown)
    message = str(not_found.value)
    assert message.startswith("org.apache.beam:beam-no-such-artifact:2.77.0 could not be fetched with `mvn -B -q")
    assert "beam-no-such-artifact" in message.split(": ", 1)[1] and "\n" not in message
    assert not any(tmp_path.iterdir())  # nothing half-fetched is left for a later start to take
