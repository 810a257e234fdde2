"""Unbounded splittable DoFns (our Kinesis reader) on Beam 2.77's local DirectRunner, going around a Beam bug.

The DirectRunner expands a splittable DoFn into a ``GroupByKey`` and ``ProcessElements``; that GroupByKey
appears only while overrides are applied, after the streaming GroupByKey overrides have run, so a streaming
pipeline fails validation with "Transform node …/ProcessKeyedElements/GroupByKey/GroupByKey was not replaced
as expected". ``allow_streaming_sdf`` applies the streaming GroupByKey overrides once more at the end of the
list, which replaces that GroupByKey as the runner does every other one.

And the DirectRunner loses a deferred remainder (see ``_invoke_process_element``), so an unbounded reader
would end after its first call; the patched invoker keeps it.

Only the DirectRunner is affected; other runners execute splittable DoFns natively. (An idle reader's
empty bundles are dropped by ``pipeline/workarounds/bundles.py``.)
"""
from __future__ import annotations

_STREAMING_OVERRIDES = ("StreamingGroupByKeyOverride", "StreamingGroupAlsoByWindowOverride")


def allow_streaming_sdf() -> None:
    """Patches the DirectRunner's override list (idempotent)."""
    from apache_beam.runners.direct import direct_runner

    original = direct_runner._get_transform_overrides
    if getattr(original, "streaming_sdf", False):
        return

    def overrides_with_streaming_sdf(pipeline_options):
        overrides = original(pipeline_options)
        streaming = [o for o in overrides if type(o).__name__ in _STREAMING_OVERRIDES]
        # The final GroupByKey override expands the splittable DoFn's GroupByKey; these replace its parts.
        return overrides + [type(o)() for o in streaming]

    overrides_with_streaming_sdf.streaming_sdf = True
    direct_runner._get_transform_overrides = overrides_with_streaming_sdf
    from apache_beam.runners.direct.sdf_direct_runner import SDFProcessElementInvoker

    SDFProcessElementInvoker.invoke_process_element = _invoke_process_element


def _invoke_process_element(self, sdf_invoker, output_processor, element, restriction, watermark_estimator_state,
                            *args, **kwargs):
    """SDFProcessElementInvoker.invoke_process_element taking the deferred remainder from ``invoke_process``.

    Beam's version asks for a checkpoint from a timer thread or after a ProcessContinuation, through an invoker
    whose restriction tracker is already cleared by then, so a deferred remainder is lost and the reader ends.
    Our reader returns its records as a list and defers its remainder, which ``invoke_process`` returns."""
    from apache_beam.runners.direct.sdf_direct_runner import SDFProcessElementInvoker

    output_processor.reset()
    residuals = sdf_invoker.invoke_process(element, additional_args=args, restriction=restriction,
                                           watermark_estimator_state=watermark_estimator_state)
    yield from output_processor.output_iter or ()
    if residuals:
        (_element, (residual_restriction, _estimator_state)), _size = residuals[0].residual_value.value
        yield SDFProcessElementInvoker.Result(residual_restriction=residual_restriction)
    else:
        yield SDFProcessElementInvoker.Result()
