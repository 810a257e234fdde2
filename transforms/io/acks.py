"""Acknowledging a held source record only once every item decoded from it has left the pipeline.

On Beam's local DirectRunner every step runs in one process, and the read hands records on before they are safe
to let go of. So the local readers hold them: the Pub/Sub read (``pipeline/workarounds/pubsub_read.py``) keeps
each message unacknowledged, its lease renewed, and the Kinesis reader (``transforms/io/kinesis.py``) keeps its
checkpoint behind them. ``pipeline/graph.py`` makes one ``Acknowledgements`` for the source and hands it to the
steps that account for a record's items: the decode step says how many items each record became (``expect``: its
events plus its decode dead letters), the delivery step which events it delivered and the dead-letter writer
which dead letters it wrote (``finish``). Once all items of a record are finished, the record is acknowledged. A
crash before that leaves it unacknowledged, so Pub/Sub delivers it again: at-least-once, and the collector
deduplicates by ``transaction_id``, which a re-read record keeps (SPEC §2). A Kinesis reader's acknowledgement
lets its checkpoint move past the record instead.

Why the steps report directly rather than as outputs to a last step of the graph: the DirectRunner hands a
step's outputs on only when its bundle ends, and one delivery bundle holds every batch of a reader's call. Made
an output, a delivery reached the acknowledging step only after the last batch of its bundle: a Kinesis
checkpoint could then move only after all 10 000 events of a read were delivered, not as each batch was
(``tests/test_kinesis.py``, issue 26). Reported directly, it moves after each batch.

The reader and the reporting steps meet in the source's ``AckLedger``, which each finds by the source's name
(``held_records``): Beam hands every bundle fresh copies of the DoFns, so nothing else would reach them all.
Only the local runner needs any of this, and ``pipeline/config.py`` sets it up only there: Dataflow's native
Pub/Sub source acknowledges after its own durable commit, and Beam's cross-language PubsubIO and a Kinesis reader
on a distributed runner acknowledge on checkpoint finalization.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

_log = logging.getLogger(__name__)

PUBSUB_SOURCE_PREFIX = "pubsub:"
KINESIS_SOURCE_PREFIX = "kinesis:"
_MESSAGE_ID_MARK = "#id="
RENEW_TICK_SECS = 1.0


class Acker(Protocol):
    """Acknowledges, or extends the lease of, ack ids of one subscription (or one Kinesis reader)."""

    def acknowledge(self, ack_ids: list[str]) -> None: ...

    def extend(self, ack_ids: list[str]) -> None: ...

    def renew_every_secs(self) -> float | None:
        """How often ``extend`` must be called for the held ack ids; None when they never expire."""


def held_key(source: str) -> str | None:
    """The key a held record is known by, from its source or one of its items' (``<record source>[#…]``): a
    Pub/Sub message's id (``pubsub:<origin>#id=<id>``; its origin may be a topic, read through a subscription
    the runner made), or a Kinesis record's own source (``kinesis:<stream>/<shard>#seq=<n>[&sub=<i>]``).
    None for any other source: nothing holds it."""
    if source.startswith(PUBSUB_SOURCE_PREFIX):
        start = source.find(_MESSAGE_ID_MARK)
        if start < 0:
            return None
        start += len(_MESSAGE_ID_MARK)
        end = source.find("#", start)
        return source[start:] if end < 0 else source[start:end]
    if source.startswith(KINESIS_SOURCE_PREFIX):
        first = source.find("#")
        if first < 0:
            return None
        end = source.find("#", first + 1)
        return source if end < 0 else source[:end]
    return None


class _Held:
    __slots__ = ("acker", "ack_ids", "expected", "finished")

    def __init__(self, acker: Acker):
        self.acker = acker
        self.ack_ids: list[str] = []
        self.expected: int | None = None  # unknown until the record is decoded
        self.finished = 0


class AckLedger:
    """Held records by ``held_key``; thread-safe (the lease renewer runs on its own thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, _Held] = {}
        self._renewer: threading.Thread | None = None
        self.acknowledged = 0
        self.ack_failures = 0

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, key: str, ack_id: str, acker: Acker) -> None:
        """Keeps a record (``held_key``) unacknowledged, its lease renewed, until its items are finished.

        A record read again while a copy is held (a Pub/Sub message delivered twice) joins that copy: both are
        acknowledged together, once the items of every copy decoded so far are finished.
        """
        with self._lock:
            held = self._held.get(key)
            if held is None:
                held = self._held[key] = _Held(acker)
            held.ack_ids.append(ack_id)
            if self._renewer is None:
                self._renewer = threading.Thread(target=self._renew_leases, name="ack-lease-renewer",
                                                 daemon=True)
                self._renewer.start()

    def expect(self, source: str, items: int) -> None:
        """The record at ``source`` became ``items`` events and dead letters (0: nothing to wait for)."""
        if not self._held:
            return
        key = held_key(source)
        with self._lock:
            held = self._held.get(key) if key else None
            if held is None:
                return
            held.expected = (held.expected or 0) + items
            ready = self._pop_if_done(key, held)
        self._acknowledge(ready)

    def finish(self, sources: Iterable[str]) -> None:
        """Each of ``sources`` is one item that was delivered or written as a dead letter."""
        if not self._held:
            return
        ready: list[_Held] = []
        with self._lock:
            for source in sources:
                key = held_key(source)
                held = self._held.get(key) if key else None
                if held is not None:
                    held.finished += 1
                    ready.extend(self._pop_if_done(key, held))
        self._acknowledge(ready)

    def _pop_if_done(self, key: str, held: _Held) -> list[_Held]:
        if held.expected is None or held.finished < held.expected:
            return []
        del self._held[key]
        return [held]

    def _acknowledge(self, ready: list[_Held]) -> None:
        for acker, ack_ids in _ack_ids_by_acker(ready):
            try:
                acker.acknowledge(ack_ids)
                self.acknowledged += len(ack_ids)
            except Exception as exc:
                # Nothing is lost: the messages come again after their lease and are deduplicated downstream.
                self.ack_failures += len(ack_ids)
                _log.warning("could not acknowledge %d held records (they will be read again): %s: %s",
                             len(ack_ids), type(exc).__name__, str(exc)[:200])

    def _renew_leases(self) -> None:
        last_renewed: dict[int, float] = {}
        while True:
            time.sleep(RENEW_TICK_SECS)
            now = time.monotonic()
            with self._lock:
                held = list(self._held.values())
            due = [record for record in held if _renewal_due(record.acker, last_renewed, now)]
            for acker, ack_ids in _ack_ids_by_acker(due):
                last_renewed[id(acker)] = now
                try:
                    acker.extend(ack_ids)
                except Exception as exc:
                    _log.warning("could not extend the lease of %d held Pub/Sub messages (they may be delivered "
                                 "again): %s: %s", len(ack_ids), type(exc).__name__, str(exc)[:200])


def _renewal_due(acker: Acker, last_renewed: dict[int, float], now: float) -> bool:
    every = acker.renew_every_secs()
    # First seen now: its ack ids were pulled within the last tick, with a whole deadline ahead.
    return every is not None and now - last_renewed.setdefault(id(acker), now) >= every


def _ack_ids_by_acker(held: list[_Held]) -> list[tuple[Acker, list[str]]]:
    grouped: dict[int, tuple[Acker, list[str]]] = {}
    for record in held:
        grouped.setdefault(id(record.acker), (record.acker, []))[1].extend(record.ack_ids)
    return list(grouped.values())


@functools.cache
def held_records(source_name: str) -> AckLedger:
    """The ledger of the source ``source_name`` (``pubsub:<subscription or topic>``, ``kinesis:<stream>``) in this
    process: its reader holds records in it, the steps given its ``Acknowledgements`` account for them."""
    return AckLedger()


@dataclass(frozen=True)
class Acknowledgements:
    """What the steps that account for a source's records report to (see the module docstring): the source's
    ledger in this process, found by ``source_name`` wherever a step runs."""

    source_name: str

    def expect(self, items: Iterable[tuple[str, int]]) -> None:
        """Each ``(record source, items)``: the record became that many events and decode dead letters."""
        ledger = held_records(self.source_name)
        for source, count in items:
            ledger.expect(source, count)

    def finish(self, sources: Iterable[str]) -> None:
        """Each of ``sources`` is one item that was delivered or written as a dead letter."""
        held_records(self.source_name).finish(sources)
