"""Shared fixtures: the real local collector (in this process, on 127.0.0.1) and the Pub/Sub emulator."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.collector import Collector
from devtools.local_services import (
    start_gcs_server,
    start_kinesalite,
    start_pubsub_emulator,
    start_s3_server,
    stop_services_on_sigterm,
)
from pipeline import runner_artifacts
from pipeline.workarounds.no_prism import never_try_prism

# The tests' DirectRunner pipelines run on Beam's Python runners, offline (pipeline/workarounds/no_prism.py).
never_try_prism()

ROOT = Path(__file__).resolve().parent.parent
APPLICATION_ID = "test-application-id-0042"


@pytest.fixture
def collector(tmp_path):
    with Collector(str(tmp_path / "collector.db")) as running:
        yield running


def pytest_configure(config):
    """A test run ended with SIGTERM (``timeout``, a cancelled job) tears its fixtures down as after Ctrl-C,
    which stops the session's emulator and Kinesis server instead of leaving them running."""
    stop_services_on_sigterm()


def _serve(start, tmp_path_factory, name: str):
    """Starts a local service for the test session; yields its address and stops it afterwards."""
    service, address = start(tmp_path_factory.mktemp(name))
    try:
        yield address
    finally:
        service.stop()


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory):
    """``host:port`` of a Pub/Sub emulator started for this test session."""
    yield from _serve(start_pubsub_emulator, tmp_path_factory, "emulator")


def run_cli(*arguments: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m pipeline …`` as a user runs it, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *arguments],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "GATEWAYSTREAM_APPLICATION_ID": APPLICATION_ID, **(env or {})},
    )


@pytest.fixture(scope="session")
def kinesis_server(tmp_path_factory):
    """Endpoint URL of a local Kinesis server (kinesalite, on 127.0.0.1) started for this test session."""
    yield from _serve(start_kinesalite, tmp_path_factory, "kinesalite")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """Endpoint URL of a local S3-compatible server (moto, on 127.0.0.1) started for this test session."""
    yield from _serve(start_s3_server, tmp_path_factory, "s3")


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory):
    """Endpoint URL of a local GCS-compatible server (gcp-storage-emulator, on 127.0.0.1) for this test session."""
    yield from _serve(start_gcs_server, tmp_path_factory, "gcs")


@pytest.fixture(scope="session")
def prism_binary() -> str:
    """The cached Prism binary of the installed Beam release (``run_tests.sh`` builds it before the tests)."""
    artifact = runner_artifacts.prism()
    if artifact.missing() and shutil.which("go") is None:
        pytest.skip(f"Prism cannot run on this machine: {artifact.missing()}, and Go is not installed to build it")
    try:
        return str(runner_artifacts.fetch(artifact))
    except runner_artifacts.ArtifactUnavailable as unavailable:
        pytest.fail(f"Prism could not be built: {unavailable}")
