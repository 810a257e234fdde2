"""The Beam shell every per-element stage shares (decode, identify, mask): one DoFn and one PTransform around a
``StageWork``, the stage's own work on one element, which can be run and tested without a pipeline.

The shell keeps the stage's counters for the bundle and reports them when it ends (``BundleCounts``), sends dead
letters to ``DEAD_LETTER_TAG`` and anything else the work declares to its own tagged outputs; the work only says
what an element becomes.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import apache_beam as beam

from transforms.io.dead_letters import DEAD_LETTER_TAG, event_failure
from transforms.model.records import SourcedEvent
from transforms.stages.bundle_counts import BundleCounts

Settings = TypeVar("Settings")


class StageWork:
    """One stage's work on one element. ``process`` yields its outputs: main outputs as they are, dead letters and
    other outputs as ``beam.pvalue.TaggedOutput``; ``counts.added[name] += n`` counts within a bundle."""

    counters: tuple[str, ...] = ()  # the stage's Beam counters, in the "gatewaystream" namespace
    outputs: tuple[str, ...] = ()  # tagged outputs besides the main one and the dead letters

    def __init__(self) -> None:
        self.counts = BundleCounts("gatewaystream", *self.counters)

    def setup(self) -> None:
        """Once per DoFn instance, before its first bundle."""

    def start_bundle(self) -> None:
        self.counts.start()

    def process(self, element: Any) -> Iterable[Any]:
        raise NotImplementedError

    def finish_bundle(self) -> Iterable[Any]:
        """Reports the bundle's counts; may yield windowed outputs (``beam.pvalue.TaggedOutput`` of a
        ``WindowedValue``), as a DoFn's ``finish_bundle`` may."""
        self.counts.report()
        return ()


class EventFunction(StageWork, Generic[Settings]):
    """Each ``SourcedEvent`` → one ``SourcedEvent`` through ``function(event, settings)``. An exception
    dead-letters the event under ``stage`` and ``error_reason``, its payload only the event's id: before or
    during masking an event may hold secrets (``event_failure``). ``count(event, added)`` counts what it made."""

    def __init__(self, stage: str, error_reason: str, function: Callable[[dict[str, Any], Settings], dict[str, Any]],
                 settings: Settings, counters: tuple[str, ...] = (),
                 count: Callable[[dict[str, Any], dict[str, int]], None] | None = None):
        self.counters = counters
        super().__init__()
        self._failure = functools.partial(event_failure, stage, error_reason)
        self._function = function
        self._settings = settings
        self._count = count

    def process(self, item: SourcedEvent) -> Iterable[Any]:
        try:
            event = self._function(item.event, self._settings)
        except Exception as exc:
            yield self._failure(exc, item.source, item.event)
            return
        if self._count is not None:
            self._count(event, self.counts.added)
        yield SourcedEvent(item.source, event)


class _StageFn(beam.DoFn):
    def __init__(self, work: StageWork):
        self._work = work

    def setup(self):
        self._work.setup()

    def start_bundle(self):
        self._work.start_bundle()

    def process(self, element):
        return self._work.process(element)

    def finish_bundle(self):
        return self._work.finish_bundle()


class Stage(beam.PTransform):
    """A ``StageWork`` as a step: its main output is ``events``, its dead letters ``dead_letters``, and each of
    ``work.outputs`` an output of that name."""

    def __init__(self, work: StageWork):
        super().__init__()
        self._work = work

    def expand(self, elements):
        return elements | beam.ParDo(_StageFn(self._work)).with_outputs(DEAD_LETTER_TAG, *self._work.outputs,
                                                                         main="events")
