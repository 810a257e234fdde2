"""The local services' lifetime: a terminated run stops what it started."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

# A run the way run_local.sh and the streaming benchmarks start one: a Service in its own session, stopped in a
# finally block. It prints the service's pid, then waits to be terminated.
_RUN = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from devtools.local_services import Service, stop_services_on_sigterm
    if sys.argv[2] == "handled":
        stop_services_on_sigterm()
    service = Service("sleeper", ["sleep", "300"], Path(sys.argv[1]) / "sleeper.log")
    try:
        print(service.process.pid, flush=True)
        time.sleep(300)
    finally:
        service.stop()
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _terminate_a_run(tmp_path, mode: str) -> tuple[int, int]:
    """Starts a run, sends it SIGTERM; returns the run's exit status and its service's pid."""
    script = tmp_path / "run.py"
    script.write_text(_RUN)
    run = subprocess.Popen([sys.executable, str(script), str(tmp_path), mode], stdout=subprocess.PIPE, text=True,
                           cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    service_pid = int(run.stdout.readline())
    assert _alive(service_pid)
    run.send_signal(signal.SIGTERM)
    return run.wait(30), service_pid


def test_sigterm_stops_the_services_a_run_started(tmp_path):
    status, service_pid = _terminate_a_run(tmp_path, "handled")
    assert status != 0  # interrupted, not a clean finish
    assert not _alive(service_pid)


def test_without_the_handler_a_terminated_run_leaves_its_service_running(tmp_path):
    """Why the handler exists: each Service has its own session, so the run's SIGTERM does not reach it."""
    status, service_pid = _terminate_a_run(tmp_path, "unhandled")
    try:
        assert status == -signal.SIGTERM
        assert _alive(service_pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service_pid, signal.SIGKILL)
