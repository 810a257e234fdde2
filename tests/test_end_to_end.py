"""``python -m pipeline`` as a user runs it, on the bundled samples: bounded file input to the real local
collector, to --output files, and a replay of the dead letters it wrote (from a directory and from local S3- and
GCS-compatible servers)."""
import glob
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from devtools.local_services import (
    count_items,
    dead_letters_in,
    local_gcs_client,
    local_gcs_environment,
    local_s3_client,
    local_s3_options,
)
from devtools.localrun import sample_records
from tests.conftest import ROOT, run_cli
from transforms.io.dead_letters import read_dead_letter_file

SAMPLE_REASONS = {
    "invalid_json": 1,
    "invalid_type:response.status": 1,
    "missing_field:started_at": 1,
    "invalid_timestamp": 1,
    "missing_field:path": 1,
    "unknown_format": 1,  # gcp-cloud-logging.jsonl: an audit log
    "missing_field:httpRequest.status": 1,  # gcp-cloud-logging.jsonl: a client gone before any response
}
S3_SECRET = "s3-secret-4e1f9c"  # the local S3 server takes any key: this one must not reach the logs


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
    broken_files = ("samples/malformed.jsonl", "samples/gcp-cloud-logging.jsonl")
    assert all(letter["source"].split("#line=")[0].endswith(broken_files) for letter in letters)
    records = len(sample_records(ROOT / "samples"))
    assert f"records read {records}," in result.stdout and f"dead letters {len(letters)}" in result.stdout

    events = collector.store.events()
    serialized = json.dumps(events)
    assert "sk_live_" not in serialized and "Bearer " not in serialized and "secret-key-" not in serialized
    gateways = Counter(event.get("metadata", {}).get("gateway", "moesif-sdk") for event in events)
    # gcp-cloud-logging.jsonl: 3 entries of each of sample_traffic.GCP_KINDS (3 load balancer kinds, 2 Kong ones)
    gcp = {"kong": 6, "gcp_load_balancer": 9, "gcp_cloud_run": 3, "gcp_api_gateway": 3, "gcp_endpoints": 3}
    assert gateways == {"moesif-sdk": events_in("moesif-*.jsonl"), "aws_apigateway": events_in("aws-*.jsonl"),
                        "wso2": events_in("wso2-*.jsonl"), "alf": events_in("alf*.jsonl"), **gcp,
                        "kong": events_in("kong-*.jsonl") + gcp["kong"]}
    kong_events = [event for event in events if event["metadata"].get("gateway") == "kong"]
    assert all(event["company_id"] in {"acme-corp", "globex", "initech", "umbrella"} for event in kong_events)
    assert "application-id-0042" not in result.stdout + result.stderr  # the secret never reaches the logs


def test_samples_to_output_files_and_dead_letters_replay(tmp_path):
    result = run_cli("--input=samples/*.jsonl", f"--output={tmp_path / 'out'}", f"--dead_letter={tmp_path / 'dl'}",
                     "--batch_size=100")
    assert result.returncode == 0, result.stderr[-2000:]
    batches = [json.loads(Path(path).read_text()) for path in glob.glob(str(tmp_path / "out" / "batch-*.json"))]
    assert all(1 <= len(batch) <= 100 for batch in batches)
    assert sum(len(batch) for batch in batches) == sample_event_count() - sum(SAMPLE_REASONS.values())

    replay = run_cli(f"--input={tmp_path / 'dl'}/*.avro", f"--output={tmp_path / 'replayed'}",
                     f"--dead_letter={tmp_path / 'dl2'}")
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert dict(Counter(letter["reason"] for letter in dead_letters_in(tmp_path / "dl2"))) == SAMPLE_REASONS


def test_a_glob_matching_nothing_is_a_clear_error(tmp_path):
    result = run_cli(f"--input={tmp_path}/nothing-*.jsonl", f"--output={tmp_path}", f"--dead_letter={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"python -m pipeline: error: --input: no file matches '{tmp_path}/nothing-*.jsonl'"]


@dataclass
class ObjectStore:
    """A bucket on a local S3- or GCS-compatible server, as the pipeline's command line and the test reach it."""

    root: str  # s3://bucket or gs://bucket
    arguments: list[str]  # Beam's filesystem options
    environment: dict[str, str]
    read_objects: Callable[[str], list[tuple[str, bytes]]]  # prefix -> (name, bytes) of each object under it


@pytest.fixture(params=["s3", "gs"])
def object_store(request, tmp_path):
    bucket = "gatewaystream-e2e"
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_server")
        client = local_s3_client(endpoint)
        client.create_bucket(Bucket=bucket)

        def read_objects(prefix: str) -> list[tuple[str, bytes]]:
            listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
            return [(item["Key"], client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()) for item in listed]

        yield ObjectStore(f"s3://{bucket}", local_s3_options(endpoint, secret_access_key=S3_SECRET), {}, read_objects)
        for key, _ in read_objects(""):
            client.delete_object(Bucket=bucket, Key=key)
        client.delete_bucket(Bucket=bucket)
    else:
        endpoint = request.getfixturevalue("gcs_server")
        client = local_gcs_client(endpoint)
        created = client.create_bucket(bucket)
        yield ObjectStore(f"gs://{bucket}", [], local_gcs_environment(endpoint, tmp_path),
                          lambda prefix: [(blob.name, blob.download_as_bytes())
                                          for blob in client.list_blobs(bucket, prefix=prefix)])
        created.delete(force=True)


@pytest.mark.integration
def test_dead_letters_and_archive_in_an_object_store_and_a_replay_from_it(object_store, tmp_path):
    """The README's cloud set-ups against local S3- and GCS-compatible servers: dead letters and the Parquet
    archive go to the bucket, and ``--input s3://…``/``gs://…`` replays the dead letters. Beam's filesystem
    options reach the ``--input`` check at start-up too (it used to list the default AWS endpoint and report
    "no file matches")."""
    store = object_store
    result = run_cli("--input=samples/*.jsonl", f"--output={tmp_path / 'out'}", *store.arguments,
                     f"--dead_letter={store.root}/dead-letters", f"--archive={store.root}/archive",
                     env=store.environment)
    assert result.returncode == 0, result.stderr[-2000:]

    def saved(prefix: str) -> list[Path]:
        paths = []
        for index, (name, data) in enumerate(store.read_objects(prefix)):
            path = tmp_path / f"{prefix.strip('/')}-{index}{Path(name).suffix}"
            path.write_bytes(data)
            paths.append(path)
        return paths

    letters = [letter for path in saved("dead-letters/") for letter in read_dead_letter_file(str(path))]
    assert dict(Counter(letter["reason"] for letter in letters)) == SAMPLE_REASONS
    archived = sum(pq.read_table(path).num_rows for path in saved("archive/"))
    assert archived == sample_event_count() - sum(SAMPLE_REASONS.values())
    assert S3_SECRET not in result.stdout + result.stderr

    replay = run_cli(f"--input={store.root}/dead-letters/*.avro", f"--output={tmp_path / 'replayed'}",
                     f"--dead_letter={tmp_path / 'dl2'}", *store.arguments, env=store.environment)
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert dict(Counter(letter["reason"] for letter in dead_letters_in(tmp_path / "dl2"))) == SAMPLE_REASONS
