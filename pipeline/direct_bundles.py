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
