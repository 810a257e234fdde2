"""The local-runner workarounds (``pipeline/workarounds/``) are installed only for the runs that need them, and only
on the Beam version they were written for; the patches themselves are checked in test_direct_runner_patches.py."""
from __future__ import annotations

import subprocess
import sys

import orjson
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import workarounds
from tests.conftest import ROOT

# python -m pipeline with a different Beam version reported, then whether any DirectRunner patch is in place.
UNSUPPORTED_BEAM_RUN = """
import sys
import apache_beam
apache_beam.__version__ = "2.99.0"
from pipeline.main import main
code = main(sys.argv[1:])
from apache_beam.runners.direct.transform_evaluator import _ParDoEvaluator
from apache_beam.transforms import userstate
patched = hasattr(_ParDoEvaluator.finish_bundle, "nonempty_only") or hasattr(userstate.get_dofn_specs, "cached_specs")
print("patched" if patched else "unpatched")
sys.exit(code)
"""


def needed_names(*arguments: str, reads_pubsub: bool = False, reads_kinesis: bool = False) -> list[str]:
    return [patch.__name__ for patch in workarounds.needed(PipelineOptions(list(arguments)), reads_pubsub,
                                                            reads_kinesis)]


def test_only_a_local_run_gets_the_direct_runner_patches_and_only_those_its_sources_need():
    local = ["cache_dofn_specs", "commit_only_nonempty_bundles", "stack_by_timestamp_micros",
             "refresh_watermarks_from_bundle_minimums", "never_try_prism"]
    assert needed_names() == local
    assert needed_names("--runner=DirectRunner", reads_pubsub=True) == [*local, "use_short_pulls"]
    assert needed_names("--runner=DirectRunner", reads_kinesis=True) == [*local, "allow_streaming_sdf"]
    for elsewhere in ("DataflowRunner", "FlinkRunner", "PrismRunner", "PortableRunner"):
        assert needed_names(f"--runner={elsewhere}", reads_pubsub=True, reads_kinesis=True) == [], elsewhere
    assert needed_names("--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=PROCESS") == [
        "run_process_workers"]
    assert needed_names("--runner=PortableRunner", "--job_endpoint=localhost:8099",
                        "--environment_type=PROCESS") == []


def run_with_unsupported_beam(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", UNSUPPORTED_BEAM_RUN, *arguments], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


def test_a_local_run_on_a_beam_version_the_workarounds_were_not_written_for_stops_with_one_line(tmp_path):
    result = run_with_unsupported_beam("--input=samples/kong-3.x.jsonl", f"--output={tmp_path / 'out'}",
                                       f"--dead_letter={tmp_path / 'dl'}")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("python -m pipeline: --runner=DirectRunner needs gatewaystream's local-runner workarounds")
    assert "written for apache-beam 2.77.0, and apache-beam 2.99.0 is installed" in line
    assert result.stdout.split() == ["unpatched"]
    assert not (tmp_path / "out").exists()


@pytest.mark.integration
def test_another_runner_on_that_version_runs_unpatched(tmp_path):
    """The embedded portable runner with LOOPBACK workers: a runner other than the DirectRunner, on this machine."""
    result = run_with_unsupported_beam("--runner=PortableRunner", "--job_endpoint=embed",
                                       "--environment_type=LOOPBACK", "--input=samples/kong-3.x.jsonl",
                                       f"--output={tmp_path / 'out'}", f"--dead_letter={tmp_path / 'dl'}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-1] == "unpatched"
    delivered = [event for path in (tmp_path / "out").iterdir() for event in orjson.loads(path.read_bytes())]
    records = [line for line in (ROOT / "samples" / "kong-3.x.jsonl").read_bytes().splitlines() if line.strip()]
    assert len(delivered) == len(records) > 0
