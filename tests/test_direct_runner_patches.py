"""The patches that make Beam 2.77's local DirectRunner fit our pipeline (pipeline/workarounds/), each checked
on the runner's own objects; the end-to-end effects are in the Kinesis and Pub/Sub integration tests."""
import threading
import time
from types import SimpleNamespace

import apache_beam as beam
import pytest
from apache_beam.runners.direct.bundle_factory import BundleFactory
from apache_beam.runners.direct.transform_evaluator import _ParDoEvaluator, _PubSubReadEvaluator
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.timestamp import Timestamp

from devtools.local_services import wait_for
from pipeline.workarounds import pubsub_read
from pipeline.workarounds.bundles import (
    commit_only_nonempty_bundles,
    earliest_timestamp_micros,
    refresh_watermarks_from_bundle_minimums,
    stack_by_timestamp_micros,
)
from pipeline.workarounds.dofn_specs import cache_dofn_specs
from pipeline.workarounds.no_prism import PrismNotTried, never_try_prism
from pipeline.workarounds.pubsub_read import (
    DELIVERY_LAG_SECS,
    _ShortPullClient,
    _SubscriptionAcker,
    use_short_pulls,
    watermark_after_pull,
)
from transforms.io.acks import AckLedger


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


def test_the_pubsub_read_watermark_stays_behind_messages_a_pull_may_not_have_handed_out_yet():
    """Beam's evaluator sets the read's watermark to the wall clock after each pull; ours to the pull's start
    less the delivery lag, so that a message published just before is not behind the watermark on arrival."""
    from google.cloud.pubsub_v1.types import PullResponse

    use_short_pulls()

    class NothingWaiting:
        def pull(self, subscription, max_messages, timeout):
            return PullResponse()

    client = _ShortPullClient(NothingWaiting(), AckLedger())
    evaluator = object.__new__(_PubSubReadEvaluator)
    evaluator._sub_name = "projects/local/subscriptions/idle"
    evaluator._get_subscriber_client = lambda transform: client
    evaluator.source = SimpleNamespace(timestamp_attribute=None, with_attributes=False)
    evaluator._applied_ptransform = SimpleNamespace(transform=object(), inputs=("subscription",))
    evaluator._evaluation_context = SimpleNamespace(create_bundle=lambda pvalue: SimpleNamespace())
    evaluator._execution_context = SimpleNamespace(
        get_step_context=lambda: SimpleNamespace(partial_keyed_state={}))
    before = time.time()
    result = evaluator.finish_bundle()
    after = time.time()
    assert result.uncommitted_output_bundles == []
    hold = result.keyed_watermark_holds[None]
    assert Timestamp.of(before - DELIVERY_LAG_SECS) <= hold <= Timestamp.of(after - DELIVERY_LAG_SECS)


def test_a_pull_that_leaves_a_backlog_holds_the_watermark_at_the_oldest_message_it_pulled():
    started = 1_795_600_800.0
    assert watermark_after_pull(started, [], backlog_left=False) == Timestamp.of(started - DELIVERY_LAG_SECS)
    assert watermark_after_pull(started, [started - 1, started - 600, started - 300], backlog_left=False) == \
        Timestamp.of(started - DELIVERY_LAG_SECS)
    assert watermark_after_pull(started, [started - 1, started - 600, started - 300], backlog_left=True) == \
        Timestamp.of(started - 600)
    assert watermark_after_pull(started, [started - 1], backlog_left=True) == Timestamp.of(started - DELIVERY_LAG_SECS)


def test_the_pubsub_read_pulls_one_bundle_ahead_and_no_more():
    """While the runner processes a bundle, the next one is pulled (and held in the ledger); the one after that
    waits until the runner takes it, so a stalled pipeline leaves its backlog in Pub/Sub."""
    from google.cloud.pubsub_v1.types import PullResponse, ReceivedMessage

    class Backlog:
        def __init__(self):
            self.pulls = 0

        def pull(self, subscription, max_messages, timeout):
            self.pulls += 1
            first = self.pulls * 10
            return PullResponse(received_messages=[
                ReceivedMessage(ack_id=f"ack-{n}", message={"data": b"{}", "message_id": f"prefetch-{n}"})
                for n in range(first, first + 3)  # fewer than asked: one pull per bundle
            ])

        def get_subscription(self, subscription):
            return SimpleNamespace(ack_deadline_seconds=60)

        def modify_ack_deadline(self, **_):
            pass

        def acknowledge(self, **_):
            pass

    backlog = Backlog()
    ledger = AckLedger()
    client = _ShortPullClient(backlog, ledger)
    held_before = len(ledger)
    first = client.pull("projects/local/subscriptions/ahead", 10, 30)
    assert [item.message.message_id for item in first.received_messages] == ["prefetch-10", "prefetch-11",
                                                                             "prefetch-12"]
    wait_for(lambda: len(ledger) - held_before == 6, 10, "the second bundle, pulled ahead and held",
             interval=0.01)
    time.sleep(0.2)  # time enough for a third pull, which must not happen while the second bundle waits
    assert backlog.pulls == 2
    second = client.pull("projects/local/subscriptions/ahead", 10, 30)
    assert [item.message.message_id for item in second.received_messages][0] == "prefetch-20"
    wait_for(lambda: len(ledger) - held_before == 9, 10, "the third bundle, pulled ahead and held",
             interval=0.01)
    assert backlog.pulls == 3


def test_a_bounded_direct_runner_pipeline_runs_on_the_python_runner_without_fetching_prism(monkeypatch, tmp_path):
    """Beam's DirectRunner would download Prism from GitHub and run a bounded graph there; it must not."""
    from apache_beam.runners.portability import prism_runner
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    fetched = []
    monkeypatch.setattr(prism_runner.PrismJobServer, "_download_to_local_path",
                        lambda self, *args, **kwargs: fetched.append(args))
    never_try_prism()
    output = tmp_path / "out"
    pipeline = beam.Pipeline(runner="DirectRunner")
    _ = pipeline | beam.Create(["a", "b"]) | beam.Map(str.upper) | beam.io.WriteToText(str(output))
    result = pipeline.run()
    result.wait_until_finish()

    assert isinstance(result, fn_runner.RunnerResult)
    assert sorted(line for path in tmp_path.glob("out*") for line in path.read_text().split()) == ["A", "B"]
    assert fetched == []
    with pytest.raises(PrismNotTried):
        prism_runner.PrismRunner().run_pipeline(pipeline, pipeline.options)


def test_pubsub_acknowledgements_leave_the_runner_thread_and_the_waiting_ones_go_out_together(monkeypatch, caplog):
    monkeypatch.setattr(pubsub_read, "MAX_ACK_IDS_PER_CALL", 3)
    first_call_may_return = threading.Event()
    calls: list[list[str]] = []

    class Emulator:
        def acknowledge(self, subscription, ack_ids):
            calls.append(list(ack_ids))
            if len(calls) == 1:
                first_call_may_return.wait(30)
            elif len(calls) == 2:
                raise RuntimeError("emulator unavailable")

    acker = _SubscriptionAcker(Emulator(), "projects/local/subscriptions/s")
    acker.acknowledge(["a"])
    wait_for(lambda: len(calls) == 1, 10, "the first acknowledge call")
    acker.acknowledge(["b", "c"])  # returns while the first call is still out
    acker.acknowledge(["d", "e"])
    assert calls == [["a"]]
    first_call_may_return.set()
    wait_for(lambda: len(calls) == 3, 10, "the waiting ack ids, sent together in calls of at most 3")
    assert calls[1:] == [["b", "c", "d"], ["e"]]
    assert "could not acknowledge 3 Pub/Sub messages (they will be read again): RuntimeError" in caplog.text
    acker.acknowledge(["f"])  # the sender goes on after a failed call
    wait_for(lambda: len(calls) == 4, 10, "an acknowledgement after the failure")
    assert calls[3] == ["f"]


def test_output_bundles_stack_values_that_share_timestamp_windows_and_pane_only():
    from apache_beam.transforms.window import IntervalWindow
    from apache_beam.utils.windowed_value import WindowedValue

    stack_by_timestamp_micros()
    bundle = BundleFactory(stacked=True).create_bundle(beam.Pipeline() | beam.Create([1]))
    later, other_window = Timestamp(micros=2_000_001), (IntervalWindow(0, 10),)
    for value, timestamp, windows in [("a", Timestamp(2), GlobalWindows.windowed_value(0).windows),
                                      ("b", Timestamp(2), GlobalWindows.windowed_value(0).windows),
                                      ("c", Timestamp(2), GlobalWindows.windowed_value(0).windows),
                                      ("d", later, GlobalWindows.windowed_value(0).windows),
                                      ("e", later, other_window)]:
        bundle.add(WindowedValue(value, timestamp, windows))

    assert len(bundle._elements) == 3  # a-c stacked, then d, then e
    assert [(wv.value, wv.timestamp, wv.windows) for wv in bundle.get_elements_iterable()] == [
        ("a", Timestamp(2), GlobalWindows.windowed_value(0).windows),
        ("b", Timestamp(2), GlobalWindows.windowed_value(0).windows),
        ("c", Timestamp(2), GlobalWindows.windowed_value(0).windows),
        ("d", later, GlobalWindows.windowed_value(0).windows),
        ("e", later, other_window),
    ]


def _committed_bundle(timestamps_micros: list[int]):
    from apache_beam.utils.windowed_value import WindowedValue

    stack_by_timestamp_micros()
    bundle = BundleFactory(stacked=True).create_bundle(beam.Pipeline() | beam.Create([1]))
    for n, micros in enumerate(timestamps_micros):
        bundle.add(WindowedValue(n, Timestamp(micros=micros), GlobalWindows.windowed_value(0).windows))
    bundle.commit(None)
    return bundle


def test_a_transform_watermark_waits_for_the_earliest_element_of_its_pending_bundles():
    """The patched refresh reads each pending bundle's earliest timestamp from its stacks, once: the watermark must
    be what Beam's own refresh computes from every element."""
    from apache_beam.runners.direct.watermark_manager import _TransformWatermarks

    original_refresh = _TransformWatermarks.refresh
    refresh_watermarks_from_bundle_minimums()
    assert _TransformWatermarks.refresh is not original_refresh
    pending = [_committed_bundle([5_000_000, 5_000_000, 3_000_000, 9_000_000]), _committed_bundle([4_000_000]),
               _committed_bundle([])]
    assert [earliest_timestamp_micros(bundle) for bundle in pending] == [3_000_000, 4_000_000, None]
    assert pending[0]._earliest_timestamp_micros == 3_000_000  # kept: a committed bundle no longer changes

    def watermarks(refresh) -> tuple:
        upstream = _TransformWatermarks(None, {}, "upstream")
        upstream._output_watermark = Timestamp(8)
        downstream = _TransformWatermarks(None, {}, "downstream")
        downstream.update_input_transform_watermarks([upstream])
        downstream._pending.update(pending)
        advanced = refresh(downstream)
        downstream._pending.difference_update(pending[:2])  # both delivered: only the upstream holds it back
        return advanced, downstream._output_watermark, refresh(downstream), downstream._output_watermark

    assert watermarks(_TransformWatermarks.refresh) == watermarks(original_refresh) == (
        True, Timestamp(micros=2_999_999), True, Timestamp(8))


def test_the_pubsub_read_times_each_message_by_its_publish_time_in_whole_micros():
    from datetime import datetime, timezone

    from google.cloud.pubsub_v1.types import PullResponse, ReceivedMessage

    use_short_pulls()
    published = datetime(2026, 11, 27, 4, 30, 15, 123456, tzinfo=timezone.utc)

    class OneMessage:
        def pull(self, subscription, max_messages, timeout):
            return PullResponse(received_messages=[ReceivedMessage(ack_id="ack-1", message={
                "data": b"{}", "message_id": "m-1", "attributes": {"format": "kong"}, "publish_time": published})])

        def get_subscription(self, subscription):
            return SimpleNamespace(ack_deadline_seconds=60)

        def modify_ack_deadline(self, **_):
            pass

    client = _ShortPullClient(OneMessage(), AckLedger())
    evaluator = object.__new__(_PubSubReadEvaluator)
    evaluator._sub_name = "projects/local/subscriptions/timed"
    evaluator._get_subscriber_client = lambda transform: client
    evaluator._applied_ptransform = SimpleNamespace(transform=object())
    (timestamp, message), = evaluator._read_from_pubsub(None)
    assert timestamp == Timestamp.from_utc_datetime(published) == Timestamp(micros=1_795_753_815_123_456)
    assert (message.data, message.attributes, message.message_id, message.publish_time, message.ordering_key) == (
        b"{}", {"format": "kong"}, "m-1", published, "")
