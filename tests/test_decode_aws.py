"""AWS API Gateway access logs, alone and inside CloudWatch Logs envelopes and Firehose bodies (SPEC §3;
reference/formats.md §B). Records written from the reference, full expected events asserted."""
import base64
import gzip

import orjson
import pytest

from transforms.model.event import format_epoch_ms, round_half_up, transaction_id_for
from transforms.model.records import RawRecord
from transforms.stages.decode import DecodeSettings, decode_record

REST_QUOTED = {  # the Moesif-style REST template: every value quoted, `-` for the unset ones
    "apiId": "a1b2c3d4e5", "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    "requestTime": "25/Nov/2026:09:46:40 +0000", "requestTimeEpoch": "1795600000123", "protocol": "HTTP/1.1",
    "httpMethod": "GET", "resourcePath": "/pets/{petId}", "path": "/prod/pets/42",
    "requestHostHeader": "abc123.execute-api.us-east-1.amazonaws.com", "requestUserAgentHeader": "curl/8.4.0",
    "status": "200", "responseLength": "512", "durationMs": "87", "integrationLatency": "80",
    "ip": "198.51.100.7", "user": "-", "apiKeyId": "kx7q9z", "principalId": "-", "cognitoIdentityId": "-",
    "caller": "-", "userArn": "-", "companyId": "org-42", "stage": "prod",
}

HTTP_API_UNQUOTED = {  # an HTTP API format with unquoted numbers; requestTimeEpoch in seconds
    "requestId": "Q7xk2gH0IAMEbXw=", "ip": "2001:db8::1", "requestTime": "25/Nov/2026:09:46:40 +0000",
    "requestTimeEpoch": 1795600000, "httpMethod": "POST", "routeKey": "POST /orders", "status": 201,
    "protocol": "HTTP/1.1", "responseLength": 17, "responseLatency": 12, "integrationLatency": "-",
}

CLF_ONLY = {  # no epoch: the CLF time with a zone offset; no latency logged (throttled before integration)
    "requestId": "1b2c3d4e-0000-4000-8000-000000000001", "requestTime": "25/Nov/2026:10:46:40 +0100",
    "httpMethod": "DELETE", "path": "/prod/carts/7", "resourcePath": "-", "status": "429",
    "durationMs": "-", "principalId": "user-from-authorizer", "ip": "-",
}


def decode(raw: bytes, **settings):
    return decode_record(RawRecord(raw, "kinesis:gateway-logs#shard=0#seq=1"), DecodeSettings(**settings))


def test_rest_api_record_with_quoted_values():
    result = decode(orjson.dumps(REST_QUOTED))
    assert result.dead_letters == []
    [item] = result.events
    assert item.event == {
        "transaction_id": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "request": {
            "time": "2026-11-25T09:46:40.123Z",  # requestTimeEpoch (ms) beats the second-precision CLF time
            "uri": "https://abc123.execute-api.us-east-1.amazonaws.com/prod/pets/42",
            "verb": "GET",
            "headers": {"host": "abc123.execute-api.us-east-1.amazonaws.com", "user-agent": "curl/8.4.0"},
            "ip_address": "198.51.100.7",
        },
        "response": {"time": "2026-11-25T09:46:40.210Z", "status": 200, "headers": {}},
        "direction": "Incoming",
        "weight": 1,
        "user_id": "kx7q9z",  # `user` is `-`: the next field in the order, apiKeyId
        "company_id": "org-42",
        "metadata": {"gateway": "aws_apigateway", "route_template": "/pets/{petId}", "api_id": "a1b2c3d4e5",
                     "stage": "prod", "protocol": "HTTP/1.1", "latency_integration_ms": 80.0,
                     "response_size": 512},
    }


def test_http_api_record_with_unquoted_numbers_and_epoch_seconds():
    [item] = decode(orjson.dumps(HTTP_API_UNQUOTED)).events
    assert item.event == {
        "transaction_id": "Q7xk2gH0IAMEbXw=",
        "request": {"time": "2026-11-25T09:46:40.000Z", "uri": "/orders", "verb": "POST", "headers": {},
                    "ip_address": "2001:db8::1"},  # no host logged: the uri stays a path
        "response": {"time": "2026-11-25T09:46:40.012Z", "status": 201, "headers": {}},
        "direction": "Incoming",
        "weight": 1,
        "metadata": {"gateway": "aws_apigateway", "route_template": "/orders", "protocol": "HTTP/1.1",
                     "response_size": 17},
    }


def test_clf_time_with_offset_and_placeholders_are_absent():
    [item] = decode(orjson.dumps(CLF_ONLY)).events
    assert item.event == {
        "transaction_id": "1b2c3d4e-0000-4000-8000-000000000001",
        "request": {"time": "2026-11-25T09:46:40.000Z", "uri": "/prod/carts/7", "verb": "DELETE", "headers": {}},
        "response": {"time": "2026-11-25T09:46:40.000Z", "status": 429, "headers": {}},
        "direction": "Incoming",
        "weight": 1,
        "user_id": "user-from-authorizer",
        "metadata": {"gateway": "aws_apigateway", "latency_unknown": True},
    }
    assert b'"-"' not in orjson.dumps(item.event)


def test_bad_aws_records_name_the_problem():
    cases = {
        b'{"requestId":"r1","httpMethod":"GET","path":"/a","status":-,"requestTimeEpoch":1795600000123}':
            "invalid_json",  # an unquoted variable without a value: not JSON at all
        orjson.dumps({**REST_QUOTED, "status": "-"}): "missing_field:status",
        orjson.dumps({**REST_QUOTED, "status": "20x"}): "invalid_type:status",
        orjson.dumps({**REST_QUOTED, "status": True}): "invalid_type:status",
        orjson.dumps({**REST_QUOTED, "requestTimeEpoch": "-", "requestTime": "-"}): "missing_field:requestTime",
        orjson.dumps({**REST_QUOTED, "requestTimeEpoch": "-", "requestTime": "31/Feb/2026:00:00:00 +0000"}):
            "invalid_timestamp",
        orjson.dumps({**REST_QUOTED, "requestTimeEpoch": "1795600"}): "invalid_timestamp",  # 1970 in seconds
        orjson.dumps({**REST_QUOTED, "durationMs": "-5"}): "invalid_type:durationMs",
        orjson.dumps({**REST_QUOTED, "durationMs": "NaN"}): "invalid_type:durationMs",
        orjson.dumps({**REST_QUOTED, "durationMs": "8.7."}): "invalid_type:durationMs",
        orjson.dumps({**REST_QUOTED, "durationMs": ".5"}): "invalid_type:durationMs",
        orjson.dumps({**REST_QUOTED, "durationMs": "1" * 16}): "invalid_type:durationMs",
        orjson.dumps({**REST_QUOTED, "durationMs": "8.1234567891"}): "invalid_type:durationMs",
        orjson.dumps({**REST_QUOTED, "durationMs": "\u0668\u0667"}): "invalid_type:durationMs",  # Arabic-Indic 87
        orjson.dumps({**REST_QUOTED, "requestTimeEpoch": "-", "requestTime": "01/Jan/0000:00:00:00 +0000"}):
            "invalid_timestamp",
        orjson.dumps({**REST_QUOTED, "path": "-", "resourcePath": "-"}): "missing_field:path",
    }
    for raw, reason in cases.items():
        result = decode(raw)
        assert result.events == [], raw
        assert [letter["reason"] for letter in result.dead_letters] == [reason], raw


@pytest.mark.parametrize(("text", "expected"), [("87", 87.0), ("0", 0.0), ("87.25", 87.25), ("87.5", 87.5),
                                              ("999999999999", 999999999999.0), ("0.123456789", 0.123456789)])
def test_quoted_latencies_are_read_as_milliseconds(text, expected):
    [item] = decode(orjson.dumps({**REST_QUOTED, "durationMs": text})).events
    assert item.event["response"]["time"] == format_epoch_ms(1795600000123 + round_half_up(expected))


def test_unquoted_dash_dead_letter_says_how_to_fix_it():
    [letter] = decode(b'{"requestId":"r1","httpMethod":"GET","status":-}').dead_letters
    assert "unquoted" in letter["detail"]


def _envelope(message_type: str, messages: list[str]) -> dict:
    return {
        "messageType": message_type, "owner": "123456789012", "logGroup": "API-Gateway-Execution-Logs/prod",
        "logStream": "a1b2", "subscriptionFilters": ["to-kinesis"],
        "logEvents": [{"id": f"{n:056d}", "timestamp": 1795600001000 + n, "message": message}
                      for n, message in enumerate(messages)],
    }


CONTROL = {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logStream": "",
           "subscriptionFilters": [],
           "logEvents": [{"id": "", "timestamp": 1795600000000,
                          "message": "CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."}]}


def test_cloudwatch_envelope_each_line_decoded_bad_line_alone_control_skipped():
    envelope = _envelope("DATA_MESSAGE", [orjson.dumps(REST_QUOTED).decode(), "{not json",
                                          orjson.dumps(HTTP_API_UNQUOTED).decode()])
    raw = gzip.compress(orjson.dumps(envelope))
    result = decode(raw)
    assert [item.event["transaction_id"] for item in result.events] == [
        "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "Q7xk2gH0IAMEbXw="]
    assert [item.source for item in result.events] == [
        "kinesis:gateway-logs#shard=0#seq=1#logEvent=0", "kinesis:gateway-logs#shard=0#seq=1#logEvent=2"]
    [letter] = result.dead_letters
    assert (letter["reason"], letter["source"], letter["payload"]) == (
        "invalid_json", "kinesis:gateway-logs#shard=0#seq=1#logEvent=1", b"{not json")
    control = decode(gzip.compress(orjson.dumps(CONTROL)))
    assert control == ([], [], 1)


def test_firehose_body_with_direct_lines_a_cloudwatch_record_and_bad_base64():
    cloudwatch = gzip.compress(orjson.dumps(_envelope("DATA_MESSAGE", [orjson.dumps(CLF_ONLY).decode()])))
    body = {"requestId": "ed4acda5-034f-9f42-bba1-f29aea6d7d8f", "timestamp": 1795600002000, "records": [
        {"data": base64.b64encode(orjson.dumps(REST_QUOTED) + b"\n").decode()},
        {"data": "not base64!"},
        {"data": base64.b64encode(cloudwatch).decode()},
    ]}
    result = decode(orjson.dumps(body))
    assert [(item.source.split("#", 2)[-1], item.event["transaction_id"]) for item in result.events] == [
        ("seq=1#record=0", "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"),
        ("seq=1#record=2#logEvent=0", "1b2c3d4e-0000-4000-8000-000000000001"),
    ]
    assert [(letter["reason"], letter["source"]) for letter in result.dead_letters] == [
        ("invalid_base64", "kinesis:gateway-logs#shard=0#seq=1#record=1")]


def test_input_format_override_and_container_nesting_limit():
    line = orjson.dumps(REST_QUOTED)
    assert decode(line, input_format="kong").dead_letters[0]["reason"] == "missing_field:request"
    firehose_in_firehose = {"requestId": "a", "records": [{"data": base64.b64encode(orjson.dumps(
        {"requestId": "b", "records": [{"data": base64.b64encode(orjson.dumps(
            {"requestId": "c", "records": [{"data": base64.b64encode(line).decode()}]})).decode()}]})).decode()}]}
    [letter] = decode(orjson.dumps(firehose_in_firehose)).dead_letters
    assert letter["reason"] == "max_depth_exceeded"


def test_fallback_ids_are_stable_per_record_and_distinct_per_event():
    no_id = {key: value for key, value in REST_QUOTED.items() if key != "requestId"} | {"extendedRequestId": "-"}
    envelope = orjson.dumps(_envelope("DATA_MESSAGE", [orjson.dumps(no_id).decode()] * 2))
    first, second = decode(envelope), decode(envelope)
    ids = [item.event["transaction_id"] for item in first.events]
    assert ids == [item.event["transaction_id"] for item in second.events]
    assert ids == [transaction_id_for(envelope, 0), transaction_id_for(envelope, 1)]
