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
"""
from __future__ import annotations


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
