"""Beam's local DirectRunner never trying Prism, going around Beam.

Beam 2.77's DirectRunner (a ``SwitchingDirectRunner``) runs a bounded pipeline on the PrismRunner when it can: it
downloads Prism's binary from GitHub on first use and runs the graph on it, and falls back to the Python runners
only when that fails. Here that meant every local replay, and every bounded test pipeline, tried to reach
github.com (and fell back after the failed lookup, ~0.15 s). On a machine with internet access the same command
would run the graph on a different runner from the one the local patches (``pipeline/workarounds/``), the
acknowledgement step (``transforms/io/acks.py``) and the tests are written for. ``never_try_prism`` makes that
attempt fail at once, before any download, and the runner falls back as it does after a failed download.
Called only for DirectRunner runs: ``--runner=PrismRunner`` still runs Prism.
"""
from __future__ import annotations


class PrismNotTried(RuntimeError):
    """What the DirectRunner's attempt to run on Prism raises once ``never_try_prism`` was called."""


def never_try_prism() -> None:
    """Patches the PrismRunner that the DirectRunner tries first (idempotent; for this process)."""
    from apache_beam.runners.portability import prism_runner

    if getattr(prism_runner.PrismRunner.run_pipeline, "never_tried", False):
        return

    def refuse(self, pipeline, options):
        raise PrismNotTried("gatewaystream runs the DirectRunner's Python runners, not Prism "
                            "(pipeline/workarounds/no_prism.py)")

    refuse.never_tried = True
    prism_runner.PrismRunner.run_pipeline = refuse
