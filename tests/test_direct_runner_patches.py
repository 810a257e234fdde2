"""The patches that make Beam 2.77's local DirectRunner fit our pipeline (pipeline/direct_*.py), each checked
on the runner's own objects; the end-to-end effects are in the Kinesis and Pub/Sub integration tests."""
from types import SimpleNamespace

import apache_beam as beam
from apache_beam.runners.direct.bundle_factory import BundleFactory
from apache_beam.runners.direct.transform_evaluator import _ParDoEvaluator
from apache_beam.transforms.window import GlobalWindows

from pipeline.direct_bundles import commit_only_nonempty_bundles
from pipeline.direct_specs import cache_dofn_specs


def test_a_bundle_commits_only_its_outputs_that_hold_elements():
    """Empty output bundles must not reach the next steps: they cascaded through every step (77 % of a Pub/Sub
    run's work items) and, after an idle splittable read, starved the stateful steps (the stalled local Kinesis
    run)."""
    commit_only_nonempty_bundles()
    factory = BundleFactory(stacked=False)
    pcollection = beam.Pipeline() | beam.Create([1])
    empty, full = factory.create_bundle(pcollection), factory.create_bundle(pcollection)
    full.add(GlobalWindows.windowed_value(b"record"))
    step_context = SimpleNamespace(partial_keyed_state={})
    evaluator = SimpleNamespace(
        runner=SimpleNamespace(finish=lambda: None, teardown=lambda: None),
        _tagged_receivers={"dead_letters": empty, "events": full},
        _counter_factory=SimpleNamespace(get_counters=lambda: []),
        user_state_context=None, _applied_ptransform=None,
        _execution_context=SimpleNamespace(get_step_context=lambda: step_context))

    result = _ParDoEvaluator.finish_bundle(evaluator)

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
