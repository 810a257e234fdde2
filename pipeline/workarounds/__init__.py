"""Workarounds for Beam's local runners, in one room: what Beam 2.77's legacy DirectRunner (and its embedded
portable job server) does that does not fit a streaming pipeline on one machine, patched for the runs that use it.

- ``pubsub_read``: the DirectRunner's Pub/Sub read pulls in short, larger steps, holds what it pulled until it is
  accounted for (``transforms/io/acks.py``), and keeps an honest watermark.
- ``bundles``: empty output bundles are not committed; timestamps and watermarks are compared as integers.
- ``dofn_specs``: each DoFn class's state and timer specs are inspected once, not for every bundle.
- ``splittable_dofn``: an unbounded splittable DoFn (the Kinesis reader) runs in streaming mode at all.
- ``no_prism``: the DirectRunner never tries to download and run Prism instead.
- ``process_environment``: the embedded job server can start PROCESS-environment SDK workers.

Each module's docstring says what it changes, why, and what it measured. Several replace methods of Beam's with
copies that read Beam's private fields, so they are written for one Beam version, ``WRITTEN_FOR_BEAM``: ``install``
refuses, with one line, to patch any other. Dataflow, Flink and Prism need none of them and get none: ``install``
patches nothing for them, whatever the Beam version.

Where to add one: a module here with one idempotent function that patches one thing, a line in ``needed``
naming the runs that need it, and a test in ``tests/test_direct_runner_patches.py`` that fails without it.
"""
from __future__ import annotations

from collections.abc import Callable

import apache_beam
from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions, StandardOptions

from pipeline.runners import is_local_runner, runner_name
from pipeline.workarounds import bundles, dofn_specs, no_prism, process_environment, pubsub_read, splittable_dofn

WRITTEN_FOR_BEAM = "2.77.0"


class UnsupportedBeamVersion(RuntimeError):
    """The installed Beam is not the version the workarounds were written for."""


def needed(options: PipelineOptions, reads_pubsub: bool, reads_kinesis: bool) -> tuple[Callable[[], None], ...]:
    """The workarounds a run with ``options`` needs: none unless its runner is a local one."""
    runner = options.view_as(StandardOptions).runner
    if is_local_runner(runner):
        return (
            dofn_specs.cache_dofn_specs,
            bundles.commit_only_nonempty_bundles,
            bundles.stack_by_timestamp_micros,
            bundles.refresh_watermarks_from_bundle_minimums,
            no_prism.never_try_prism,
            *((pubsub_read.use_short_pulls,) if reads_pubsub else ()),
            *((splittable_dofn.allow_streaming_sdf,) if reads_kinesis else ()),
        )
    portable = options.view_as(PortableOptions)
    if (runner_name(runner) == "PortableRunner" and portable.job_endpoint == "embed"
            and (portable.environment_type or "").upper() == "PROCESS"):
        return (process_environment.run_process_workers,)
    return ()


def install(options: PipelineOptions, reads_pubsub: bool = False, reads_kinesis: bool = False) -> tuple[str, ...]:
    """Patches Beam for this run (see ``needed``); returns the names of the patches installed. Raises
    UnsupportedBeamVersion, before patching anything, when some are needed and Beam is not ``WRITTEN_FOR_BEAM``."""
    patches = needed(options, reads_pubsub, reads_kinesis)
    if patches and apache_beam.__version__ != WRITTEN_FOR_BEAM:
        raise UnsupportedBeamVersion(
            f"--runner={runner_name(options.view_as(StandardOptions).runner)} needs gatewaystream's local-runner "
            f"workarounds, written for apache-beam {WRITTEN_FOR_BEAM}, and apache-beam {apache_beam.__version__} is "
            f"installed: install apache-beam=={WRITTEN_FOR_BEAM} (pyproject.toml), or use another runner")
    for patch in patches:
        patch()
    return tuple(patch.__name__ for patch in patches)
