"""Beam's local DirectRunner handing on only bundles that hold elements, going around Beam (issue 5).

Beam 2.77's legacy DirectRunner commits every output of a ParDo after each bundle, empty ones included, and
schedules every consumer for each: a bundle of events made Decode, Identify, Mask and the rest each send an empty
bundle down their dead-letter outputs, so the dead-letter branch (five steps) ran ~5 empty work items per real
bundle: 77 % of all work items in a Pub/Sub benchmark run, each paying the runner's per-bundle set-up.

It was worse after a splittable DoFn: the runner re-invokes a deferred reader at once (a timer at -∞), so an idle
Kinesis reader ran several times a second and each run sent ~27 empty work items through the graph. Steps with
state (GroupIntoBatches) run their work one item at a time, newest first (``_SerialEvaluationState`` pops a deque
from the right), and they received empty items faster than they ran them, so the oldest items, which held the
real events or the timer that flushes a batch, waited forever: read events were decoded and never delivered
(the rare hang of the throttled-stream test, found by logging every scheduled work item).

``commit_only_nonempty_bundles`` drops empty output bundles, as the runner's own Pub/Sub read already does.
Watermarks do not depend on them (the watermark manager tracks holds and pending bundles, and an empty bundle
only added a pending one), and timers fire through their own bundles. Other runners are not affected.

``stack_by_timestamp_micros``: the runner stacks consecutive outputs of a bundle that share timestamp, windows
and pane. To compare timestamps it reads ``WindowedValue.timestamp``, which builds a new ``Timestamp`` (a Python
object with checks in its constructor) on each read, two per element output: ~8 % of the runner's worker thread
in a Pub/Sub drain (py-spy). The patch compares the integer ``timestamp_micros`` the property is built from.

``refresh_watermarks_from_bundle_minimums``: after every bundle, the runner refreshes the watermarks of the
transforms downstream, and each refresh walked every element of every bundle still pending at that transform
to find the earliest timestamp (unstacking stacked values into new ``WindowedValue``s and building a
``Timestamp`` per element; Beam's own TODO in ``_TransformWatermarks.refresh`` proposes keeping it per
bundle). With bundles of ~1 000 Pub/Sub messages that was ~9 % of a drain's GIL time (py-spy). The patch
reads each committed bundle's earliest timestamp once, from its stacks, and keeps it on the bundle.
"""
from __future__ import annotations

_NOT_READ = object()  # no earliest timestamp kept on the bundle yet (None is an empty bundle's)


def commit_only_nonempty_bundles() -> None:
    """Patches the DirectRunner's ParDo evaluator (idempotent); splittable DoFns' evaluator goes through it."""
    from apache_beam.runners.direct.transform_evaluator import _ParDoEvaluator

    finish_bundle = _ParDoEvaluator.finish_bundle
    if getattr(finish_bundle, "nonempty_only", False):
        return

    def finish_bundle_without_empty_outputs(self):
        result = finish_bundle(self)
        result.uncommitted_output_bundles = [bundle for bundle in result.uncommitted_output_bundles
                                             if bundle.has_elements()]
        return result

    finish_bundle_without_empty_outputs.nonempty_only = True
    _ParDoEvaluator.finish_bundle = finish_bundle_without_empty_outputs


def stack_by_timestamp_micros() -> None:
    """Patches the DirectRunner's output bundles to compare timestamps as integers (idempotent)."""
    from apache_beam.runners.direct.bundle_factory import _Bundle
    from apache_beam.utils.windowed_value import WindowedValue

    if getattr(_Bundle.add, "by_timestamp_micros", False):
        return
    stacked_type = _Bundle._StackedWindowedValues

    def add(self, element):
        assert not self._committed
        if not self._stacked:
            self._elements.append(element)
            return
        if self._elements and isinstance(element, WindowedValue):
            last = self._elements[-1]
            first = last._initial_windowed_value if type(last) is stacked_type else last
            if (isinstance(first, WindowedValue) and first.timestamp_micros == element.timestamp_micros
                    and first.windows == element.windows and first.pane_info == element.pane_info):
                if last is first:
                    last = self._elements[-1] = stacked_type(first)
                last.add_value(element.value)
                return
        self._elements.append(element)

    add.by_timestamp_micros = True
    _Bundle.add = add


def refresh_watermarks_from_bundle_minimums() -> None:
    """Patches the DirectRunner's watermark refresh to read each pending bundle's earliest timestamp once
    (idempotent); see the module docstring."""
    from apache_beam.runners.direct.watermark_manager import WatermarkManager, _TransformWatermarks
    from apache_beam.utils.timestamp import TIME_GRANULARITY, Timestamp

    if getattr(_TransformWatermarks.refresh, "by_bundle_minimum", False):
        return
    never = WatermarkManager.WATERMARK_POS_INF

    def refresh(self) -> bool:
        # Beam's refresh, with the earliest pending timestamp taken from earliest_timestamp_micros.
        with self._lock:
            earliest_pending = None
            for input_bundle in self._pending:
                micros = earliest_timestamp_micros(input_bundle)
                if micros is not None and (earliest_pending is None or micros < earliest_pending):
                    earliest_pending = micros
            pending_holder = (never if earliest_pending is None
                              else Timestamp(micros=earliest_pending) - TIME_GRANULARITY)
            producer_watermark = min([tw.output_watermark for tw in self._input_transform_watermarks] + [never])
            self._input_watermark = max(self._input_watermark, min(pending_holder, producer_watermark))
            earliest_hold = never
            for hold in self._keyed_earliest_holds.values():
                if hold < earliest_hold:
                    earliest_hold = hold
            new_output_watermark = min(self._input_watermark, earliest_hold)
            advanced = new_output_watermark > self._output_watermark
            self._output_watermark = new_output_watermark
            return advanced

    refresh.by_bundle_minimum = True
    _TransformWatermarks.refresh = refresh


def earliest_timestamp_micros(bundle) -> int | None:
    """The earliest element timestamp of a committed bundle (None when empty), read from its stacks, not from
    each element, and kept on the bundle: a committed bundle's elements no longer change."""
    from apache_beam.runners.direct.bundle_factory import _Bundle

    cached = bundle.__dict__.get("_earliest_timestamp_micros", _NOT_READ)
    if cached is not _NOT_READ:
        return cached
    stacked_type = _Bundle._StackedWindowedValues
    earliest = None
    for element in bundle._elements:  # WindowedValues, and stacks of values sharing their first one's timestamp
        first = element._initial_windowed_value if type(element) is stacked_type else element
        if earliest is None or first.timestamp_micros < earliest:
            earliest = first.timestamp_micros
    if bundle._committed:
        bundle._earliest_timestamp_micros = earliest
    return earliest

