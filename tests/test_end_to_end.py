"""``python -m pipeline`` as a user runs it, on the bundled samples: bounded file input to the real local
collector, to --output files, and a replay of the dead letters it wrote."""
import glob
import json
from collections import Counter
from pathlib import Path

from pipeline.local_services import count_items, dead_letters_in
from pipeline.localrun import sample_records
from tests.conftest import ROOT, run_cli

SAMPLE_REASONS = {
    "invalid_json": 1,
    "invalid_type:response.status": 1,
    "missing_field:started_at": 1,
    "invalid_timestamp": 1,
    "missing_field:path": 1,
}


def sample_event_count():
    return sum(count_items(record) for record in sample_records(ROOT / "samples"))


def events_in(pattern: str) -> int:
    lines = [line for path in (ROOT / "samples").glob(pattern) for line in path.read_bytes().splitlines()]
    return sum(count_items(line) for line in lines if line.strip())


def test_samples_to_the_collector_every_event_accounted_for(collector, tmp_path):
    result = run_cli("--runner=DirectRunner", "--input=samples/*.jsonl", f"--api_endpoint={collector.url}",
                     f"--dead_letter={tmp_path / 'dl'}", "--company_id_header=X-Org-Id")
    assert result.returncode == 0, result.stderr[-2000:]
    letters = dead_letters_in(tmp_path / "dl")
    received = collector.store.counts()
    assert received["events"] == received["distinct_transaction_ids"]
    assert received["events"] + len(letters) == sample_event_count()
    assert dict(Counter(letter["reason"] for letter in letters)) == SAMPLE_REASONS
    assert all(letter["stage"] == "decode" for letter in letters)
    assert all("samples/malformed.jsonl#line=" in letter["source"] for letter in letters)
    records = len(sample_records(ROOT / "samples"))
    assert f"records read {records}," in result.stdout and "dead letters 5" in result.stdout

    events = collector.store.events()
    serialized = json.dumps(events)
    assert "sk_live_" not in serialized and "Bearer " not in serialized and "secret-key-" not in serialized
    gateways = Counter(event.get("metadata", {}).get("gateway", "moesif-sdk") for event in events)
    assert gateways == {"kong": events_in("kong-*.jsonl"), "moesif-sdk": events_in("moesif-*.jsonl"),
                        "aws_apigateway": events_in("aws-*.jsonl"), "wso2": events_in("wso2-*.jsonl"),
                        "alf": events_in("alf*.jsonl")}
    kong_events = [event for event in events if event["metadata"].get("gateway") == "kong"]
    assert all(event["company_id"] in {"acme-corp", "globex", "initech", "umbrella"} for event in kong_events)
    assert "application-id-0042" not in result.stdout + result.stderr  # the secret never reaches the logs


def test_samples_to_output_files_and_dead_letters_replay(tmp_path):
    result = run_cli("--input=samples/*.jsonl", f"--output={tmp_path / 'out'}", f"--dead_letter={tmp_path / 'dl'}",
                     "--batch_size=100")
    assert result.returncode == 0, result.stderr[-2000:]
    batches = [json.loads(Path(path).read_text()) for path in glob.glob(str(tmp_path / "out" / "batch-*.json"))]
    assert all(1 <= len(batch) <= 100 for batch in batches)
    assert sum(len(batch) for batch in batches) == sample_event_count() - 5

    replay = run_cli(f"--input={tmp_path / 'dl'}/*.avro", f"--output={tmp_path / 'replayed'}",
                     f"--dead_letter={tmp_path / 'dl2'}")
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert dict(Counter(letter["reason"] for letter in dead_letters_in(tmp_path / "dl2"))) == SAMPLE_REASONS


def test_a_glob_matching_nothing_is_a_clear_error(tmp_path):
    result = run_cli(f"--input={tmp_path}/nothing-*.jsonl", f"--output={tmp_path}", f"--dead_letter={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"python -m pipeline: error: --input: no file matches '{tmp_path}/nothing-*.jsonl'"]
