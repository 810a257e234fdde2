"""The patches that make Beam 2.77's local DirectRunner fit our pipeline (pipeline/direct_*.py), each checked
on the runner's own objects; the end-to-end effects are in the Kinesis and Pub/Sub integration tests."""
from types import SimpleNamespace

import apache_beam as beam
from apache_beam.runners.direct.bundle_factory import BundleFactory
from apache_beam.runners.direct.transform_evaluator import _ProcessElementsEvaluator
from apache_beam.runners.direct.util import TransformResult
from apache_beam.transforms.window import GlobalWindows

from pipeline.direct_sdf import allow_streaming_sdf
from pipeline.direct_specs import cache_dofn_specs


def test_an_idle_splittable_read_commits_no_empty_bundle():
    """An idle reader's re-invocation must hand nothing downstream: an empty bundle per re-invocation cascaded
    through every step and starved the stateful ones (the stalled local Kinesis run)."""
    allow_streaming_sdf()
    factory = BundleFactory(stacked=False)
    pcollection = beam.Pipeline() | beam.Create([1])
    empty, full = factory.create_bundle(pcollection), factory.create_bundle(pcollection)
    full.add(GlobalWindows.windowed_value(b"record"))
    step_context = SimpleNamespace(partial_keyed_state={})
    evaluator = SimpleNamespace(_applied_ptransform=None, keyed_holds={},
                                _execution_context=SimpleNamespace(get_step_context=lambda: step_context))
    evaluator._par_do_evaluator = SimpleNamespace(
        finish_bundle=lambda: TransformResult(evaluator, [empty, full], [], None, {}))

    result = _ProcessElementsEvaluator.finish_bundle(evaluator)

    assert result.uncommitted_output_bundles == [full]


def test_dofn_specs_are_inspected_once_per_class():
    from apache_beam.transforms import userstate

    class Stateful(beam.DoFn):
        COUNT = userstate.ReadModifyWriteStateSpec("count", beam.coders.VarIntCoder())

        def process(self, element, count=beam.DoFn.StateParam(COUNT)):
            yield element

    cache_dofn_specs()
    first = userstate.get_dofn_specs(Stateful())
    assert userstate.get_dofn_specs(Stateful()) is first  # a fresh copy, as the runner makes per bundle
    assert userstate.is_stateful_dofn(Stateful()) and not userstate.is_stateful_dofn(beam.DoFn())
    assert [spec.name for spec in first[0]] == ["count"]
