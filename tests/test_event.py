import calendar
import hashlib
import time
import uuid
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transforms.model.event import (
    MAX_EPOCH_MS,
    MIN_EPOCH_MS,
    TRANSACTION_NAMESPACE,
    InvalidTime,
    TransactionIds,
    canonical_time,
    format_epoch_ms,
    parse_iso_ms,
    round_half_up,
    transaction_id_for,
    validate_event,
)


def valid_event():
    return {
        "transaction_id": "t-1",
        "request": {"time": "2026-11-25T10:00:00.005Z", "uri": "https://a.io/x", "verb": "GET", "headers": {}},
        "response": {"time": "2026-11-25T10:00:00.105Z", "status": 200, "headers": {"a": "b"}},
        "direction": "Incoming",
        "weight": 1,
    }


def test_format_epoch_ms_has_three_fraction_digits_and_z():
    assert format_epoch_ms(1795600000005) == "2026-11-25T09:46:40.005Z"
    assert format_epoch_ms(1795600000000.5) == "2026-11-25T09:46:40.001Z"  # half-up, not banker's


def test_round_half_up():
    assert [round_half_up(v) for v in (0.5, 1.5, 2.5, 2.4999)] == [1, 2, 3, 2]


@pytest.mark.parametrize("bad", [0, 1795600000, float("nan"), float("inf"), True, "1795600000000", None])
def test_format_epoch_ms_refuses_invented_times(bad):
    with pytest.raises(InvalidTime):
        format_epoch_ms(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25T10:00:00.005Z", "2026-11-25T10:00:00.005Z"),
        ("2026-11-25T10:00:00.005", "2026-11-25T10:00:00.005Z"),  # no zone: UTC
        ("2026-11-25T10:00:00Z", "2026-11-25T10:00:00.000Z"),
        ("2026-11-25T12:16Z", "2026-11-25T12:16:00.000Z"),  # Java's OffsetDateTime without seconds
        ("2026-11-25T10:00:00.0005Z", "2026-11-25T10:00:00.001Z"),
        ("2026-11-25T10:00:00.123456789+02:00", "2026-11-25T08:00:00.123Z"),
        ("2026-11-25T10:00:00.9996Z", "2026-11-25T10:00:01.000Z"),
    ],
)
def test_parse_iso_ms_normalizes(text, expected):
    assert format_epoch_ms(parse_iso_ms(text)) == expected


@given(millis=st.integers(MIN_EPOCH_MS, MAX_EPOCH_MS - 1))
def test_canonical_times_parse_to_the_instant_the_calendar_gives(millis):
    """The digit-by-digit fast path against the stdlib calendar, over the whole 2000–2100 range."""
    seconds, milli = divmod(millis, 1000)
    text = f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{milli:03d}Z"
    assert calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) * 1000 + milli == millis
    assert parse_iso_ms(text) == parse_iso_ms(text[:-1]) == millis
    assert parse_iso_ms(text[:19]) == parse_iso_ms(text[:19] + "Z") == millis - milli
    assert parse_iso_ms(text[:16]) == parse_iso_ms(text[:16] + "Z") == millis - millis % 60_000
    assert canonical_time(text) is text and canonical_time(text[:-1]) == text


@pytest.mark.parametrize(
    "bad",
    ["", "yesterday", "2026-02-30T10:00:00Z", "2026-02-29T10:00:00.000Z", "2100-01-01T00:00:00.000Z",
     "2026-11-25T10:00:60.000Z", "2026-11-25T10:0٣:00.000Z", "0000-01-01T00:00:00Z", "1999-12-31T23:59:59.999Z",
     "2026-11-25T24:00:00Z", "1970-01-01T00:00:00Z", "2026-11-25T10:60Z", "2026-11-25T10:5٣Z", "2026-02-29T10:00",
     "2026-11-25T10:00Y", "2026-11-25T10-00Z"],
)
def test_parse_iso_ms_rejects(bad):
    with pytest.raises(InvalidTime):
        parse_iso_ms(bad)


def test_transaction_id_is_deterministic_and_depends_on_bytes_and_index():
    first = transaction_id_for(b'{"a":1}', 0)
    assert first == transaction_id_for(b'{"a":1}', 0)
    assert first != transaction_id_for(b'{"a":1}', 1)
    assert first != transaction_id_for(b'{"a":2}', 0)
    assert first[14] == "5"  # a version-5 UUID


@given(raw=st.binary(max_size=300), index=st.integers(0, 10_000))
def test_transaction_id_is_the_uuid5_of_the_record_bytes_and_index(raw, index):
    """RFC 4122 §4.3 by hand (uuid.uuid5 takes text, not bytes): SHA-1 of namespace + name, first 16 bytes,
    version 5 and variant 10xx written in."""
    digest = bytearray(hashlib.sha1(TRANSACTION_NAMESPACE.bytes + raw + b"\x00%d" % index).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    expected = uuid.UUID(bytes=bytes(digest))
    assert transaction_id_for(raw, index) == str(expected)
    ids = TransactionIds(raw)  # one record's ids continue from one hash of its bytes
    assert [ids.for_index(n) for n in (index, 0, index + 1)] == [
        transaction_id_for(raw, n) for n in (index, 0, index + 1)]
    assert (expected.version, expected.variant) == (5, uuid.RFC_4122)


def test_validate_event_accepts_a_valid_event():
    assert validate_event(valid_event()) == []


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda e: e["response"].update(status=99), "not in 100..599"),
        (lambda e: e["request"].update(time="2026-11-25T10:00:00Z"), "3 fraction digits"),
        (lambda e: e["request"].pop("verb"), "api_event.avsc"),
        (lambda e: e.update(direction="Sideways"), "direction"),
        (lambda e: e.update(weight=0), "weight"),
        (lambda e: e["request"]["headers"].update(x=["a"]), "api_event.avsc"),
        (lambda e: e["response"].update(time="2026-11-25T09:00:00.000Z"), "before request.time"),
    ],
)
def test_validate_event_names_the_problem(change, fragment):
    event = valid_event()
    change(event)
    problems = validate_event(event)
    assert problems and any(fragment in problem for problem in problems), problems


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 58)),
       st.sampled_from((0, 3, 6, 9)), st.integers(0, 999_999_999), st.booleans())
def test_fraction_lengths_of_every_writer_round_half_up(moment, digits, nanos, zone):
    """0, 3, 6 and 9 fraction digits (gateways, Cloud Logging's µs and ns), with or without Z, read by the fast
    path exactly as the rule says: epoch ms, the fraction past the millisecond rounded half-up."""
    fraction = f"{nanos:09d}"[:digits]
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if digits else "") + ("Z" if zone else "")
    whole_seconds = calendar.timegm(moment.timetuple())
    nanos_written = int(fraction.ljust(9, "0")) if digits else 0
    assert parse_iso_ms(text) == whole_seconds * 1000 + (nanos_written + 500_000) // 1_000_000
