"""Fault modes of the local collector, so tests can make delivery fail for real (issue 5).

A ``FaultPlan`` decides, for each ``POST /v1/events/batch``, whether to answer normally or to misbehave:
fail the next N requests with a status (optionally with ``Retry-After``, or echoing the request's headers),
fail a fraction of requests at random, close the connection without answering, stall before answering, or
be "down" (close every connection) for a while. Set it from Python (``collector.faults``) or over HTTP
(``POST /admin/faults`` with the same fields as JSON), for a collector running in another process.
"""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    kind: str  # "status", "close" or "stall"
    status: int = 0
    retry_after: str | None = None
    stall_secs: float = 0.0
    echo_headers_after: int | None = None  # with "status": the answer echoes the request's headers after so many bytes


class FaultPlan:
    """Thread-safe: the collector serves each request on its own thread."""

    def __init__(self, seed: int = 0):
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.clear()

    def clear(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self._fail_next: list[Fault] = []
            self._failure_rate = 0.0
            self._failure_status = 500
            self._close_rate = 0.0
            self._stall_secs = 0.0
            self._down_until = 0.0

    def configure(self, *, fail_next: int = 0, status: int = 500, retry_after: str | None = None,
                  failure_rate: float | None = None, failure_status: int | None = None,
                  close_rate: float | None = None, close_next: int = 0, stall_secs: float | None = None,
                  down_for_secs: float | None = None, echo_headers_after: int | None = None) -> None:
        """Adds the given behaviour; fields left out keep their current value. ``echo_headers_after``: the next
        ``fail_next`` answers echo the request's headers after that many bytes of padding, as some proxies do."""
        with self._lock:
            self._fail_next.extend([Fault("status", status, retry_after, echo_headers_after=echo_headers_after)]
                                   * fail_next)
            self._fail_next.extend([Fault("close")] * close_next)
            if failure_rate is not None:
                self._failure_rate = failure_rate
            if failure_status is not None:
                self._failure_status = failure_status
            if close_rate is not None:
                self._close_rate = close_rate
            if stall_secs is not None:
                self._stall_secs = stall_secs
            if down_for_secs is not None:
                self._down_until = time.monotonic() + down_for_secs

    def next_fault(self) -> Fault | None:
        """What to do with the request at hand (None: answer normally)."""
        with self._lock:
            if time.monotonic() < self._down_until:
                return Fault("close")
            if self._fail_next:
                return self._fail_next.pop(0)
            draw = self._random.random()
            if draw < self._close_rate:
                return Fault("close")
            if draw < self._close_rate + self._failure_rate:
                return Fault("status", self._failure_status)
            if self._stall_secs:
                return Fault("stall", stall_secs=self._stall_secs)
        return None
