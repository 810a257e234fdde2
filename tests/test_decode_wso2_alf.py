"""WSO2 API Manager analytics events and ALF 0.0.1 → 2.0.0 documents (SPEC §3; reference/formats.md §C, §D).
Records written from the reference, full expected events asserted."""
import base64
import ipaddress
import re

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.model.event import transaction_id_for
from transforms.model.records import RawRecord
from transforms.stages.decode import DecodeSettings, decode_record
from transforms.stages.formats import wso2

WSO2_RESPONSE = {
    "apiName": "PizzaShackAPI", "proxyResponseCode": 200, "destination": "https://backend.internal/pizzashack",
    "apiCreatorTenantDomain": "carbon.super", "platform": "Mac OS X", "apiMethod": "GET", "apiVersion": "1.0.0",
    "gatewayType": "SYNAPSE", "apiCreator": "admin", "responseCacheHit": False, "backendLatency": 31,
    "correlationId": "d3b5c0a1-6f0e-4f5e-9a8e-2b7c1d0e9f11", "requestMediationLatency": 12,
    "keyType": "PRODUCTION", "apiId": "7a2f0c1e-52a9-4a07-a1a8-1a3b1e1d9e00", "applicationName": "Default",
    "targetResponseCode": 200, "requestTimestamp": "2026-11-25T09:46:40.451Z", "applicationOwner": "alice",
    "userAgent": "Chrome", "userName": "alice@carbon.super", "apiResourceTemplate": "/menu", "regionId": "default",
    "responseLatency": 45, "responseMediationLatency": 2, "userIp": "192.168.1.20",
    "applicationId": "b0c7d1e2-0000-4000-8000-000000000042", "apiType": "HTTP", "eventType": "response",
    "apiContext": "/pizzashack/1.0.0",
    "properties": {"apiContext": "/pizzashack/1.0.0", "responseContentType": "application/json",
                   "subType": "DEFAULT", "isEgress": False, "responseSize": 1234, "commonName": "N/A"},
}

WSO2_FAULT = {  # throttled: no latency, targetResponseCode -1, method/context/user in properties, masked values
    "correlationId": "5e1f9a7b-1111-4c4c-9d9d-222233334444", "keyType": "PRODUCTION",
    "apiId": "7a2f0c1e-52a9-4a07-a1a8-1a3b1e1d9e01", "apiName": "Orders", "apiVersion": "2.1.0",
    "apiCreator": "admin", "apiType": "HTTP", "errorType": "THROTTLED", "errorCode": 900803,
    "errorMessage": "APPLICATION_LEVEL_LIMIT_EXCEEDED", "proxyResponseCode": 429, "targetResponseCode": -1,
    "requestTimestamp": "2026-11-25T12:16Z", "userIp": "192.168.***.98", "eventType": "fault",
    "properties": {"apiMethod": "POST", "apiContext": "/t/wso2.com/orders/2.1.0", "userName": "*****@gmail.com"},
}


def decode(raw: bytes, **settings):
    return decode_record(RawRecord(raw, "file:apim.log#line=3"), DecodeSettings(**settings))


def test_wso2_response_event():
    result = decode(orjson.dumps(WSO2_RESPONSE))
    assert result.dead_letters == []
    [item] = result.events
    assert item.event == {
        "transaction_id": "d3b5c0a1-6f0e-4f5e-9a8e-2b7c1d0e9f11",
        "request": {"time": "2026-11-25T09:46:40.451Z", "uri": "/pizzashack/1.0.0/menu", "verb": "GET",
                    "headers": {}, "api_version": "1.0.0", "ip_address": "192.168.1.20"},
        "response": {"time": "2026-11-25T09:46:40.496Z", "status": 200, "headers": {}},
        "direction": "Incoming",
        "weight": 1,
        "user_id": "alice",  # `@carbon.super` (the super tenant) is not part of the user
        "metadata": {
            "gateway": "wso2", "event_type": "response", "api_name": "PizzaShackAPI",
            "api_id": "7a2f0c1e-52a9-4a07-a1a8-1a3b1e1d9e00", "api_type": "HTTP", "api_creator": "admin",
            "api_creator_tenant_domain": "carbon.super", "application_id": "b0c7d1e2-0000-4000-8000-000000000042",
            "application_name": "Default", "application_owner": "alice", "key_type": "PRODUCTION",
            "region_id": "default", "gateway_type": "SYNAPSE", "destination": "https://backend.internal/pizzashack",
            "route_template": "/menu", "user_agent": "Chrome", "platform": "Mac OS X", "latency_backend_ms": 31,
            "latency_request_mediation_ms": 12, "latency_response_mediation_ms": 2, "target_response_code": 200,
            "response_cache_hit": False, "response_content_type": "application/json", "sub_type": "DEFAULT",
            "common_name": "N/A", "response_size": 1234,
        },
    }


def test_wso2_fault_event_short_timestamp_masked_ip_and_user():
    [item] = decode(orjson.dumps(WSO2_FAULT)).events
    assert item.event == {
        "transaction_id": "5e1f9a7b-1111-4c4c-9d9d-222233334444",
        "request": {"time": "2026-11-25T12:16:00.000Z", "uri": "/t/wso2.com/orders/2.1.0", "verb": "POST",
                    "headers": {}, "api_version": "2.1.0"},  # no ip: the logged one is masked
        "response": {"time": "2026-11-25T12:16:00.000Z", "status": 429, "headers": {}},
        "direction": "Incoming",
        "weight": 1,  # no user_id: the name is masked, and a fault is never attributed to apiCreator
        "metadata": {
            "gateway": "wso2", "event_type": "fault", "latency_unknown": True, "api_name": "Orders",
            "api_id": "7a2f0c1e-52a9-4a07-a1a8-1a3b1e1d9e01", "api_type": "HTTP", "api_creator": "admin",
            "key_type": "PRODUCTION", "error_type": "THROTTLED", "error_message": "APPLICATION_LEVEL_LIMIT_EXCEEDED",
            "error_code": 900803,
        },
    }


def test_wso2_apim_metrics_log_lines():
    fault = {key: value for key, value in WSO2_FAULT.items() if key != "eventType"}
    lines = (
        b"12:16:30,451 [10.0.0.5-gw01] [PassThroughMessageProcessor-7] INFO ELKCounterMetric apimMetrics: "
        b"apim:faulty, properties :" + orjson.dumps(fault) + b"\n"
        b"12:16:31,002 [10.0.0.5-gw01] [PassThroughMessageProcessor-9] INFO ELKCounterMetric apimMetrics: "
        b"apim:response, properties :" + orjson.dumps(WSO2_RESPONSE) + b"\n"
        b"12:16:31,100 [10.0.0.5-gw01] [main] INFO SomethingElse started\n"
    )
    result = decode(lines)
    assert [(item.source, item.event["metadata"]["event_type"]) for item in result.events] == [
        ("file:apim.log#line=3#line=1", "fault"), ("file:apim.log#line=3#line=2", "response")]
    assert [(letter["reason"], letter["source"]) for letter in result.dead_letters] == [
        ("invalid_json", "file:apim.log#line=3#line=3")]


def test_wso2_short_forms_email_users_and_masked_ipv6():
    event = {**WSO2_RESPONSE, "requestTimestamp": "2026-11-25T09:46:30Z", "userName": "bob@acme.com@carbon.super",
             "userIp": "2001:0db8:85a3:****:****:****:****:7334", "responseLatency": 0}
    [item] = decode(orjson.dumps(event)).events
    assert item.event["request"]["time"] == item.event["response"]["time"] == "2026-11-25T09:46:30.000Z"
    assert item.event["user_id"] == "bob@acme.com"
    assert "ip_address" not in item.event["request"]
    tenant_user = decode(orjson.dumps({**WSO2_RESPONSE, "userName": "carol@tenant.com"})).events[0].event
    assert tenant_user["user_id"] == "carol@tenant.com"


def test_bad_wso2_events_name_the_field():
    cases = {
        "missing_field:apiMethod": {**WSO2_FAULT, "properties": {"apiContext": "/x"}},
        "missing_field:apiContext": {k: v for k, v in WSO2_RESPONSE.items() if k not in ("apiContext", "properties")},
        "invalid_timestamp": {**WSO2_RESPONSE, "requestTimestamp": "1795600000451"},
        "invalid_type:proxyResponseCode": {**WSO2_RESPONSE, "proxyResponseCode": "200"},
        "invalid_type:responseLatency": {**WSO2_RESPONSE, "responseLatency": -3},
    }
    for reason, record in cases.items():
        result = decode(orjson.dumps(record))
        assert [letter["reason"] for letter in result.dead_letters] == [reason], reason


def _har_entry(**overrides):
    entry = {
        "serverIPAddress": "10.1.2.3", "startedDateTime": "2026-11-25T09:46:40.123Z", "time": 45,
        "request": {"method": "GET", "url": "https://api.acme.io/v1/orders?page=2", "httpVersion": "HTTP/1.1",
                    "queryString": [{"name": "page", "value": "2"}],
                    "headers": [{"name": "Host", "value": "api.acme.io"}, {"name": "Accept", "value": "*/*"},
                                {"name": "Accept", "value": "text/plain"}],
                    "headersSize": 80, "bodySize": 0},
        "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1",
                     "headers": [{"name": "Content-Type", "value": "application/json"}], "headersSize": 40,
                     "bodySize": 9, "content": {"size": 9, "mimeType": "application/json", "text": "{\"n\": 1}"}},
        "timings": {"send": 1, "wait": 40, "receive": 4},
    }
    entry.update(overrides)
    return entry


def test_alf_0_0_1_entry_ip_and_time_without_zone():
    document = {"serviceToken": "svc-secret-token", "har": {"log": {"version": "1.2", "creator": {
        "name": "mashape-analytics-agent-node", "version": "1.0.0"}, "entries": [
            _har_entry(clientIPAddress="203.0.113.50", startedDateTime="2026-11-25T09:46:40.123")]}}}
    raw = orjson.dumps(document)
    result = decode(raw)
    assert result.dead_letters == []
    [item] = result.events
    assert item.source == "file:apim.log#line=3#entry=0"
    assert item.event == {
        "request": {"time": "2026-11-25T09:46:40.123Z", "uri": "https://api.acme.io/v1/orders?page=2",
                    "verb": "GET", "headers": {"Host": "api.acme.io", "Accept": "*/*, text/plain"},
                    "ip_address": "203.0.113.50"},
        "response": {"time": "2026-11-25T09:46:40.168Z", "status": 200,
                     "headers": {"Content-Type": "application/json"}, "body": {"n": 1}},
        "direction": "Incoming",
        "weight": 1,
        "metadata": {"gateway": "alf", "alf_version": "0.0.1", "server_ip_address": "10.1.2.3"},
        "transaction_id": transaction_id_for(raw, 0),
    }
    assert b"svc-secret-token" not in orjson.dumps(item.event)


def test_alf_1_0_0_root_client_ip_and_post_data():
    entry = _har_entry()
    entry["request"] |= {"method": "POST", "url": "https://api.acme.io/v1/orders",
                         "postData": {"mimeType": "application/json", "text": "{\"sku\": \"A-1\"}"}}
    entry["response"]["content"] = {"mimeType": "text/plain", "encoding": "base64", "text": "b2s="}
    document = {"version": "1.0.0", "serviceToken": "svc", "environment": "production",
                "clientIPAddress": "198.51.100.23",
                "har": {"log": {"version": "1.2", "creator": {}, "entries": [entry]}}}
    [item] = decode(orjson.dumps(document)).events
    assert item.event["request"] == {
        "time": "2026-11-25T09:46:40.123Z", "uri": "https://api.acme.io/v1/orders", "verb": "POST",
        "headers": {"Host": "api.acme.io", "Accept": "*/*, text/plain"}, "body": {"sku": "A-1"},
        "ip_address": "198.51.100.23"}
    assert item.event["response"] == {
        "time": "2026-11-25T09:46:40.168Z", "status": 200, "headers": {"Content-Type": "application/json"},
        "body": "b2s=", "transfer_encoding": "base64"}
    assert item.event["metadata"] == {"gateway": "alf", "alf_version": "1.0.0", "environment": "production",
                                      "server_ip_address": "10.1.2.3"}


def test_alf_1_1_0_several_entries_kong_producer_one_bad_entry():
    kong_style = _har_entry(clientIPAddress="192.0.2.1", startedDateTime="2026-11-25T09:46:40Z", time=7)
    kong_style["request"]["bodyCaptured"] = False
    kong_style["response"]["content"] = {"mimeType": "text/html", "encoding": "base64",
                                         "text": base64.b64encode(b"<p>hi</p>").decode()}
    broken = _har_entry(startedDateTime="yesterday")
    document = {"version": "1.1.0", "serviceToken": "svc", "har": {"log": {"creator": {}, "entries": [
        kong_style, broken, _har_entry(clientIPAddress="192.0.2.2")]}}}
    raw = orjson.dumps(document)
    result = decode(raw)
    assert [item.event["request"].get("ip_address") for item in result.events] == ["192.0.2.1", "192.0.2.2"]
    first = result.events[0].event
    assert (first["request"]["time"], first["response"]["time"]) == (
        "2026-11-25T09:46:40.000Z", "2026-11-25T09:46:40.007Z")
    assert first["response"]["body"] == base64.b64encode(b"<p>hi</p>").decode()
    assert [item.event["transaction_id"] for item in result.events] == [
        transaction_id_for(raw, 0), transaction_id_for(raw, 2)]
    [letter] = result.dead_letters
    assert (letter["reason"], letter["source"]) == ("invalid_timestamp", "file:apim.log#line=3#entry=1")
    replayable = orjson.loads(letter["payload"])  # a one-entry ALF document, without the service token
    assert replayable == {"version": "1.1.0", "har": {"log": {"creator": {}, "entries": [broken]}}}


def test_alf_2_0_0_query_rebuilt_and_fractional_time():
    entry = _har_entry(clientIPAddress="192.0.2.9", time=12.5)
    entry["request"] |= {"url": "https://api.acme.io/v1/search",
                         "queryString": [{"name": "q", "value": "red shoes"}, {"name": "tag", "value": "a&b"},
                                         {"name": "tag", "value": "c"}],
                         "content": {"encoding": "base64", "text": "e30="}}
    document = {"version": "2.0.0", "creator": {"name": "galileo-agent"},
                "service": {"token": "svc", "environment": "staging"}, "entries": [entry]}
    [item] = decode(orjson.dumps(document)).events
    assert item.event["request"]["uri"] == "https://api.acme.io/v1/search?q=red%20shoes&tag=a%26b&tag=c"
    assert item.event["request"]["body"] == "e30=" and item.event["request"]["transfer_encoding"] == "base64"
    assert item.event["response"]["time"] == "2026-11-25T09:46:40.136Z"  # 123 + 12.5 rounds half-up
    assert item.event["metadata"]["environment"] == "staging"


def test_alf_array_of_documents_and_bad_documents():
    one = {"version": "1.1.0", "serviceToken": "s", "har": {"log": {"entries": [_har_entry()]}}}
    empty = {"version": "1.1.0", "serviceToken": "s", "har": {"log": {"entries": []}}}
    bad_base64 = _har_entry()
    bad_base64["response"]["content"] = {"encoding": "base64", "text": "***"}
    result = decode(orjson.dumps([one, empty, {"version": "2.0.0", "service": {}, "entries": [bad_base64]}]))
    assert len(result.events) == 1
    assert [(letter["reason"], letter["source"]) for letter in result.dead_letters] == [
        ("empty_input", "file:apim.log#line=3#index=1"), ("invalid_base64", "file:apim.log#line=3#index=2#entry=0")]


@settings(max_examples=500, deadline=None)
@given(text=st.one_of(st.text(alphabet="0123456789.", max_size=17),
                      st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str),
                      st.text(alphabet="0123456789abcdef:.*%", max_size=20)))
def test_a_user_ip_is_kept_exactly_when_it_is_an_ip_address(text):
    """WSO2 masks IPs (``192.168.***.98``): the dotted-quad check without ``ipaddress`` agrees with it."""
    try:
        ipaddress.ip_address(text)
        expected = text
    except ValueError:
        expected = None
    assert wso2._real_ip(text) == (expected or None)


# The pattern metrics_log_line used to be, kept here as the reference for its token-by-token reading.
METRICS_LINE = re.compile(rb"apimMetrics:\s*apim:(response|faulty)\s*,\s*properties\s*:\s*(\{.*)\s*$", re.S)
PIECES = st.sampled_from((b"apimMetrics:", b"apim:response", b"apim:faulty", b"apim:", b",", b"properties",
                          b":", b"{", b'{"a":1}', b" ", b"\t", b"\n", b"\x0b", b"\x0c", b"\r", b"x", b"}"))


@settings(max_examples=1000, deadline=None)
@given(pieces=st.lists(PIECES, max_size=14))
def test_metrics_log_line_reads_what_the_reference_pattern_matches(pieces):
    line = b"2026-11-25 10:00:00,000 INFO ELKCounterMetric " + b"".join(pieces)
    match = METRICS_LINE.search(line)
    expected = (match.group(2), match.group(1).decode()) if match else None
    assert wso2.metrics_log_line(line) == expected
