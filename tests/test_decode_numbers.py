"""Numbers that the formats allow but no later stage can write: a size or code past 64 bits is left out of the
event, an out-of-range weight is a dead letter, and every event decoded still serializes and validates. (Found by
the decode property test run with 5 000 examples: a WSO2 ``responseSize`` of 1.8e19 decoded into an event that
failed at serialization.)"""
import copy

import orjson
import pytest

from tests.test_decode import KONG_39, decode_one
from tests.test_decode_aws import REST_QUOTED
from tests.test_decode_wso2_alf import WSO2_FAULT, WSO2_RESPONSE
from transforms.model.event import serialize, validate_event
from transforms.stages.formats.common import MAX_INT64, byte_count

PAST_INT64 = 1.8446744073709552e19  # what orjson parses 18446744073709551616 (2^64) into


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0), (512, 512), ("512", 512), (12.9, 12), (MAX_INT64, MAX_INT64), (str(MAX_INT64), MAX_INT64),
        (-1, None), ("-1", None), ("1e3", None), ("", None), ("\u0663", None), (True, None), (None, None),
        ("0" * 30 + "7", 7), (MAX_INT64 + 1, None), (PAST_INT64, None), ("9" * 19, None), ("9" * 5000, None),
    ],
)
def test_byte_count(value, expected):
    assert byte_count(value) == expected


def decoded(record: dict) -> dict:
    result, _ = decode_one(record)
    assert result.dead_letters == []
    [item] = result.events
    assert validate_event(item.event) == []
    assert orjson.loads(serialize(item.event)) == item.event
    return item.event


def test_kong_sizes_past_64_bits_are_left_out():
    record = copy.deepcopy(KONG_39)
    record["request"]["size"] = PAST_INT64
    record["response"]["size"] = "9" * 30
    metadata = decoded(record)["metadata"]
    assert "request_size" not in metadata and "response_size" not in metadata
    record["request"]["size"], record["response"]["size"] = MAX_INT64, str(MAX_INT64)
    metadata = decoded(record)["metadata"]
    assert (metadata["request_size"], metadata["response_size"]) == (MAX_INT64, MAX_INT64)


def test_aws_response_length_past_64_bits_is_left_out():
    assert decoded({**REST_QUOTED, "responseLength": "1" * 25})["metadata"].keys() == \
        decoded(REST_QUOTED)["metadata"].keys() - {"response_size"}


def test_wso2_response_size_and_error_code_past_64_bits_are_left_out():
    record = copy.deepcopy(WSO2_RESPONSE)
    record["properties"]["responseSize"] = PAST_INT64
    assert "response_size" not in decoded(record)["metadata"]
    assert "error_code" not in decoded({**WSO2_FAULT, "errorCode": -1e30})["metadata"]
    assert decoded({**WSO2_FAULT, "errorCode": -MAX_INT64 - 1})["metadata"]["error_code"] == -MAX_INT64 - 1


MOESIF_EVENT = {
    "request": {"time": "2026-11-25T10:00:00.500Z", "uri": "https://a.io/x", "verb": "GET", "headers": {}},
    "response": {"time": "2026-11-25T10:00:01.000Z", "status": 200, "headers": {}},
    "transaction_id": "abc-123",
}


def test_moesif_weight_must_fit_the_schema_int():
    assert decoded({**MOESIF_EVENT, "weight": 2**31 - 1})["weight"] == 2**31 - 1
    for weight in (2**31, PAST_INT64):
        result, raw = decode_one({**MOESIF_EVENT, "weight": weight})
        assert result.events == []
        [letter] = result.dead_letters
        assert (letter["reason"], letter["detail"]) == ("invalid_type:weight",
                                                          "weight must be an integer from 1 to 2147483647")
