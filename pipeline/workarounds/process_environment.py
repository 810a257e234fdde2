"""Lets Beam's embedded job server (``--runner=PortableRunner --job_endpoint=embed``) run the PROCESS
environment, the one Flink's and Dataflow Runner v2's workers use: each SDK worker is a separate process
that talks to the runner over the Fn API (gRPC).

Beam 2.77's embedded FnApiRunner has worker handlers for LOOPBACK (external), DOCKER and its own
subprocess environment, but none for PROCESS (``environments.PROCESS``), so ``--environment_type=PROCESS``
fails there. This handler starts the payload's command exactly as Beam starts its subprocess workers
(``local_job_service.SubprocessSdkWorker``, with the control/logging endpoints and pipeline options in the
environment). Use it with::

    --runner=PortableRunner --job_endpoint=embed --environment_type=PROCESS \
    --environment_config='{"command": "python -m apache_beam.runners.worker.sdk_worker_main"}'

It matters only to that local embedded path: Flink and Dataflow bring their own PROCESS/DOCKER handling.
"""
from __future__ import annotations

from apache_beam.portability import common_urns


def sdk_worker_command(python: str) -> str:
    """The PROCESS command that runs Beam's Python SDK harness with the interpreter ``python``."""
    return f"{python} -m apache_beam.runners.worker.sdk_worker_main"


def run_process_workers() -> None:
    """Registers the PROCESS worker handler with the embedded job server (idempotent; for this process)."""
    from apache_beam.portability.api import beam_runner_api_pb2
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    urn = common_urns.environments.PROCESS.urn
    if urn in worker_handlers.WorkerHandler._registered_environments:
        return

    @worker_handlers.WorkerHandler.register_environment(urn, beam_runner_api_pb2.ProcessPayload)
    class ProcessWorkerHandler(worker_handlers.SubprocessSdkWorkerHandler):
        """A PROCESS-environment worker: the payload's command, run as Beam runs its subprocess workers."""

        def __init__(self, payload: beam_runner_api_pb2.ProcessPayload, state, provision_info, grpc_server):
            super().__init__(payload.command.encode(), state, provision_info, grpc_server)
