"""The Beam transforms under TestPipeline, against real files and the real local collector.

Batch outputs are captured where they land (files, the collector), not with assert_that: in Beam 2.77
assert_that can miss a batch that GroupIntoBatches flushes at the end of input.
"""
import glob
import json
from pathlib import Path

import apache_beam as beam
import orjson
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.test_decode import KONG_05, KONG_39
from transforms.io.dead_letters import DEAD_LETTER_TAG, WriteDeadLetters, read_dead_letter_file
from transforms.io.sink import RetryPolicy, WriteBatchFiles, WriteToAnalyticsApi
from transforms.model.records import RawRecord, RecordChunk, SourcedEvent
from transforms.stages.batching import BatchEvents, shard_key
from transforms.stages.bundle_counts import BundleCounts
from transforms.stages.decode import DecodeRecords, DecodeSettings, decode_record
from transforms.stages.identity import IdentifyUsers, IdentitySettings, identify
from transforms.stages.masking import MaskEvents, MaskSettings


def kong_event(n):
    record = orjson.loads(orjson.dumps(KONG_39))
    record["request"]["id"] = f"id-{n:03d}"
    return record


def decoded_events(count):
    return [decode_record(RawRecord(orjson.dumps(kong_event(n)), f"s#{n}")).events[0] for n in range(count)]


def test_decode_records_splits_events_and_dead_letters():
    records = [RawRecord(orjson.dumps(KONG_05), "a"), RawRecord(b"{oops", "b"), RawRecord(orjson.dumps(KONG_39), "c")]
    with BeamTestPipeline() as p:
        decoded = p | beam.Create(records) | DecodeRecords(DecodeSettings())
        assert_that(decoded.events | "Sources" >> beam.Map(lambda item: item.source), equal_to(["a", "c"]),
                    label="events")
        assert_that(decoded[DEAD_LETTER_TAG] | beam.Map(lambda d: (d["source"], d["reason"])),
                    equal_to([("b", "invalid_json")]), label="dead")


def test_a_chunk_of_records_decodes_as_its_records_do():
    records = [RawRecord(orjson.dumps(KONG_05), "a"), RawRecord(b"{oops", "b"), RawRecord(orjson.dumps(KONG_39), "c")]
    with BeamTestPipeline() as p:
        decoded = p | beam.Create([RecordChunk(records[:2]), RecordChunk(records[2:])]) | DecodeRecords(
            DecodeSettings())
        assert_that(decoded.events | "Events" >> beam.Map(lambda item: (item.source, item.event["request"]["uri"])),
                    equal_to([(record.source, event.event["request"]["uri"])
                              for record in records for event in decode_record(record).events]), label="events")
        assert_that(decoded[DEAD_LETTER_TAG] | beam.Map(lambda d: (d["source"], d["reason"])),
                    equal_to([("b", "invalid_json")]), label="dead")


def test_per_event_counters_are_committed_once_per_bundle_with_every_event_counted():
    """Decode, identify and mask add their counts up over a bundle (``transforms/stages/bundle_counts.py``): the
    committed totals are still one per record, event, identified user and masked event."""
    events = [kong_event(n) for n in range(5)]
    events[1]["request"]["headers"].pop("x-consumer-custom-id", None)
    records = [RawRecord(orjson.dumps(event), f"r#{n}") for n, event in enumerate(events)]
    records.append(RawRecord(b"{oops", "bad"))
    settings = IdentitySettings()
    with_user = sum(1 for record in records[:5]
                    if identify(decode_record(record).events[0].event, settings).get("user_id"))
    pipeline = BeamTestPipeline()
    decoded = (pipeline | beam.Create([RecordChunk(records[:3]), RecordChunk(records[3:])])
               | DecodeRecords(DecodeSettings()))
    identified = decoded.events | IdentifyUsers(settings)
    _ = identified.events | MaskEvents(MaskSettings())
    result = pipeline.run()
    result.wait_until_finish()
    counters = {counter.key.metric.name: counter.committed
                for counter in result.metrics().query(MetricsFilter().with_namespace("gatewaystream"))["counters"]}
    assert 0 < with_user < 5
    assert counters["records_read"] == 6
    assert counters["events_decoded"] == 5
    assert counters["events_with_user_id"] == with_user
    assert counters["events_masked"] == 5


def test_bundle_counts_forget_a_failed_bundle_when_the_next_starts():
    counts = BundleCounts("gatewaystream", "events_masked")
    counts.start()
    counts.added["events_masked"] += 3  # a bundle that fails before finish_bundle reports nothing
    counts.start()
    assert counts.added == {"events_masked": 0}


def test_batches_close_at_batch_size(tmp_path):
    with BeamTestPipeline() as p:
        batched = p | beam.Create(decoded_events(7)) | BatchEvents("dest", batch_size=3, max_batch_delay_secs=60,
                                                                   shards=1)
        _ = batched["batches"] | WriteBatchFiles(str(tmp_path))
    batches = [json.loads(Path(path).read_text()) for path in glob.glob(str(tmp_path / "batch-*.json"))]
    assert sorted(len(batch) for batch in batches) == [1, 3, 3]
    assert sorted(e["transaction_id"] for batch in batches for e in batch) == [f"id-{n:03d}" for n in range(7)]


def test_bounded_input_is_batched_within_bundles_and_flushed_at_their_end(tmp_path):
    with BeamTestPipeline() as p:
        batched = p | beam.Create(decoded_events(7)) | BatchEvents("dest", batch_size=3, max_batch_delay_secs=60,
                                                                   shards=2, bounded=True)
        _ = batched["batches"] | WriteBatchFiles(str(tmp_path))
    batches = [json.loads(Path(path).read_text()) for path in glob.glob(str(tmp_path / "batch-*.json"))]
    assert all(1 <= len(batch) <= 3 for batch in batches)
    assert sorted(e["transaction_id"] for batch in batches for e in batch) == [f"id-{n:03d}" for n in range(7)]
    shard_of = {e["transaction_id"]: shard_key("dest", e["transaction_id"], 2) for batch in batches for e in batch}
    assert all(len({shard_of[e["transaction_id"]] for e in batch}) == 1 for batch in batches)
    # One bundle here (Create): per shard, at most one batch is not full.
    short_batches_per_shard = {}
    for batch in batches:
        shard = shard_of[batch[0]["transaction_id"]]
        short_batches_per_shard[shard] = short_batches_per_shard.get(shard, 0) + (len(batch) < 3)
    assert set(short_batches_per_shard.values()) <= {0, 1}


def test_bounded_batches_never_mix_windows():
    from apache_beam.transforms.window import FixedWindows, TimestampedValue

    from transforms.stages.grouping import BatchByKey

    values = [TimestampedValue(("k", n), n * 10) for n in range(12)]  # windows of 60 s: 6 values each
    with BeamTestPipeline() as p:
        batches = (p | beam.Create(values) | beam.WindowInto(FixedWindows(60))
                   | BatchByKey(4, 60, bounded=True) | beam.Map(lambda kv: sorted(kv[1])))
        assert_that(batches, equal_to([[0, 1, 2, 3], [4, 5], [6, 7, 8, 9], [10, 11]]))


def test_a_bounded_replay_delivers_while_it_still_reads(tmp_path):
    """No shuffle between decoding and delivery on a bounded input: the first batch is written before the
    last record is read (with a GroupByKey, the runner read everything first)."""
    stamps = tmp_path / "read-stamps"

    def stamp_batches_written_so_far(event):
        with open(stamps, "a") as handle:
            handle.write(f"{len(glob.glob(str(tmp_path / 'out' / 'batch-*.json')))}\n")
        return event

    with BeamTestPipeline() as p:
        batched = (p | beam.Create(decoded_events(9)) | beam.Map(stamp_batches_written_so_far)
                   | BatchEvents("dest", batch_size=3, max_batch_delay_secs=60, shards=1, bounded=True))
        _ = batched["batches"] | WriteBatchFiles(str(tmp_path / "out"))
    batches_written_before_each_read = [int(line) for line in stamps.read_text().split()]
    assert len(batches_written_before_each_read) == 9
    assert batches_written_before_each_read[-1] >= 1
    assert len(glob.glob(str(tmp_path / "out" / "batch-*.json"))) == 3


def test_oversize_event_is_a_batch_stage_dead_letter(tmp_path):
    huge = decoded_events(1)[0]
    huge.event["metadata"]["blob"] = "x" * 1_000_001
    with BeamTestPipeline() as p:
        batched = p | beam.Create([huge]) | BatchEvents("dest", 3, 60, 1)
        _ = batched[DEAD_LETTER_TAG] | WriteDeadLetters(str(tmp_path))
    [path] = glob.glob(str(tmp_path / "dead-letters-*.avro"))
    [letter] = read_dead_letter_file(path)
    assert (letter["stage"], letter["reason"], letter["payload_truncated"]) == ("batch", "event_too_large", True)


def test_sink_posts_batches_to_the_collector(collector):
    with BeamTestPipeline() as p:
        batched = p | beam.Create(decoded_events(5)) | BatchEvents(collector.url, 2, 60, 2)
        _ = batched["batches"] | WriteToAnalyticsApi(collector.url, "app-id")
    assert sorted(e["transaction_id"] for e in collector.store.events()) == [f"id-{n:03d}" for n in range(5)]


def test_rejected_batch_becomes_one_dead_letter_per_event(tmp_path):
    from devtools.collector import Collector

    with Collector(str(tmp_path / "c.db"), application_id="the-right-id") as strict:
        with BeamTestPipeline() as p:
            batched = p | beam.Create(decoded_events(3)) | BatchEvents(strict.url, 10, 60, 1)
            delivered = batched["batches"] | WriteToAnalyticsApi(strict.url, "a-wrong-id")
            _ = delivered[DEAD_LETTER_TAG] | WriteDeadLetters(str(tmp_path / "dl"))
        assert strict.store.counts()["events"] == 0
    letters = [letter for path in glob.glob(str(tmp_path / "dl" / "*.avro")) for letter in read_dead_letter_file(path)]
    assert sorted(orjson.loads(letter["payload"])["transaction_id"] for letter in letters) == ["id-000", "id-001",
                                                                                               "id-002"]
    assert {(letter["stage"], letter["reason"], letter["http_status"], letter["attempts"]) for letter in letters} == {
        ("deliver", "http_401", 401, 1)}
    assert all("unknown application id" in letter["detail"] for letter in letters)
    assert all(letter["source"].startswith("s#") for letter in letters)


def test_connection_refused_is_a_dead_letter_not_a_crash(tmp_path):
    from devtools.local_services import free_port

    dead_endpoint = f"http://127.0.0.1:{free_port()}"
    with BeamTestPipeline() as p:
        batched = p | beam.Create(decoded_events(2)) | BatchEvents(dead_endpoint, 10, 60, 1)
        delivered = batched["batches"] | WriteToAnalyticsApi(dead_endpoint, "app",
                                                             retry=RetryPolicy(max_retry_secs=1.5))
        _ = delivered[DEAD_LETTER_TAG] | WriteDeadLetters(str(tmp_path))
    letters = [letter for path in glob.glob(str(tmp_path / "*.avro")) for letter in read_dead_letter_file(path)]
    assert [letter["reason"] for letter in letters] == ["connection_error", "connection_error"]
    assert all(letter["attempts"] > 1 for letter in letters)  # retried until max_retry_secs, then dead letters


def test_sourced_event_survives_pickling():
    import pickle

    item = SourcedEvent("s", {"a": 1})
    assert pickle.loads(pickle.dumps(item)) == item


def test_sourced_events_are_encoded_as_json_not_pickled_and_come_back_equal():
    from apache_beam import coders

    from transforms.model.records import SourcedEventCoder

    item = decoded_events(1)[0]
    coder = coders.registry.get_coder(beam.typehints.KV[str, SourcedEvent])
    assert coder == coders.TupleCoder((coders.StrUtf8Coder(), SourcedEventCoder()))
    encoded = SourcedEventCoder().encode(item)
    assert orjson.dumps(item.event) in encoded and b"SourcedEvent" not in encoded
    assert SourcedEventCoder().decode(encoded) == item
    huge = SourcedEvent("s#1", {**item.event, "metadata": {"count": 2**70}})
    assert SourcedEventCoder().decode(SourcedEventCoder().encode(huge)) == huge


def test_batches_close_on_serialized_bytes_with_exact_boundaries(tmp_path):
    from transforms.model.records import SerializedEvent
    from transforms.stages.batching import split_by_bytes

    items = [SerializedEvent(f"s#{n}", b'{"n":"' + b"x" * size + b'"}') for n, size in enumerate([10, 20, 30, 5, 50])]
    assert [len(item.json) for item in items] == [18, 28, 38, 13, 58]
    limit = 2 + 18 + 1 + 28 + 1 + 38  # "[a,b,c]": exactly the first three
    runs = split_by_bytes(items, limit)
    assert [[item.source for item in run] for run in runs] == [["s#0", "s#1", "s#2"], ["s#3", "s#4"]]
    assert [[item.source for item in run] for run in split_by_bytes(items, limit - 1)] == [
        ["s#0", "s#1"], ["s#2", "s#3"], ["s#4"]]
    events = decoded_events(6)
    one = len(orjson.dumps(events[0].event))
    with BeamTestPipeline() as p:
        batched = p | beam.Create(events) | BatchEvents("dest", 100, 60, 1, batch_max_bytes=2 + 2 * one + 1 + 5)
        _ = batched["batches"] | WriteBatchFiles(str(tmp_path))
    batches = [json.loads(Path(path).read_text()) for path in glob.glob(str(tmp_path / "batch-*.json"))]
    assert sorted(len(batch) for batch in batches) == [2, 2, 2]  # every event is ~the same size: two per batch
    assert all(len(Path(path).read_bytes()) <= 2 + 2 * one + 1 + 5 for path in glob.glob(str(tmp_path / "b*")))


def test_an_event_larger_than_batch_max_bytes_is_a_dead_letter(tmp_path):
    events = decoded_events(3)
    with BeamTestPipeline() as p:
        batched = p | beam.Create(events) | BatchEvents("dest", 100, 60, 1, batch_max_bytes=100)
        _ = batched[DEAD_LETTER_TAG] | WriteDeadLetters(str(tmp_path))
    letters = [letter for path in glob.glob(str(tmp_path / "*.avro")) for letter in read_dead_letter_file(path)]
    assert {(letter["reason"], letter["detail"].endswith("(limit 98)")) for letter in letters} == {
        ("event_too_large", True)}
    assert len(letters) == 3


def test_the_decode_step_sets_the_garbage_collector_for_throughput_once_per_process():
    import gc

    from transforms.stages.decode import DecodeRecord
    from transforms.stages.worker_gc import GEN0_THRESHOLD

    gc.set_threshold(700, 10, 10)  # CPython's default, as a fresh worker has it
    DecodeRecord(DecodeSettings()).setup()
    assert gc.get_threshold() == (GEN0_THRESHOLD, 10, 10)
    frozen = gc.get_freeze_count()
    assert frozen > 0
    made_since = [[] for _ in range(1000)]  # containers a second freeze would add to the frozen count
    DecodeRecord(DecodeSettings()).setup()  # another instance of the step in the same worker
    # Not equal: frozen objects that other threads free meanwhile leave the count (CI saw it fall by 3).
    assert gc.get_freeze_count() <= frozen
    assert len(made_since) == 1000
    assert gc.get_threshold() == (GEN0_THRESHOLD, 10, 10)


def test_batching_buffers_serialized_events_with_their_own_coder_not_pickle():
    from apache_beam.coders import StrUtf8Coder, TupleCoder
    from apache_beam.transforms.userstate import BagStateSpec

    from transforms.model.records import SerializedEventCoder

    pipeline = beam.Pipeline()
    batched = pipeline | beam.Create(decoded_events(1)) | BatchEvents("dest", 3, 60, 1)
    grouping = batched["batches"].producer.inputs[0].producer.transform
    bag_specs = [default.state_spec for default in grouping.fn.process.__defaults__
                 if isinstance(getattr(default, "state_spec", None), BagStateSpec)]
    assert [spec.coder for spec in bag_specs] == [TupleCoder((StrUtf8Coder(), SerializedEventCoder()))]
