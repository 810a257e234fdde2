"""Portability (issue 7): the whole pipeline under Beam's portable path (the Fn API protocol Flink and
Dataflow Runner v2 use), with LOOPBACK and PROCESS workers; what it ships pickles; no mutable module state."""
import importlib
import os
import pickle
import pkgutil
import sys

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from devtools.local_services import count_items, dead_letters_in
from devtools.localrun import sample_records
from pipeline import graph
from pipeline.config import build_config
from pipeline.options import mask_settings, parse_options
from pipeline.workarounds.process_environment import sdk_worker_command
from tests.conftest import ROOT, run_cli


def sample_event_count() -> int:
    return sum(count_items(record) for record in sample_records(ROOT / "samples"))


@pytest.mark.parametrize("environment", ["LOOPBACK", "PROCESS"])
def test_full_pipeline_runs_under_the_portable_runner(environment, collector, tmp_path):
    arguments = ["--runner=PortableRunner", "--job_endpoint=embed", f"--environment_type={environment}"]
    if environment == "PROCESS":
        marker = tmp_path / "workers.log"
        # The command is run by a shell: the marker proves that SDK workers were separate processes.
        command = f"echo $$ >> {marker}; exec {sdk_worker_command(sys.executable)}"
        arguments.append('--environment_config={"command": "' + command + '"}')
    result = run_cli(*arguments, "--input=samples/*.jsonl", f"--api_endpoint={collector.url}",
                     f"--dead_letter={tmp_path / 'dl'}", f"--archive={tmp_path / 'lake'}", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    letters = dead_letters_in(tmp_path / "dl")
    counts = collector.store.counts()
    broken = 7  # malformed.jsonl's 5 and gcp-cloud-logging.jsonl's 2
    assert len(letters) == broken
    assert counts["events"] == counts["distinct_transaction_ids"] == sample_event_count() - broken
    archived = pq.read_table(tmp_path / "lake").column("transaction_id").to_pylist()
    assert sorted(archived) == sorted(event["transaction_id"] for event in collector.store.events())
    if environment == "PROCESS":
        assert marker.read_text().split(), "no PROCESS worker was started"


def build_pipeline(*extra: str) -> beam.Pipeline:
    args, _ = parse_options(["--input=samples/*.jsonl", "--dead_letter=/tmp/dl", "--api_endpoint=http://127.0.0.1:1",
                             "--moesif_application_id=app", "--archive=/tmp/lake", *extra])
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=PortableRunner"]))
    graph.build(pipeline, build_config(args, "PortableRunner"))
    return pipeline


def test_pipeline_proto_round_trips_and_holds_no_direct_runner_transform():
    proto = build_pipeline().to_runner_api()  # pickles every DoFn, coder and window function
    urns = {transform.spec.urn for transform in proto.components.transforms.values()}
    assert not any("direct" in urn.lower() for urn in urns), urns
    assert "beam:transform:pardo:v1" in urns and "beam:transform:group_by_key:v1" in urns
    assert beam.Pipeline.from_runner_api(proto, beam.runners.DirectRunner(), PipelineOptions()) is not None


def test_the_kinesis_source_is_a_splittable_dofn_in_the_portable_proto():
    args, _ = parse_options(["--kinesis_stream=api-logs", "--aws_region=eu-west-1", "--dead_letter=/tmp/dl",
                             "--output=/tmp/out"])
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=PortableRunner", "--streaming"]))
    graph.build(pipeline, build_config(args, "PortableRunner"))
    proto = pipeline.to_runner_api()  # pickles the reader, its restriction provider and watermark estimator
    from apache_beam.portability.api import beam_runner_api_pb2

    splittable = []
    for transform in proto.components.transforms.values():
        if transform.spec.urn == "beam:transform:pardo:v1":
            payload = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload)
            if payload.restriction_coder_id:
                splittable.append(transform.unique_name)
    assert splittable == ["Read/ReadShards"]
    assert not any("direct" in t.spec.urn.lower() for t in proto.components.transforms.values())
    assert beam.Pipeline.from_runner_api(proto, beam.runners.DirectRunner(), PipelineOptions()) is not None


def test_settings_and_sinks_pickle():
    args, _ = parse_options(["--input=samples/*.jsonl", "--dead_letter=d", "--output=o", "--hash_salt=s",
                             "--field_masks=user_id=HASH", "--request_body_masks=password,card.number"])
    settings = mask_settings(args)
    settings.request_body.apply({"password": "x"})  # warm the cached name sets before pickling
    restored = pickle.loads(pickle.dumps(settings))
    assert restored.request_body.apply({"Password": "x"}) == {"Password": "*****"}
    delivery = build_config(args, None).delivery
    assert pickle.loads(pickle.dumps(graph.deliver(delivery))).label == graph.deliver(delivery).label


def test_no_mutable_state_in_module_globals():
    mutable = []
    for package_name in ("pipeline", "transforms", "schemas"):
        package = importlib.import_module(package_name)
        modules = [package] + [importlib.import_module(info.name) for info in
                               pkgutil.walk_packages(package.__path__, f"{package_name}.")
                               if not info.name.endswith("__main__")]
        for module in modules:
            for name, value in vars(module).items():
                if not name.startswith("__") and isinstance(value, (dict, list, set, bytearray)):
                    mutable.append(f"{module.__name__}.{name}")
    assert mutable == []


def test_the_package_workers_install_ships_every_module_and_schema(tmp_path):
    """What ``--setup_file`` / the Docker image install: every module of pipeline/, transforms/, schemas/, the
    Avro schemas and the ``.pxd`` files a worker's Cython build reads, so nothing a worker imports is missing."""
    import shutil
    import subprocess
    import zipfile

    # From a copy without build/: setuptools would otherwise pack what an earlier build left there, and a file
    # missing from the package data would still ship. Without the Cython compile (a minute here): the editable
    # install and tests/test_compiled.py cover it.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        "build", "local-run", ".venv", ".git", "*.egg-info", "__pycache__", ".hypothesis", ".pytest_cache",
        "*.so", "*.c"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(source)], check=True, capture_output=True,
                   env={**os.environ, "GATEWAYSTREAM_PURE_PYTHON": "1"})
    [wheel] = tmp_path.glob("gatewaystream-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = {str(path.relative_to(ROOT)) for package in ("pipeline", "transforms", "schemas")
                for pattern in ("*.py", "*.avsc", "*.pxd") for path in (ROOT / package).rglob(pattern)}
    assert expected - shipped == set()
    assert "schemas/api_event.avsc" in shipped and "transforms/stages/formats/alf.py" in shipped
    assert "transforms/stages/formats/common.pxd" in shipped
    # Developer tools (local services, the collector, sample traffic, localrun) are not what workers run.
    assert sorted(name for name in shipped if name.startswith(("devtools/", "tests/", "benchmarks/"))) == []
    assert {name.split("/")[0] for name in shipped if not name.startswith("gatewaystream-")} == {
        "pipeline", "transforms", "schemas"}
