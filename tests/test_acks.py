"""The ledger that holds local Pub/Sub messages until every event decoded from them is accounted for
(``transforms/io/acks.py``); the end-to-end crash test is in ``tests/test_pubsub_integration.py``."""
import pytest

from transforms.io.acks import AckLedger, held_key
from transforms.io.dead_letters import accounted_sources, dead_letter

SUBSCRIPTION = "pubsub:projects/local/subscriptions/s"


class RecordingAcker:
    """Records the calls the ledger makes; the real acker (pipeline/workarounds/pubsub_read.py) runs in the crash
    test."""

    def __init__(self, fail: bool = False):
        self.acknowledged: list[list[str]] = []
        self.extended: list[list[str]] = []
        self.fail = fail

    def acknowledge(self, ack_ids: list[str]) -> None:
        if self.fail:
            raise ConnectionError("emulator gone")
        self.acknowledged.append(sorted(ack_ids))

    def extend(self, ack_ids: list[str]) -> None:
        self.extended.append(sorted(ack_ids))

    def renew_every_secs(self) -> float:
        return 60.0


@pytest.mark.parametrize(("source", "key"), [
    (f"{SUBSCRIPTION}#id=17", "17"),
    (f"{SUBSCRIPTION}#id=17#index=3", "17"),
    (f"{SUBSCRIPTION}#id=17#line=2#index=0", "17"),
    ("pubsub:projects/local/topics/t#id=9#records[0]", "9"),
    ("file:/data/x#id=5.jsonl#line=1", None),
    ("kinesis:logs/shardId-000000000001#seq=495", "kinesis:logs/shardId-000000000001#seq=495"),
    ("kinesis:logs/shardId-000000000001#seq=495&sub=3#index=0", "kinesis:logs/shardId-000000000001#seq=495&sub=3"),
    ("kinesis:logs/shardId-000000000001", None),
    ("pubsub:projects/local/subscriptions/s", None),
])
def test_the_held_key_is_the_message_id_the_read_wrote(source, key):
    assert held_key(source) == key


def test_a_message_is_acknowledged_when_its_last_item_is_finished_not_before():
    ledger, acker = AckLedger(), RecordingAcker()
    ledger.hold("17", "ack-17", acker)
    ledger.hold("18", "ack-18", acker)
    ledger.expect(f"{SUBSCRIPTION}#id=17", 3)
    ledger.finish([f"{SUBSCRIPTION}#id=17#index=0", f"{SUBSCRIPTION}#id=18#index=0"])
    ledger.finish([f"{SUBSCRIPTION}#id=17#index=1"])
    assert acker.acknowledged == [] and len(ledger) == 2
    ledger.finish([f"{SUBSCRIPTION}#id=17#index=2"])
    assert acker.acknowledged == [["ack-17"]]
    assert len(ledger) == 1  # 18 finished one item, but how many it has is not known yet
    ledger.expect(f"{SUBSCRIPTION}#id=18", 1)  # the decode of 18 is reported after its item finished
    assert acker.acknowledged == [["ack-17"], ["ack-18"]]
    assert (len(ledger), ledger.acknowledged) == (0, 2)


def test_a_record_with_nothing_to_deliver_is_acknowledged_when_decoded():
    ledger, acker = AckLedger(), RecordingAcker()
    ledger.hold("5", "ack-5", acker)
    ledger.expect(f"{SUBSCRIPTION}#id=5", 0)  # e.g. a CloudWatch Logs control message
    assert acker.acknowledged == [["ack-5"]]


def test_a_message_delivered_again_while_held_is_acknowledged_with_its_first_copy():
    ledger, acker = AckLedger(), RecordingAcker()
    ledger.hold("7", "ack-7a", acker)
    ledger.expect(f"{SUBSCRIPTION}#id=7", 2)
    ledger.hold("7", "ack-7b", acker)  # its lease lapsed and Pub/Sub sent it again
    ledger.expect(f"{SUBSCRIPTION}#id=7", 2)
    ledger.finish([f"{SUBSCRIPTION}#id=7#index=0", f"{SUBSCRIPTION}#id=7#index=1"] * 2)
    assert acker.acknowledged == [["ack-7a", "ack-7b"]]


def test_sources_nothing_holds_are_ignored_and_an_empty_ledger_does_no_work():
    ledger, acker = AckLedger(), RecordingAcker()
    ledger.expect(f"{SUBSCRIPTION}#id=1", 1)
    ledger.finish([f"{SUBSCRIPTION}#id=1", "file:/x.jsonl#line=1"])
    ledger.hold("2", "ack-2", acker)
    ledger.finish(["file:/x.jsonl#line=1", f"{SUBSCRIPTION}#id=1#index=0"])
    assert (acker.acknowledged, len(ledger)) == ([], 1)


def test_a_failed_acknowledgement_is_counted_and_the_message_let_go():
    """Nothing is lost by it: Pub/Sub sends the message again after its lease, and the collector deduplicates."""
    ledger = AckLedger()
    ledger.hold("3", "ack-3", RecordingAcker(fail=True))
    ledger.expect(f"{SUBSCRIPTION}#id=3", 0)
    assert (ledger.ack_failures, ledger.acknowledged, len(ledger)) == (1, 0, 0)


def test_archive_dead_letters_do_not_account_for_an_event_that_is_also_delivered():
    letters = [dead_letter(stage, "x", "", f"{SUBSCRIPTION}#id=4#index={n}", b"{}")
               for n, stage in enumerate(("decode", "archive", "deliver", "mask"))]
    assert accounted_sources(letters) == [f"{SUBSCRIPTION}#id=4#index={n}" for n in (0, 2, 3)]
