"""Counters a per-event step adds up over a bundle and reports to Beam once, when the bundle finishes.

An update of a Beam counter costs ~1 µs in Beam 2.77: it finds the current metrics container through the state
sampler, then the counter's cell by name. That is a third of what a whole extra step costs an event, and the
per-event steps made five updates an event. Beam commits a bundle's metrics only when the bundle succeeds, so
reporting them at its end changes nothing that is committed.
"""
from __future__ import annotations

from apache_beam.metrics import Metrics


class BundleCounts:
    """``added[name] += n`` during a bundle; ``start`` when it starts, ``report`` when it finishes."""

    def __init__(self, namespace: str, *names: str):
        self._counters = {name: Metrics.counter(namespace, name) for name in names}
        self.added: dict[str, int] = dict.fromkeys(names, 0)

    def start(self) -> None:
        """Forgets what a failed bundle added: the runner retries it, and its metrics were not committed."""
        self.added = dict.fromkeys(self._counters, 0)

    def report(self) -> None:
        """Adds the bundle's counts to Beam's counters; call it from ``finish_bundle``."""
        for name, count in self.added.items():
            if count:
                self._counters[name].inc(count)
        self.start()
