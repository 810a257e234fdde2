"""Decoding, record by record, with the full expected event (SPEC §2–§3; reference/formats.md §A, §E)."""
import gzip

import orjson
import pytest

from transforms.model.errors import DecodeError
from transforms.model.event import transaction_id_for
from transforms.model.records import RawRecord
from transforms.stages.decode import DecodeSettings, decode_record
from transforms.stages.formats.common import absolute_url

KONG_05 = {  # 0.5–0.7: request_uri, sizes as strings, the credential (with its secret key) as the entity
    "api": {"name": "orders", "upstream_url": "http://orders.internal", "created_at": 1450000000000},
    "request": {
        "method": "GET",
        "uri": "/v1/orders?apikey=sk_live_1&page=2",
        "request_uri": "http://api.acme.io:8000/v1/orders?apikey=sk_live_1&page=2",
        "querystring": {"apikey": "sk_live_1", "page": "2"},
        "headers": {"host": "api.acme.io:8000", "Authorization": "Bearer abc.def.ghi", "accept": "*/*"},
        "size": "123",
    },
    "response": {"status": 200, "size": "512", "headers": {"Content-Type": "application/json"}},
    "latencies": {"kong": 3, "proxy": 41, "request": 45},
    "started_at": 1795600000123,
    "client_ip": "203.0.113.9",
    "authenticated_entity": {"id": "cred-1", "consumer_id": "c-77", "key": "the-secret-api-key"},
}

KONG_28 = {  # 2.2+: numeric sizes, authorization REDACTED, route/service/consumer entities, not proxied
    "request": {
        "method": "POST",
        "uri": "/v1/orders",
        "url": "https://api.acme.io:443/v1/orders",
        "querystring": {},
        "headers": {"host": "api.acme.io", "authorization": "REDACTED", "accept-encoding": ["gzip", "br"],
                    "x-consumer-username": "bob"},
        "size": 320,
    },
    "response": {"status": 429, "size": 97, "headers": {"content-type": "application/json",
                                                         "set-cookie": ["a=1", "b=2"]}},
    "route": {"name": "orders-create", "paths": ["/v1/orders"]},
    "service": {"name": "orders", "host": "orders.internal"},
    "consumer": {"id": "9f1c", "username": "bob"},
    "latencies": {"kong": 1, "proxy": -1, "request": 2.5},
    "started_at": 1795600000000,
    "client_ip": "2001:db8::7",
}

KONG_39 = {  # 3.x: request.id, upstream_status string, source, latencies.receive, workspace_name
    "request": {
        "id": "8bd6c7b1f0e94f1c9c9d1b6f2a3e4d5c",
        "method": "GET",
        "uri": "/v1/users/me",
        "url": "https://api.acme.io:8443/v1/users/me",
        "headers": {"host": "api.acme.io:8443", "x-consumer-custom-id": "cust-0009"},
        "size": 200,
    },
    "response": {"status": 502, "size": 0, "headers": {}},
    "upstream_status": "502, 502",
    "source": "upstream",
    "workspace_name": "default",
    "latencies": {"kong": 2, "proxy": 30, "request": 33, "receive": 0},
    "started_at": 1795600000999,
    "client_ip": "198.51.100.4",
}


def decode_one(record, **settings):
    raw = orjson.dumps(record) if isinstance(record, (dict, list)) else record
    return decode_record(RawRecord(raw, "file:test.jsonl#line=1"), DecodeSettings(**settings)), raw


def test_kong_0_5_record():
    result, raw = decode_one(KONG_05)
    assert result.dead_letters == []
    [item] = result.events
    assert item.source == "file:test.jsonl#line=1"
    assert item.event == {
        "transaction_id": transaction_id_for(raw, 0),
        "request": {
            "time": "2026-11-25T09:46:40.123Z",
            "uri": "http://api.acme.io:8000/v1/orders?apikey=sk_live_1&page=2",  # masking is a later stage
            "verb": "GET",
            "headers": {"host": "api.acme.io:8000", "Authorization": "Bearer abc.def.ghi", "accept": "*/*"},
            "ip_address": "203.0.113.9",
        },
        "response": {"time": "2026-11-25T09:46:40.168Z", "status": 200,
                     "headers": {"Content-Type": "application/json"}},
        "direction": "Incoming",
        "weight": 1,
        "user_id": "c-77",  # authenticated_entity.consumer_id; never the credential's key
        "metadata": {"gateway": "kong", "api_name": "orders", "latency_kong_ms": 3, "latency_proxy_ms": 41,
                     "request_size": 123, "response_size": 512},
    }
    assert b"the-secret-api-key" not in orjson.dumps(item.event)


def test_kong_2_8_record_not_proxied():
    result, raw = decode_one(KONG_28)
    [item] = result.events
    assert item.event == {
        "transaction_id": transaction_id_for(raw, 0),
        "request": {
            "time": "2026-11-25T09:46:40.000Z",
            "uri": "https://api.acme.io/v1/orders",  # the default :443 Kong always logs is dropped
            "verb": "POST",
            "headers": {"host": "api.acme.io", "authorization": "REDACTED", "accept-encoding": "gzip, br",
                        "x-consumer-username": "bob"},
            "ip_address": "2001:db8::7",
        },
        "response": {"time": "2026-11-25T09:46:40.003Z", "status": 429,  # 2.5 ms rounds half-up
                     "headers": {"content-type": "application/json", "set-cookie": "a=1, b=2"}},
        "direction": "Incoming",
        "weight": 1,
        "user_id": "bob",
        "metadata": {"gateway": "kong", "route_name": "orders-create", "service_name": "orders",
                     "latency_kong_ms": 1, "request_size": 320, "response_size": 97},  # no proxy latency: -1
    }


def test_kong_3_9_record_uses_the_gateway_request_id():
    result, _ = decode_one(KONG_39)
    [item] = result.events
    assert item.event["transaction_id"] == "8bd6c7b1f0e94f1c9c9d1b6f2a3e4d5c"
    assert item.event["request"]["uri"] == "https://api.acme.io:8443/v1/users/me"
    assert item.event["user_id"] == "cust-0009"
    assert item.event["response"] == {"time": "2026-11-25T09:46:41.032Z", "status": 502, "headers": {}}
    assert item.event["metadata"] == {
        "gateway": "kong", "latency_kong_ms": 2, "latency_proxy_ms": 30, "latency_receive_ms": 0,
        "request_size": 200, "response_size": 0, "upstream_status": "502, 502", "response_source": "upstream",
        "workspace": "default",
    }


def test_moesif_event_is_normalized():
    event = {
        "request": {"time": "2026-11-25T10:00:00.5", "uri": "https://a.io/x", "verb": "POST",
                    "headers": {"Content-Length": 12}, "body": {"a": 1}, "transfer_encoding": "json",
                    "ip_address": None},
        "response": {"time": "2026-11-25T10:00:01+00:00", "status": 201, "headers": {},
                     "body": "aGk=", "transfer_encoding": "base64"},
        "user_id": "u1", "company_id": None, "transaction_id": "abc-123", "weight": None,
        "metadata": {"k": "v"},
    }
    result, _ = decode_one(event)
    [item] = result.events
    assert item.event == {
        "transaction_id": "abc-123",
        "request": {"time": "2026-11-25T10:00:00.500Z", "uri": "https://a.io/x", "verb": "POST",
                    "headers": {"Content-Length": "12"}, "body": {"a": 1}},
        "response": {"time": "2026-11-25T10:00:01.000Z", "status": 201, "headers": {}, "body": "aGk=",
                     "transfer_encoding": "base64"},
        "user_id": "u1",
        "direction": "Incoming",
        "weight": 1,
        "metadata": {"k": "v"},
    }


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r: r["response"].update(status=999), "invalid_type:response.status"),
        (lambda r: r["response"].update(status="200"), "invalid_type:response.status"),
        (lambda r: r["response"].update(status=True), "invalid_type:response.status"),
        (lambda r: r.pop("started_at"), "missing_field:started_at"),
        (lambda r: r.update(started_at=1795600000), "invalid_timestamp"),  # seconds, not ms
        (lambda r: r["request"].pop("method"), "missing_field:request.method"),
        (lambda r: r["request"].update(url="/relative"), "invalid_type:request.url"),
        (lambda r: r["latencies"].update(request=-4), "invalid_type:latencies.request"),
        (lambda r: r["request"].update(headers={f"h{i}": "v" for i in range(1001)}), "too_many_headers"),
    ],
)
def test_bad_kong_records_are_dead_letters_with_reason(change, reason):
    record = orjson.loads(orjson.dumps(KONG_39))
    change(record)
    result, raw = decode_one(record)
    assert result.events == []
    [letter] = result.dead_letters
    assert (letter["stage"], letter["reason"], letter["payload"]) == ("decode", reason, raw)


def test_one_bad_item_in_an_array_dead_letters_only_itself():
    bad = orjson.loads(orjson.dumps(KONG_28))
    bad["response"]["status"] = 42
    result, _ = decode_one([KONG_05, bad, "text", KONG_39])
    assert [item.source for item in result.events] == ["file:test.jsonl#line=1#index=0",
                                                        "file:test.jsonl#line=1#index=3"]
    assert [(d["reason"], d["source"]) for d in result.dead_letters] == [
        ("invalid_type:response.status", "file:test.jsonl#line=1#index=1"),
        ("not_an_object", "file:test.jsonl#line=1#index=2"),
    ]


def test_newline_delimited_record_with_a_bad_line():
    raw = orjson.dumps(KONG_05) + b"\n{not json\n\n" + orjson.dumps(KONG_39) + b"\n"
    result, _ = decode_one(raw)
    assert len(result.events) == 2
    [letter] = result.dead_letters
    assert (letter["reason"], letter["source"], letter["payload"]) == (
        "invalid_json", "file:test.jsonl#line=1#line=2", b"{not json")


def test_gzip_record_and_same_ids_on_replay():
    raw = gzip.compress(orjson.dumps([KONG_05, KONG_05]))
    first, _ = decode_one(raw)
    again, _ = decode_one(raw)
    ids = [item.event["transaction_id"] for item in first.events]
    assert len(set(ids)) == 2
    assert ids == [item.event["transaction_id"] for item in again.events]


@pytest.mark.parametrize(
    ("raw", "settings", "reason"),
    [
        (b"", {}, "empty_input"),
        (b"  \n ", {}, "empty_input"),
        (b"\x0b\x0c\r\t", {}, "empty_input"),  # every byte bytes.strip() removes
        (b"[]", {}, "empty_input"),
        (b"42", {}, "not_an_object"),
        (b'{"a": NaN}', {}, "non_finite_number"),
        (b'{"a": "\xff"}', {}, "invalid_utf8"),
        (b"x" * 2000, {"max_record_bytes": 1000}, "record_too_large"),
        (gzip.compress(b" " * 5000), {"max_decompressed_bytes": 4096}, "decompressed_size_limit_exceeded"),
        (gzip.compress(b"{}")[:-6], {}, "corrupt_gzip"),
        (b'{"hello": "world"}', {}, "unknown_format"),
        (orjson.dumps(KONG_39), {"input_format": "alf"}, "missing_field:entries"),
    ],
)
def test_hostile_and_unknown_input(raw, settings, reason):
    result, _ = decode_one(raw, **settings)
    assert result.events == []
    assert [letter["reason"] for letter in result.dead_letters] == [reason]


def test_gzip_bomb_is_stopped_while_inflating():
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))  # 64 MiB of zeros in ~64 KiB
    assert len(bomb) < 100_000
    result, _ = decode_one(bomb)
    [letter] = result.dead_letters
    assert letter["reason"] == "decompressed_size_limit_exceeded"
    assert len(letter["payload"]) <= 64 * 1024


def test_format_hint_overrides_detection():
    result = decode_record(RawRecord(orjson.dumps(KONG_39), "pubsub:s#id=1", "moesif"))
    assert result.events == []
    assert result.dead_letters[0]["reason"] == "missing_field:request.time"


def test_format_attribute_overrides_detection():
    raw = orjson.dumps(KONG_39)
    hinted = decode_record(RawRecord(raw, "pubsub:s#id=1", format_hint="aws_apigateway"))
    assert [letter["reason"] for letter in hinted.dead_letters] == ["missing_field:httpMethod"]
    assert len(decode_record(RawRecord(raw, "pubsub:s#id=2", format_hint="kong")).events) == 1
    [letter] = decode_record(RawRecord(raw, "pubsub:s#id=3", format_hint="nginx")).dead_letters
    assert letter["reason"] == "unknown_format" and "'nginx' is not one of auto, moesif, kong" in letter["detail"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.acme.io", "https://api.acme.io"),
        ("https://api.acme.io:443", "https://api.acme.io"),
        ("https://api.acme.io:443/v1?a=1#f", "https://api.acme.io/v1?a=1#f"),
        ("http://api.acme.io:80?x", "http://api.acme.io?x"),
        ("http://api.acme.io:443/", "http://api.acme.io:443/"),  # not http's default port: kept
        ("https://10.0.0.1:8443/p", "https://10.0.0.1:8443/p"),
        ("https://a.io:0/p", "https://a.io:0/p"),
        ("https://a.io:00443/p", "https://a.io/p"),
        ("https://a.io:65535", "https://a.io:65535"),
        ("https://user:pw@a.io:443/p", "https://user:pw@a.io/p"),  # not the plain-host form: urlsplit's path
        ("https://[::1]:443/p", "https://[::1]/p"),
        ("https://bücher.de:443/p", "https://bücher.de/p"),
    ],
)
def test_absolute_url_drops_only_the_default_port(url, expected):
    assert absolute_url(url, "request.url") == expected


@pytest.mark.parametrize("url", ["/v1/orders", "ftp://a.io/x", "https://", "https://a.io:65536/p",
                                 "https://a.io:123456/p", "https://a.io:44x/p", "https://:443/p"])
def test_absolute_url_refuses_what_is_not_an_absolute_http_url(url):
    with pytest.raises(DecodeError) as raised:
        absolute_url(url, "request.url")
    assert raised.value.reason == "invalid_type:request.url"
