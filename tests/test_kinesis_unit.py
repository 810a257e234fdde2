"""The Kinesis source's pure parts, without a Kinesis server: KPL de-aggregation (against awslabs' own aggregator),
option parsing, which shards a pipeline starts on and who reads a child shard, the restriction tracker, and the
checkpoint files (in a directory and on an S3-compatible server)."""
import hashlib
from datetime import datetime, timezone

import pytest
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from aws_kinesis_agg.aggregator import RecordAggregator

from devtools.local_services import local_s3_client, local_s3_options
from transforms.io.kinesis import (
    DiscoverShardsFn,
    KinesisConfigError,
    KinesisRestriction,
    KinesisRestrictionTracker,
    KinesisSettings,
    ReaderSpec,
    ShardCursor,
    owning_parent,
    parse_initial_position,
    parse_stream,
    pinned,
    read_checkpoints,
    reader_watermark,
    starting_readers,
    write_checkpoint,
)
from transforms.io.kpl import MAGIC, KplFormatError, user_records


def aggregate(payloads: list[bytes]) -> bytes:
    aggregator = RecordAggregator()
    for index, payload in enumerate(payloads):
        assert aggregator.add_user_record(f"key-{index % 3}", payload) is None  # all fit in one record
    return aggregator.clear_and_get().get_contents()[2]


def test_a_kpl_record_gives_back_every_user_record_in_order():
    payloads = [b'{"n": %d}' % n for n in range(50)] + [b"", b"\x00\xff binary"]
    assert user_records(aggregate(payloads)) == payloads


def test_a_plain_record_is_its_own_only_user_record():
    assert user_records(b'{"request": {}}') == [b'{"request": {}}']
    assert user_records(MAGIC) == [MAGIC]


def test_a_record_with_the_magic_but_a_wrong_digest_is_a_plain_record():
    aggregated = bytearray(aggregate([b"a", b"b"]))
    aggregated[-1] ^= 0xFF
    assert user_records(bytes(aggregated)) == [bytes(aggregated)]


def test_a_digest_valid_but_unreadable_protobuf_raises_kpl_format_error():
    message = b"\x1a\x05\x1a\x10abc"  # records → a Record whose data field claims 16 bytes but holds 3
    corrupt = MAGIC + message + hashlib.md5(message).digest()  # noqa: S324
    with pytest.raises(KplFormatError, match="past the end"):
        user_records(corrupt)


def test_stream_names_and_arns():
    assert parse_stream("api-logs") == ("api-logs", None)
    assert parse_stream("arn:aws:kinesis:eu-west-1:123456789012:stream/api-logs") == ("api-logs", "eu-west-1")
    for bad in ("", "has space", "arn:aws:kinesis:eu-west-1:123:stream/x", "arn:aws:sqs:eu-west-1:123456789012:q"):
        with pytest.raises(KinesisConfigError, match="kinesis_stream"):
            parse_stream(bad)


def test_initial_positions():
    assert parse_initial_position("LATEST") == ("LATEST", None)
    assert parse_initial_position("TRIM_HORIZON") == ("TRIM_HORIZON", None)
    assert parse_initial_position("AT_TIMESTAMP:2026-11-26T08:00:00+01:00") == (
        "AT_TIMESTAMP", datetime(2026, 11, 26, 7, 0, tzinfo=timezone.utc))
    assert parse_initial_position("AT_TIMESTAMP:2026-11-26T07:00:00Z")[1] == datetime(2026, 11, 26, 7,
                                                                                       tzinfo=timezone.utc)
    for bad in ("latest", "AT_TIMESTAMP:2026-11-26T07:00:00", "AT_TIMESTAMP:", "SHARD_END"):
        with pytest.raises(KinesisConfigError, match="kinesis_initial_position"):
            parse_initial_position(bad)


def test_a_cursor_resumes_after_its_sequence_number_else_at_its_start():
    assert ShardCursor("s-0", "TRIM_HORIZON", "495").iterator_arguments() == {
        "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": "495"}
    assert ShardCursor("s-0", "LATEST").iterator_arguments() == {"ShardIteratorType": "LATEST"}
    assert ShardCursor("s-0", "AT_TIMESTAMP:2026-11-26T07:00:00Z").iterator_arguments() == {
        "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": datetime(2026, 11, 26, 7, tzinfo=timezone.utc)}


def shard(shard_id, parent=None, adjacent=None, closed=False):
    description = {"ShardId": shard_id, "SequenceNumberRange": {"StartingSequenceNumber": "1"}}
    if parent:
        description["ParentShardId"] = parent
    if adjacent:
        description["AdjacentParentShardId"] = adjacent
    if closed:
        description["SequenceNumberRange"]["EndingSequenceNumber"] = "9"
    return description


# s0 was split into s2 and s3; s1 and s3 were merged into s4; s5's parent has expired (no longer listed).
RESHARDED = [shard("s0", closed=True), shard("s1", closed=True), shard("s2", "s0"), shard("s3", "s0", closed=True),
             shard("s4", "s3", "s1"), shard("s5", "s-expired")]


def test_from_the_horizon_readers_start_on_the_roots_and_each_child_has_one_owner():
    readers = starting_readers(RESHARDED, "logs", "TRIM_HORIZON")
    assert [(r.name, r.cursors) for r in readers] == [
        ("s0", (ShardCursor("s0", "TRIM_HORIZON"),)),
        ("s1", (ShardCursor("s1", "TRIM_HORIZON"),)),
        ("s5", (ShardCursor("s5", "TRIM_HORIZON"),)),
    ]
    listed = {s["ShardId"] for s in RESHARDED}
    assert {s["ShardId"]: owning_parent(s, listed) for s in RESHARDED} == {
        "s0": None, "s1": None, "s2": "s0", "s3": "s0", "s4": "s3", "s5": None}
    # Once s3 expires, the merged child belongs to its other parent's reader.
    assert owning_parent(shard("s4", "s3", "s1"), {"s1", "s4"}) == "s1"


def test_from_latest_readers_start_on_the_open_shards_only():
    readers = starting_readers(RESHARDED, "logs", "LATEST")
    assert [r.name for r in readers] == ["s2", "s4", "s5"]
    assert all(r.cursors[0].start == "LATEST" for r in readers)


def test_a_latest_cursor_is_pinned_to_the_time_its_iterator_was_taken():
    moment = datetime(2026, 11, 26, 7, 0, 1, tzinfo=timezone.utc)
    assert pinned(ShardCursor("s0", "LATEST"), moment) == ShardCursor("s0", "AT_TIMESTAMP:2026-11-26T07:00:00+00:00")
    assert parse_initial_position(pinned(ShardCursor("s0", "LATEST"), moment).start)[1] == datetime(
        2026, 11, 26, 7, 0, tzinfo=timezone.utc)
    for unchanged in (ShardCursor("s0", "LATEST", "12"), ShardCursor("s0", "TRIM_HORIZON")):
        assert pinned(unchanged, moment) == unchanged


def test_checkpoint_files_round_trip(tmp_path):
    reader = ReaderSpec("logs", "s0", (ShardCursor("s2", "TRIM_HORIZON", "77"), ShardCursor("s3", "TRIM_HORIZON")))
    write_checkpoint(str(tmp_path), reader)
    write_checkpoint(str(tmp_path), reader._replace(name="s1", cursors=()))
    assert read_checkpoints(str(tmp_path), "logs") == [reader, ReaderSpec("logs", "s1", ())]
    assert read_checkpoints(str(tmp_path), "other-stream") == []
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["s0.json", "s1.json"]  # no temporary left


@pytest.mark.integration
def test_checkpoint_files_round_trip_on_s3(s3_server):
    """The README's AWS set-up keeps checkpoints under ``s3://``: against an S3-compatible server on 127.0.0.1."""
    local_s3_client(s3_server).create_bucket(Bucket="gatewaystream-checkpoints")
    FileSystems.set_options(PipelineOptions(local_s3_options(s3_server)))
    directory = "s3://gatewaystream-checkpoints/run-1"
    assert read_checkpoints(directory, "logs") == []
    reader = ReaderSpec("logs", "s0", (ShardCursor("s2", "TRIM_HORIZON", "77"),))
    write_checkpoint(directory, reader)
    write_checkpoint(directory, reader._replace(cursors=(ShardCursor("s2", "TRIM_HORIZON", "78"),)))
    assert read_checkpoints(directory, "logs") == [ReaderSpec("logs", "s0", (ShardCursor("s2", "TRIM_HORIZON", "78"),))]


def test_a_checkpoint_location_that_cannot_be_listed_is_an_error_not_a_fresh_start(tmp_path, monkeypatch):
    """Denied access or a wrong endpoint must not read as "no checkpoints", which would start the readers over."""
    def denied(patterns):
        raise BeamIOError("List operation failed", {patterns[0]: PermissionError("AccessDenied")})

    monkeypatch.setattr(FileSystems, "match", denied)
    with pytest.raises(BeamIOError, match="List operation failed"):
        read_checkpoints(str(tmp_path), "logs")


def test_a_restart_gives_each_checkpointed_shard_its_own_reader(tmp_path):
    # s0 was split while running: its reader went on to both children and saved them in one file.
    write_checkpoint(str(tmp_path), ReaderSpec("logs", "s0", (ShardCursor("s2", "TRIM_HORIZON", "77"),
                                                              ShardCursor("s3", "TRIM_HORIZON"))))
    write_checkpoint(str(tmp_path), ReaderSpec("logs", "s1", (ShardCursor("s1", "LATEST", "12"),)))
    write_checkpoint(str(tmp_path), ReaderSpec("logs", "s9", ()))  # read to its end, no children of its own
    discover = DiscoverShardsFn(KinesisSettings("logs", "us-east-1", checkpoint_dir=str(tmp_path)))
    readers = list(discover.process(b""))  # from the files alone: no Kinesis call is made
    assert readers == [ReaderSpec("logs", "s2", (ShardCursor("s2", "TRIM_HORIZON", "77"),)),
                       ReaderSpec("logs", "s3", (ShardCursor("s3", "TRIM_HORIZON"),)),
                       ReaderSpec("logs", "s1", (ShardCursor("s1", "LATEST", "12"),))]
    assert read_checkpoints(str(tmp_path), "logs") == sorted(readers, key=lambda r: r.name)


def test_the_tracker_claims_progress_until_a_checkpoint_takes_the_rest():
    start = KinesisRestriction((ShardCursor("s0", "LATEST"),))
    tracker = KinesisRestrictionTracker(start)
    moved = (ShardCursor("s0", "LATEST", "12"),)
    assert tracker.try_claim(moved)
    primary, residual = tracker.try_split(0)
    assert (primary, residual) == (KinesisRestriction(()), KinesisRestriction(moved))
    assert not tracker.try_claim((ShardCursor("s0", "LATEST", "13"),))  # the residual owns the shard now
    assert tracker.try_split(0) is None
    assert tracker.current_restriction() == KinesisRestriction(())
    assert not tracker.is_bounded()


def test_a_checkpoint_that_cannot_be_written_is_logged_and_written_next_time(tmp_path, caplog):
    from transforms.io.kinesis import ReadShardsFn

    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the checkpoint directory should be")
    reader = ReaderSpec("logs", "s0", (ShardCursor("s0", "TRIM_HORIZON", "5"),))
    fn = ReadShardsFn(KinesisSettings("logs", "us-east-1", checkpoint_dir=str(blocked)))
    fn.setup()
    fn._save(reader, list(reader.cursors), list(reader.cursors), [], force=True)  # must not stop the reader
    assert "could not save the checkpoint of reader s0" in caplog.text

    blocked.unlink()
    moved = (ShardCursor("s0", "TRIM_HORIZON", "6"),)
    fn._save(reader, list(moved), list(moved), [], force=True)
    assert read_checkpoints(str(blocked), "logs") == [reader._replace(cursors=moved)]


def test_a_delivered_position_moves_past_the_longest_accounted_for_prefix():
    """On the DirectRunner a reader's checkpoint moves only past records whose events were all accounted for
    (delivered or dead-lettered), as the process's ledger reports them, record by record within a read; a KPL
    record's position is passed only once all its user records are accounted for."""
    from transforms.io.acks import AckLedger
    from transforms.io.kinesis import _DeliveredPositions

    ledger = AckLedger()
    positions = _DeliveredPositions(ledger)
    shard = "kinesis:logs/shardId-000000000000"

    def at(sequence):
        return (ShardCursor("shardId-000000000000", "TRIM_HORIZON", sequence),)

    positions.read(list(at(None)), list(at("2")), [f"{shard}#seq=1", f"{shard}#seq=2"])
    positions.read(list(at("2")), list(at("4")), [f"{shard}#seq=3", f"{shard}#seq=4&sub=0", f"{shard}#seq=4&sub=1"])
    positions.read(list(at("4")), list(at("4")), [])  # an idle call
    assert positions.ready() is None
    for seq in (1, 2, 3, "4&sub=0", "4&sub=1"):
        ledger.expect(f"{shard}#seq={seq}", 1)
    ledger.finish([f"{shard}#seq=3#index=0", f"{shard}#seq=4&sub=0", f"{shard}#seq=1"])
    assert positions.ready() == at("1")  # seq 2 is still on its way: not past it
    ledger.finish([f"{shard}#seq=2"])
    assert positions.ready() == at("3")  # 4's second user record is still on its way
    ledger.finish([f"{shard}#seq=4&sub=1#index=0"])
    assert positions.ready() == at("4") and len(ledger) == 0


def test_a_read_that_reaches_a_child_shard_moves_past_its_records_only_at_its_end():
    from transforms.io.acks import AckLedger
    from transforms.io.kinesis import _DeliveredPositions

    ledger = AckLedger()
    positions = _DeliveredPositions(ledger)
    parent, child = ShardCursor("shardId-0", "TRIM_HORIZON", "5"), ShardCursor("shardId-2", "TRIM_HORIZON", "8")
    sources = ["kinesis:logs/shardId-0#seq=6", "kinesis:logs/shardId-2#seq=7", "kinesis:logs/shardId-2#seq=8"]
    positions.read([parent], [child], sources)
    for source in sources:
        ledger.expect(source, 1)
    ledger.finish(sources[:2])
    assert positions.ready() == (parent._replace(after="6"),)
    ledger.finish(sources[2:])
    assert positions.ready() == (child,)


def test_a_readers_watermark_is_its_most_behind_shard_and_waits_for_every_shard():
    from apache_beam.utils.timestamp import Timestamp

    caught_up, behind = Timestamp.of(1_795_600_800), Timestamp.of(1_795_597_200)
    positions = {"shardId-000": caught_up, "shardId-001": behind}
    assert reader_watermark(positions, ["shardId-000", "shardId-001"]) == behind
    assert reader_watermark(positions, ["shardId-000"]) == caught_up
    assert reader_watermark(positions, ["shardId-000", "shardId-002"]) is None  # a child not read yet
    assert reader_watermark(positions, []) is None
