"""Google Cloud Logging entries as a Pub/Sub log sink publishes them (SPEC §3): the LogEntry envelope, httpRequest
entries (load balancers, Cloud CDN, Cloud Run), ESP/ESPv2/API Gateway entries, and gateway records inside
jsonPayload/textPayload.

Shapes: the load balancer and CDN entries are real published entries (Elastic's fixtures, in
open-telemetry/opentelemetry-collector-contrib ``testdata/apploadbalancer`` and elastic/integrations
``loadbalancing_logs``), copied field for field. The Cloud Run entry takes its resource block from a published
Cloud Run entry and its httpRequest fields from Google's ``HttpRequest`` reference. The ESP entries have the
fields ESP's and ESPv2's report builders write (cloudendpoints/esp, GoogleCloudPlatform/esp-v2
``request_builder.cc``), with the values of ESPv2's own test golden.
"""
import copy
import random
import re

import orjson
import pytest

from transforms.model.records import RawRecord
from transforms.stages.decode import DecodeSettings, decode_record
from transforms.stages.masking import MaskSettings, mask_event

GLOBAL_LB = {  # opentelemetry-collector-contrib testdata/apploadbalancer/global_external_application_load_balancer.json
    "httpRequest": {"latency": "0.005192s", "remoteIp": "79.117.34.252", "requestMethod": "GET",
                    "requestSize": "29", "requestUrl": "https://35.227.246.6/", "responseSize": "780",
                    "serverIp": "10.20.0.4", "status": 200, "userAgent": "curl/8.7.1"},
    "insertId": "h91ql8g1lpdqh2",
    "jsonPayload": {"@type": "type.googleapis.com/google.cloud.loadbalancing.type.LoadBalancerLogEntry",
                    "backendTargetProjectNumber": "projects/8560181848",
                    "cacheDecision": ["RESPONSE_HAS_ETAG", "RESPONSE_HAS_LAST_MODIFIED", "RESPONSE_HAS_CONTENT_TYPE",
                                      "CACHE_MODE_USE_ORIGIN_HEADERS"],
                    "remoteIp": "79.117.34.252", "statusDetails": "response_sent_by_backend",
                    "tls": {"cipher": "TLS_CHACHA20_POLY1305_SHA256", "protocol": "TLSv1.3"}},
    "logName": "projects/elastic-observability/logs/requests",
    "receiveTimestamp": "2025-11-20T13:35:28.360361140Z",
    "resource": {"labels": {"backend_service_name": "gcp-fixture-alb-backend-service",
                            "forwarding_rule_name": "gcp-fixture-alb-forwarding-rule",
                            "project_id": "elastic-observability", "target_proxy_name": "gcp-fixture-alb-https-proxy",
                            "url_map_name": "gcp-fixture-alb-url-map", "zone": "global"},
                 "type": "http_load_balancer"},
    "severity": "INFO", "spanId": "e9004ce8eccc7c2d", "timestamp": "2025-11-20T13:35:27.558637Z",
    "trace": "projects/elastic-observability/traces/5334e0e7aee6ec1b1a8c34db601241ab",
}

REGIONAL_LB = {  # …/regional_external_application_load_balancer.json: remoteIp carries the client's port
    "httpRequest": {"latency": "0.002058s", "protocol": "HTTP/2", "remoteIp": "79.117.34.252:60102",
                    "requestMethod": "GET", "requestSize": "44", "requestUrl": "https://34.0.217.72/?curl=",
                    "responseSize": "746", "serverIp": "10.20.0.4:80", "status": 200, "userAgent": "curl/8.7.1"},
    "insertId": "1043fs2f1ss3li",
    "jsonPayload": {"@type": "type.googleapis.com/google.cloud.loadbalancing.type.LoadBalancerLogEntry",
                    "backendTargetProjectNumber": "projects/8560181848",
                    "tls": {"cipher": "TLS_CHACHA20_POLY1305_SHA256", "protocol": "TLSv1.3"}},
    "logName": "projects/elastic-observability/logs/loadbalancing.googleapis.com%2Fexternal_regional_requests",
    "receiveTimestamp": "2025-11-20T14:18:55.974065255Z",
    "resource": {"labels": {"backend_name": "gcp-fixture-alb-backend-mig", "backend_scope": "europe-southwest1-a",
                            "backend_scope_type": "ZONE", "backend_target_name": "gcp-fixture-alb-backend-service",
                            "backend_target_type": "BACKEND_SERVICE", "backend_type": "INSTANCE_GROUP",
                            "forwarding_rule_name": "gcp-fixture-alb-forwarding-rule",
                            "matched_url_path_rule": "UNMATCHED", "network_name": "gcp-fixture-alb-network",
                            "project_id": "elastic-observability", "region": "europe-southwest1",
                            "target_proxy_name": "gcp-fixture-alb-https-proxy",
                            "url_map_name": "gcp-fixture-alb-url-map"},
                 "type": "http_external_regional_lb_rule"},
    "severity": "INFO", "timestamp": "2025-11-20T14:18:48.230937Z",
}

CDN_HIT = {  # elastic/integrations loadbalancing_logs test-load-balancer.log, line 3: served from Cloud CDN, no latency
    "insertId": "1oek5rg3l3fxj7",
    "jsonPayload": {"@type": "type.googleapis.com/google.cloud.loadbalancin,g.type.LoadBalancerLogEntry",
                    "cacheId": "SFO-fbae48ad", "statusDetails": "response_from_cache"},
    "httpRequest": {"requestMethod": "GET", "requestUrl": "http://81.2.69.193:8080/static/us/three-cats.jpg",
                    "requestSize": "577", "status": 304, "responseSize": "157",
                    "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/537.36 (KHTML, like "
                                 "Gecko) Chrome/83.0.4103.61 Safari/537.36",
                    "remoteIp": "89.160.20.156:9989", "cacheHit": True, "cacheLookup": True,
                    "serverIp": "10.5.3.1:9090", "protocol": "HTTP/2.0",
                    "referer": "https://developer.mozilla.org/en-US/docs/Web/JavaScript"},
    "resource": {"type": "http_load_balancer",
                 "labels": {"zone": "global", "url_map_name": "URL_MAP_NAME",
                            "forwarding_rule_name": "FORWARDING_RULE_NAME", "target_proxy_name": "TARGET_PROXY_NAME",
                            "backend_service_name": "", "project_id": "PROJECT_ID"}},
    "timestamp": "2020-06-08T23:41:30.078651Z", "severity": "INFO", "logName": "projects/PROJECT_ID/logs/requests",
    "trace": "projects/PROJECT_ID/traces/241d69833e64b3bf83fabac8c873d992",
    "receiveTimestamp": "2020-06-08T23:41:30.588272510Z", "spanId": "7b6537d3672e08e1",
}

CLOUD_RUN = {
    "httpRequest": {"requestMethod": "POST", "requestUrl": "https://store-service-abc123-ew.a.run.app/orders?page=2",
                    "requestSize": "1024", "status": 201, "responseSize": "312", "userAgent": "curl/8.7.1",
                    "remoteIp": "2001:db8::7", "serverIp": "216.239.32.53", "latency": "1.250000001s",
                    "protocol": "HTTP/1.1"},
    "insertId": "668d70dd0009c97ecfc33e81",
    "resource": {"type": "cloud_run_revision",
                 "labels": {"revision_name": "store-service-00001-9nl", "configuration_name": "store-service",
                            "location": "europe-west1", "service_name": "store-service",
                            "project_id": "qwiklabs-gcp-01-e4390abfab41"}},
    "timestamp": "2024-07-09T17:18:21.641406Z", "severity": "INFO",
    "labels": {"instanceId": "0087244a806e3c39e1a66ba96040897d763951f2f98ac98001ce68e47befc0ad61d29b24ba4e3779f7"},
    "logName": "projects/qwiklabs-gcp-01-e4390abfab41/logs/run.googleapis.com%2Frequests",
    "trace": "projects/qwiklabs-gcp-01-e4390abfab41/traces/1b2c3d4e5f60718293a4b5c6d7e8f901",
    "receiveTimestamp": "2024-07-09T17:18:21.925730456Z",
}

API_KEY = "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
ESP_V1 = {  # ESP's endpoints_log: everything in jsonPayload; timestamp = end of the request
    "insertId": "1x5k2n7f3a9c", "logName": "projects/bookstore-prod/logs/endpoints_log",
    "resource": {"type": "api", "labels": {"service": "bookstore.endpoints.bookstore-prod.cloud.goog",
                                           "method": "endpoints.examples.bookstore.Bookstore.ListShelves",
                                           "version": "1.0.0", "location": "us-central1",
                                           "project_id": "bookstore-prod"}},
    "timestamp": "2026-11-25T09:46:40.250Z", "severity": "INFO",
    "jsonPayload": {"api_key": API_KEY, "api_method": "endpoints.examples.bookstore.Bookstore.ListShelves",
                    "api_name": "endpoints.examples.bookstore.Bookstore", "api_version": "1.0.0",
                    "http_method": "GET", "http_response_code": 200, "location": "us-central1",
                    "log_message": "Method: endpoints.examples.bookstore.Bookstore.ListShelves is called",
                    "producer_project_id": "bookstore-prod", "referer": "https://app.example.com/",
                    "request_latency_in_ms": 123, "request_size_in_bytes": 100, "response_size_in_bytes": 1048576,
                    "timestamp": 1795600000.25, "url": f"/shelves?key={API_KEY}&page=2"},
}

API_GATEWAY = {  # API Gateway's request log, written by ESPv2: httpRequest and the ESPv2 jsonPayload
    "insertId": "d2k4m6p8r0t2", "logName": "projects/shop-prod/logs/apigateway.googleapis.com%2Frequests",
    "resource": {"type": "apigateway.googleapis.com/Gateway",
                 "labels": {"gateway_id": "shop-gw", "location": "europe-west1",
                            "resource_container": "projects/123456789012"}},
    "timestamp": "2026-11-25T09:46:41.500Z", "severity": "ERROR",
    "httpRequest": {"requestMethod": "POST", "requestUrl": f"/v1/orders?api_key={API_KEY}", "requestSize": "210",
                    "status": 503, "responseSize": "87", "remoteIp": "203.0.113.9", "latency": "0.4005s",
                    "protocol": "http"},
    "jsonPayload": {"timestamp": 1795600001.5, "service_config_id": "shop-config-7", "service_agent": "ESPv2/2.51.0",
                    "api_key_state": "VERIFIED", "http_status_code": 503, "response_code_detail": "upstream_reset",
                    "producer_project_id": "shop-prod", "api_key": API_KEY, "api_name": "1.shop_api",
                    "api_version": "1.0.0", "api_method": "1.shop_api.CreateOrder", "location": "europe-west1",
                    "error_cause": "upstream connect error", "request_headers": f"x-api-key={API_KEY}"},
}


def decode(entry, format_hint=None, **settings):
    raw = entry if isinstance(entry, bytes) else orjson.dumps(entry)
    return decode_record(RawRecord(raw, "pubsub:projects/p/subscriptions/gcp-logs#id=1", format_hint),
                         DecodeSettings(**settings))


def only_event(entry, **kwargs):
    result = decode(entry, **kwargs)
    assert result.dead_letters == []
    [item] = result.events
    return item.event


def only_dead_letter(entry, **kwargs):
    result = decode(entry, **kwargs)
    assert result.events == []
    [letter] = result.dead_letters
    return letter


UUID5 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_global_load_balancer_entry():
    event = only_event(GLOBAL_LB)
    assert UUID5.fullmatch(event.pop("transaction_id"))
    assert event == {
        "request": {"time": "2025-11-20T13:35:27.559Z", "uri": "https://35.227.246.6/", "verb": "GET",
                    "headers": {"user-agent": "curl/8.7.1"}, "ip_address": "79.117.34.252"},
        # The timestamp is the request's start: the response follows by the 5.192 ms latency, rounded half-up.
        "response": {"time": "2025-11-20T13:35:27.564Z", "status": 200, "headers": {}},
        "direction": "Incoming",
        "weight": 1,
        "metadata": {
            "gateway": "gcp_load_balancer", "log_name": "projects/elastic-observability/logs/requests",
            "resource_type": "http_load_balancer",
            "resource_labels": {"backend_service_name": "gcp-fixture-alb-backend-service",
                                "forwarding_rule_name": "gcp-fixture-alb-forwarding-rule",
                                "project_id": "elastic-observability",
                                "target_proxy_name": "gcp-fixture-alb-https-proxy",
                                "url_map_name": "gcp-fixture-alb-url-map", "zone": "global"},
            "trace": "projects/elastic-observability/traces/5334e0e7aee6ec1b1a8c34db601241ab",
            "span_id": "e9004ce8eccc7c2d", "request_size": 29, "response_size": 780, "latency_ms": 5.192,
            "server_ip": "10.20.0.4", "status_details": "response_sent_by_backend",
            "backend_target_project_number": "projects/8560181848",
            "cache_decision": ["RESPONSE_HAS_ETAG", "RESPONSE_HAS_LAST_MODIFIED", "RESPONSE_HAS_CONTENT_TYPE",
                               "CACHE_MODE_USE_ORIGIN_HEADERS"],
            "tls_protocol": "TLSv1.3", "tls_cipher": "TLS_CHACHA20_POLY1305_SHA256",
        },
    }


def test_regional_load_balancer_entry_drops_the_client_port():
    event = only_event(REGIONAL_LB)
    assert event["request"]["ip_address"] == "79.117.34.252"
    assert event["request"]["uri"] == "https://34.0.217.72/?curl="
    assert (event["request"]["time"], event["response"]["time"]) == ("2025-11-20T14:18:48.231Z",
                                                                     "2025-11-20T14:18:48.233Z")
    assert event["metadata"]["gateway"] == "gcp_load_balancer"
    assert event["metadata"]["resource_labels"]["matched_url_path_rule"] == "UNMATCHED"
    assert event["metadata"]["protocol"] == "HTTP/2"


def test_cloud_cdn_hit_without_latency():
    event = only_event(CDN_HIT)
    assert event["request"]["uri"] == "http://81.2.69.193:8080/static/us/three-cats.jpg"
    assert event["request"]["ip_address"] == "89.160.20.156"
    assert event["request"]["headers"]["referer"] == "https://developer.mozilla.org/en-US/docs/Web/JavaScript"
    assert event["response"] == {"time": "2020-06-08T23:41:30.079Z", "status": 304, "headers": {}}
    assert event["request"]["time"] == event["response"]["time"]
    metadata = event["metadata"]
    assert metadata["latency_unknown"] is True and "latency_ms" not in metadata
    assert (metadata["cache_hit"], metadata["cache_lookup"], metadata["cache_id"], metadata["status_details"]) == (
        True, True, "SFO-fbae48ad", "response_from_cache")
    assert "backend_service_name" not in metadata["resource_labels"]  # an empty label is no value


def test_cloud_run_request_log():
    event = only_event(CLOUD_RUN)
    assert event["request"] == {"time": "2024-07-09T17:18:21.641Z",
                                "uri": "https://store-service-abc123-ew.a.run.app/orders?page=2", "verb": "POST",
                                "headers": {"user-agent": "curl/8.7.1"}, "ip_address": "2001:db8::7"}
    assert event["response"] == {"time": "2024-07-09T17:18:22.891Z", "status": 201, "headers": {}}
    assert event["metadata"]["gateway"] == "gcp_cloud_run"
    assert event["metadata"]["resource_labels"]["service_name"] == "store-service"
    assert (event["metadata"]["request_size"], event["metadata"]["response_size"]) == (1024, 312)


def test_a_missing_status_is_a_dead_letter_never_status_0_or_200():
    """proto3 leaves out a status of 0 (a client that left before any response): no status, no event."""
    entry = copy.deepcopy(GLOBAL_LB)
    del entry["httpRequest"]["status"]
    letter = only_dead_letter(entry)
    assert letter["reason"] == "missing_field:httpRequest.status"
    assert letter["stage"] == "decode"


@pytest.mark.parametrize(("timestamp", "expected"), [
    ("2025-11-20T13:35:27Z", "2025-11-20T13:35:27.000Z"),
    ("2025-11-20T13:35:27.558Z", "2025-11-20T13:35:27.558Z"),
    ("2025-11-20T13:35:27.558637Z", "2025-11-20T13:35:27.559Z"),
    ("2025-11-20T13:35:27.558499999Z", "2025-11-20T13:35:27.558Z"),
])
def test_timestamps_with_0_3_6_or_9_fraction_digits(timestamp, expected):
    entry = copy.deepcopy(GLOBAL_LB)
    entry["timestamp"] = timestamp
    assert only_event(entry)["request"]["time"] == expected


@pytest.mark.parametrize(("latency", "response_time", "latency_ms"), [
    ("3s", "2025-11-20T13:35:30.559Z", 3000),
    ("0.000500s", "2025-11-20T13:35:27.560Z", 0.5),  # half a millisecond rounds up
    ("0.0004s", "2025-11-20T13:35:27.559Z", 0.4),
    ("12.5s", "2025-11-20T13:35:40.059Z", 12500),
])
def test_duration_latencies(latency, response_time, latency_ms):
    entry = copy.deepcopy(GLOBAL_LB)
    entry["httpRequest"]["latency"] = latency
    event = only_event(entry)
    assert event["response"]["time"] == response_time
    assert event["metadata"]["latency_ms"] == latency_ms


@pytest.mark.parametrize("latency", ["5ms", "-1s", "1.s", "0.1234567891s", 0.5, "s", "1e3s"])
def test_a_latency_that_is_not_a_duration_is_a_dead_letter(latency):
    entry = copy.deepcopy(GLOBAL_LB)
    entry["httpRequest"]["latency"] = latency
    assert only_dead_letter(entry)["reason"] == "invalid_type:httpRequest.latency"


def test_esp_endpoints_log_is_stamped_at_the_end_and_its_api_key_never_leaves():
    event = only_event(ESP_V1)
    assert event["request"] == {"time": "2026-11-25T09:46:40.127Z", "uri": "/shelves?key=*****&page=2",
                                "verb": "GET", "headers": {"referer": "https://app.example.com/"}}
    assert event["response"] == {"time": "2026-11-25T09:46:40.250Z", "status": 200, "headers": {}}
    metadata = event["metadata"]
    assert metadata["gateway"] == "gcp_endpoints"
    assert metadata["api_method"] == "endpoints.examples.bookstore.Bookstore.ListShelves"
    assert (metadata["request_size"], metadata["response_size"], metadata["latency_ms"]) == (100, 1048576, 123)
    assert API_KEY.encode() not in orjson.dumps(event)


def test_esp_entry_without_a_timestamp_uses_the_payloads_epoch_seconds():
    entry = copy.deepcopy(ESP_V1)
    del entry["timestamp"]
    event = only_event(entry)
    assert (event["request"]["time"], event["response"]["time"]) == ("2026-11-25T09:46:40.127Z",
                                                                     "2026-11-25T09:46:40.250Z")


def test_api_gateway_entry_from_espv2():
    event = only_event(API_GATEWAY)
    assert event["request"] == {"time": "2026-11-25T09:46:41.099Z", "uri": "/v1/orders?api_key=*****",
                                "verb": "POST", "headers": {}, "ip_address": "203.0.113.9"}
    assert event["response"] == {"time": "2026-11-25T09:46:41.500Z", "status": 503, "headers": {}}
    metadata = event["metadata"]
    assert metadata["gateway"] == "gcp_api_gateway"
    assert (metadata["api_method"], metadata["api_key_state"], metadata["response_code_detail"]) == (
        "1.shop_api.CreateOrder", "VERIFIED", "upstream_reset")
    assert metadata["resource_labels"]["gateway_id"] == "shop-gw"
    assert API_KEY.encode() not in orjson.dumps(event)  # not in request_headers either: they are not copied


def test_esp_entry_without_status_is_a_dead_letter():
    entry = copy.deepcopy(ESP_V1)
    del entry["jsonPayload"]["http_response_code"]
    entry["logName"] = "projects/bookstore-prod/logs/endpoints_log"
    assert only_dead_letter(entry)["reason"] == "missing_field:jsonPayload.http_response_code"


def kong_record():
    from devtools.sample_traffic import kong_record as make
    return make("3.9", 3, random.Random(5))


def gke_entry(**payload):
    return {"insertId": "x7k2p9q4r1s8", "logName": "projects/shop-prod/logs/stdout",
            "resource": {"type": "k8s_container",
                         "labels": {"project_id": "shop-prod", "location": "europe-west1-b", "cluster_name": "edge",
                                    "namespace_name": "kong", "pod_name": "kong-gateway-7d9f8-abcde",
                                    "container_name": "proxy"}},
            "timestamp": "2026-11-25T09:46:40.500123Z", "severity": "INFO",
            "receiveTimestamp": "2026-11-25T09:46:41.002911Z", **payload}


def test_kong_record_in_a_gke_containers_json_payload_is_decoded_by_kongs_rules():
    record = kong_record()
    bare = only_event(record)
    assert only_event(gke_entry(jsonPayload=record)) == bare


def test_kong_record_as_json_text_in_text_payload():
    record = kong_record()
    assert only_event(gke_entry(textPayload=orjson.dumps(record).decode() + "\n")) == only_event(record)


def test_wso2_metrics_line_in_text_payload():
    from devtools.sample_traffic import wso2_event, wso2_metrics_log_line
    line = wso2_metrics_log_line(wso2_event(1, random.Random(3)), 1)
    assert only_event(gke_entry(textPayload=line.decode())) == only_event(line)


def test_plain_text_nginx_line_is_unknown_format():
    line = '10.0.0.1 - - [25/Nov/2026:09:46:40 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.29"'
    letter = only_dead_letter(gke_entry(textPayload=line))
    assert letter["reason"] == "unknown_format"
    assert "plain text" in letter["detail"]


def test_audit_log_is_unknown_format():
    audit = {  # shape of Google's AuditLog example (protoPayload, cloudaudit log name)
        "protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                         "status": {}, "authenticationInfo": {"principalEmail": "ops@example.com"},
                         "serviceName": "compute.googleapis.com", "methodName": "v1.compute.instances.insert",
                         "resourceName": "projects/shop-prod/zones/europe-west1-b/instances/vm-1"},
        "insertId": "-abc123def", "resource": {"type": "gce_instance", "labels": {"project_id": "shop-prod"}},
        "timestamp": "2026-11-25T09:46:40.000Z", "severity": "NOTICE",
        "logName": "projects/shop-prod/logs/cloudaudit.googleapis.com%2Factivity",
        "receiveTimestamp": "2026-11-25T09:46:40.800Z",
    }
    letter = only_dead_letter(audit)
    assert letter["reason"] == "unknown_format" and "audit" in letter["detail"]


def test_application_request_log_with_a_message_payload_is_read_from_http_request():
    entry = copy.deepcopy(CLOUD_RUN)
    entry["logName"] = "projects/qwiklabs-gcp-01-e4390abfab41/logs/run.googleapis.com%2Fstdout"
    entry["jsonPayload"] = {"message": "order created", "order_id": "q5w7kk6"}
    event = only_event(entry)
    assert event["request"]["uri"] == "https://store-service-abc123-ew.a.run.app/orders?page=2"
    assert event["metadata"]["gateway"] == "gcp_cloud_run"


def test_transaction_id_is_stable_for_the_same_entry_in_any_message():
    """Derived from log name, insertId and timestamp: a redelivery, a different serialization or the entry inside a
    replay file with other lines all give the same id; another insertId gives another."""
    first = only_event(GLOBAL_LB)["transaction_id"]
    reordered = orjson.dumps(dict(reversed(list(GLOBAL_LB.items()))), option=orjson.OPT_INDENT_2)
    assert only_event(reordered)["transaction_id"] == first
    in_a_file = orjson.dumps(REGIONAL_LB) + b"\n" + orjson.dumps(GLOBAL_LB) + b"\n"
    ids = [item.event["transaction_id"] for item in decode(in_a_file).events]
    assert ids[1] == first and ids[0] != first
    other = copy.deepcopy(GLOBAL_LB)
    other["insertId"] = "h91ql8g1lpdqh3"
    assert only_event(other)["transaction_id"] != first


def test_a_kong_request_id_beats_the_entry_id():
    record = kong_record()
    event = only_event(gke_entry(jsonPayload=record))
    assert event["transaction_id"] == record["request"]["id"]


@pytest.mark.parametrize("format_hint", ["gcp_log_entry", "gcp_http_request"])
def test_format_attribute_may_name_it(format_hint):
    assert only_event(GLOBAL_LB, format_hint=format_hint)["request"]["uri"] == "https://35.227.246.6/"


def test_input_format_option_may_name_it():
    assert only_event(API_GATEWAY, input_format="gcp_log_entry")["metadata"]["gateway"] == "gcp_api_gateway"


def test_query_masks_reach_the_request_url():
    entry = copy.deepcopy(CLOUD_RUN)
    entry["httpRequest"]["requestUrl"] = "https://store-service-abc123-ew.a.run.app/orders?access_token=s3cr3t&page=2"
    masked = mask_event(only_event(entry), MaskSettings())
    assert masked["request"]["uri"] == "https://store-service-abc123-ew.a.run.app/orders?access_token=*****&page=2"


@pytest.mark.parametrize(("change", "reason"), [
    (lambda e: e.update(jsonPayload="text"), "invalid_type:jsonPayload"),
    (lambda e: e.update(textPayload=7, jsonPayload=None), "invalid_type:textPayload"),
    (lambda e: e["httpRequest"].pop("requestMethod"), "missing_field:httpRequest.requestMethod"),
    (lambda e: e["httpRequest"].update(requestUrl="ftp://x/y"), "invalid_type:httpRequest.requestUrl"),
    (lambda e: e.pop("timestamp"), "missing_field:timestamp"),
    (lambda e: e.update(timestamp="2025-13-01T00:00:00Z"), "invalid_timestamp"),
    (lambda e: e["httpRequest"].update(status="200"), "invalid_type:httpRequest.status"),
])
def test_broken_entries_name_the_field(change, reason):
    entry = copy.deepcopy(GLOBAL_LB)
    change(entry)
    assert only_dead_letter(entry)["reason"] == reason
