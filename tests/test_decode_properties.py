"""Property-based tests (hypothesis) of the decoder: arbitrary bytes, arbitrary JSON and mutated valid records
of every format. Whatever comes in, ``decode_record`` returns events or dead letters and never raises; every
event is a valid SPEC §2 event with no NaN, no ``-`` placeholder, no negative latency and no invented time."""
import base64
import gzip
import math
import re

import orjson
from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_decode import KONG_05, KONG_28, KONG_39
from tests.test_decode_aws import CLF_ONLY, HTTP_API_UNQUOTED, REST_QUOTED
from tests.test_decode_wso2_alf import WSO2_FAULT, WSO2_RESPONSE, _har_entry
from transforms.model.event import validate_event
from transforms.model.records import RawRecord
from transforms.stages.decode import decode_record

REASON = re.compile(
    r"(invalid_json|invalid_utf8|non_finite_number|duplicate_key|max_depth_exceeded|record_too_large"
    r"|decompressed_size_limit_exceeded|corrupt_gzip|invalid_base64|not_an_object|empty_input|invalid_timestamp"
    r"|too_many_headers|unknown_format|(missing_field|invalid_type):[A-Za-z0-9_.]+)"
)
FROZEN_NOW = "2031-03-04T05:06:07.000Z"  # if any event carried "now", it would be this
MOESIF = {"request": {"time": "2026-11-25T09:46:40.1", "uri": "https://api.acme.io/v1/x", "verb": "GET",
                      "headers": {"a": "b"}}, "response": {"time": "2026-11-25T09:46:40.2", "status": 200},
          "user_id": "u1", "transfer_encoding": "json"}
ALF = {"version": "1.1.0", "serviceToken": "s", "har": {"log": {"entries": [_har_entry(clientIPAddress="1.2.3.4")]}}}
VALID_RECORDS = [KONG_05, KONG_28, KONG_39, REST_QUOTED, HTTP_API_UNQUOTED, CLF_ONLY, WSO2_RESPONSE, WSO2_FAULT,
                 ALF, MOESIF]
PLACEHOLDER_FIELDS = (("user_id",), ("company_id",), ("transaction_id",), ("request", "ip_address"),
                      ("request", "api_version"), ("request", "uri"), ("request", "verb"))

json_scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
                | st.sampled_from(["-", "", "null", "NaN", "0", "-1", "200", "2026-11-25T12:16Z",
                                   "25/Nov/2026:09:46:40 +0000", "http://h/p", "1795600000123", "9" * 25])
                # past what Avro's int, orjson or int64 hold: sizes, codes and weights must not pass them on
                | st.sampled_from([2**31, 2**63, 2**64 - 1, 1.8446744073709552e19, -1e30])
                | st.text(max_size=20))
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def assert_sound(result) -> None:
    for letter in result.dead_letters:
        assert REASON.fullmatch(letter["reason"]), letter["reason"]  # never decoder_error: that is a bug
        assert letter["stage"] == "decode"
    for item in result.events:
        event = item.event
        assert validate_event(event) == [], event  # includes response.time >= request.time
        for path in PLACEHOLDER_FIELDS:
            value = event
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            assert value not in ("-", ""), (path, event)
        assert all(value not in ("-", "") for value in event.get("metadata", {}).values()), event
        for key, value in event.get("metadata", {}).items():
            if key.startswith("latency_") and key != "latency_unknown":
                assert value >= 0, event
        assert FROZEN_NOW not in (event["request"]["time"], event.get("response", {}).get("time")), event
        _assert_finite(event)


def _assert_finite(value) -> None:
    if isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, dict):
        for child in value.values():
            _assert_finite(child)
    elif isinstance(value, list):
        for child in value:
            _assert_finite(child)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for position, child in enumerate(value):
            yield from _paths(child, prefix + (position,))


def _mutate(record, path, action, replacement):
    record = orjson.loads(orjson.dumps(record))
    if not path:
        return replacement if action == "replace" else record
    parent = record
    for key in path[:-1]:
        parent = parent[key]
    if action == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return record


@st.composite
def mutated_records(draw):
    record = draw(st.sampled_from(VALID_RECORDS))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(record))
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "delete"] if path else ["replace"]))
        record = _mutate(record, path, action, draw(json_values))
    return record


@st.composite
def wrapped(draw, payloads):
    """A payload as it may arrive: alone, gzip, inside an array, a CloudWatch envelope or a Firehose body."""
    payload = draw(payloads)
    raw = orjson.dumps(payload)
    wrapper = draw(st.sampled_from(["plain", "gzip", "array", "cloudwatch", "firehose"]))
    if wrapper == "gzip":
        return gzip.compress(raw)
    if wrapper == "array":
        return orjson.dumps([payload, payload])
    if wrapper == "cloudwatch":
        return gzip.compress(orjson.dumps({"messageType": "DATA_MESSAGE", "logEvents": [
            {"id": "1", "timestamp": 1, "message": raw.decode()}]}))
    if wrapper == "firehose":
        return orjson.dumps({"requestId": "r", "records": [{"data": base64.b64encode(raw).decode()}]})
    return raw


PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@freeze_time(FROZEN_NOW)
@PROPERTY_SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(raw):
    result = decode_record(RawRecord(raw, "fuzz"))
    assert_sound(result)
    assert result.events or result.dead_letters or result.control_messages


@freeze_time(FROZEN_NOW)
@PROPERTY_SETTINGS
@given(wrapped(json_values))
def test_arbitrary_json(raw):
    assert_sound(decode_record(RawRecord(raw, "fuzz")))


@freeze_time(FROZEN_NOW)
@PROPERTY_SETTINGS
@given(wrapped(mutated_records()))
def test_mutated_valid_records_of_every_format(raw):
    result = decode_record(RawRecord(raw, "fuzz"))
    assert_sound(result)
    assert result.events or result.dead_letters  # never a silent drop


def test_every_unmutated_record_decodes():
    for record in VALID_RECORDS:
        result = decode_record(RawRecord(orjson.dumps(record), "fixture"))
        assert result.dead_letters == [] and len(result.events) == 1, record
        assert_sound(result)
