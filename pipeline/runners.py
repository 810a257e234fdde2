"""Which runner a run uses, and what follows from it: the Pub/Sub read that runner can run, and whether every step
runs in this one process (Beam's local DirectRunner), which decides the local workarounds
(``pipeline/workarounds/``) and the acknowledgement step at the end of the graph (``pipeline/graph.py``)."""
from __future__ import annotations

# Beam's Python ReadFromPubSub runs on the DirectRunner (in Python) and on Dataflow (replaced by the
# service's native source). Every other runner (Flink, Spark, Prism, a portable job server) needs the
# cross-language transform, whose Java expansion service Beam fetches from Maven at pipeline construction.
NATIVE_PUBSUB_RUNNERS = frozenset({"DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner",
                                   "DataflowRunner", "TestDataflowRunner", "TestDirectRunner"})
PUBSUB_SOURCES = ("auto", "native", "cross_language")

# The local runners: one process runs every step.
LOCAL_RUNNERS = frozenset({"DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner"})


def runner_name(runner: str | None) -> str:
    """The runner's class name from a ``--runner`` value (a name or a dotted path; None is the DirectRunner)."""
    return (runner or "DirectRunner").rsplit(".", 1)[-1]


def is_local_runner(runner: str | None) -> bool:
    """Whether the ``--runner`` value (None is the DirectRunner) runs every step in this one process."""
    return runner_name(runner) in LOCAL_RUNNERS


def pubsub_source_for(runner: str | None, choice: str = "auto") -> str:
    """``native`` or ``cross_language`` for ``runner`` (the ``--runner`` value; None is the DirectRunner)."""
    if choice != "auto":
        return choice
    return "native" if runner_name(runner) in NATIVE_PUBSUB_RUNNERS else "cross_language"
