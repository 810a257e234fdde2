"""The garbage collector of a process that turns records into events, set for throughput (issue 5).

Each event is a tree of a few dozen dicts and lists that lives for microseconds, so CPython's default
collector (a young-generation pass every 700 new containers) runs thousands of times a second and, now and
then, walks every object the worker holds: Beam's, the modules', ours. In a 30 000-record replay that was ~10 %
of the run (0.8 s of ~6.5 s after start-up; the same with the collector off). ``tune_for_event_throughput``
moves what the process holds at start-up out of the collector's reach (``gc.freeze``) and lets the young
generation grow to ``GEN0_THRESHOLD`` containers: a few MB at most. Our events hold no reference cycles, so
reference counting still frees each one at once; the collector is left for the rare cycle.
"""
from __future__ import annotations

import gc
import threading

GEN0_THRESHOLD = 10_000

_lock = threading.Lock()


def tune_for_event_throughput() -> None:
    """Once per process (each DoFn instance may call it): freeze what exists, collect the young less often."""
    with _lock:
        threshold, older, oldest = gc.get_threshold()
        if threshold >= GEN0_THRESHOLD:
            return
        gc.freeze()
        gc.set_threshold(GEN0_THRESHOLD, older, oldest)
