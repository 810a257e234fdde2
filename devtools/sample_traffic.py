"""Realistic synthetic gateway traffic: Kong log records of every serializer generation (0.5 → 3.x), http-log
batches, Moesif events, AWS API Gateway access logs (plain and in CloudWatch Logs envelopes), WSO2
``apim_metrics.log`` lines, ALF documents of every version, Google Cloud Logging entries as a Pub/Sub log sink
publishes them, and deliberately malformed records.
Deterministic for a given seed.

``python -m devtools.sample_traffic samples/`` rewrites the bundled samples; tests and benchmarks import it.
Field shapes follow ``reference/formats.md`` (§A Kong, §B AWS, §C WSO2, §D ALF).
"""
from __future__ import annotations

import argparse
import base64
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

BASE_MS = 1_795_600_000_000  # 2026-11-25T09:46:40Z
HOST = "api.acme.io"

ROUTES = (  # (verb, route name, path template, upstream service)
    ("GET", "orders-list", "/v1/orders", "orders"),
    ("GET", "orders-get", "/v1/orders/{id}", "orders"),
    ("POST", "orders-create", "/v1/orders", "orders"),
    ("GET", "users-me", "/v1/users/me", "accounts"),
    ("DELETE", "carts-delete", "/v1/carts/{id}", "carts"),
    ("GET", "catalog-search", "/v1/catalog/search", "catalog"),
)
USERS = tuple((f"cust-{n:04d}", f"user{n}", f"7d1c0a3e-0000-4000-8000-{n:012d}") for n in range(1, 13))
ORGS = ("acme-corp", "globex", "initech", "umbrella")
STATUSES = (200,) * 14 + (201, 204, 304, 400, 401, 403, 404, 429, 500, 502)
GENERATIONS = ("0.5", "0.8", "0.11", "0.12", "0.13", "1.5", "2.0", "2.3", "2.8", "3.4", "3.6", "3.9")


def _jwt(subject: str, index: int) -> str:
    """An unsigned-looking JWT (base64url, no padding) whose `sub` is ``subject``."""

    def segment(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    return f"{segment({'alg': 'HS256', 'typ': 'JWT'})}.{segment({'sub': subject, 'n': index})}.c2lnbmF0dXJl"


def _path(template: str, rng: random.Random) -> str:
    return template.replace("{id}", str(rng.randint(1000, 99999)))


def kong_record(generation: str, index: int, rng: random.Random) -> dict[str, Any]:
    """One Kong log record as Kong ``generation`` serializes it."""
    major, minor = (int(part) for part in generation.split(".")[:2])
    version = (major, minor)
    verb, route_name, template, service = ROUTES[index % len(ROUTES)]
    custom_id, username, consumer_id = USERS[rng.randrange(len(USERS))]
    status = STATUSES[rng.randrange(len(STATUSES))]
    path = _path(template, rng)
    query = {}
    if verb == "GET" and rng.random() < 0.5:
        query = {"page": str(rng.randint(1, 9))}
        if rng.random() < 0.3:
            query["apikey"] = f"sk_live_{rng.getrandbits(64):016x}"
    query_text = "&".join(f"{k}={v}" for k, v in query.items())
    request_uri = path + (f"?{query_text}" if query_text else "")
    not_proxied = status in (401, 403, 429)
    proxy = -1 if not_proxied else rng.randint(3, 400)
    kong_latency = rng.randint(0, 6)
    total = kong_latency + max(proxy, 0) + rng.randint(0, 3)

    request_headers: dict[str, Any] = {
        "host": HOST,
        "user-agent": rng.choice(("curl/8.5.0", "okhttp/4.12.0", "python-requests/2.32.3", "Go-http-client/2.0")),
        "accept": "application/json",
        "x-org-id": ORGS[USERS.index((custom_id, username, consumer_id)) % len(ORGS)],
    }
    if not not_proxied:
        request_headers.update({"x-consumer-id": consumer_id, "x-consumer-username": username,
                                "x-consumer-custom-id": custom_id})
    request_headers["authorization"] = "REDACTED" if version >= (2, 1) else f"Bearer {_jwt(custom_id, index)}"
    if rng.random() < 0.2:
        request_headers["accept-encoding"] = ["gzip", "br"]  # repeated header: Kong logs an array
    response_headers = {"content-type": "application/json", "content-length": str(rng.randint(2, 4000)),
                        "x-kong-proxy-latency": str(kong_latency)}
    if rng.random() < 0.15:
        response_headers["set-cookie"] = [f"session={rng.getrandbits(48):x}; HttpOnly", "lang=en"]

    started_at = BASE_MS + index * 137 + rng.randint(0, 99)
    request_size, response_size = rng.randint(80, 900), rng.randint(120, 5000)
    sizes_are_strings = version < (2, 2)
    record: dict[str, Any] = {
        "request": {
            "method": verb,
            "uri": request_uri,
            "querystring": query,
            "headers": request_headers,
            "size": str(request_size) if sizes_are_strings else request_size,
        },
        "response": {
            "status": status,
            "headers": response_headers,
            "size": str(response_size) if sizes_are_strings else response_size,
        },
        "latencies": {"kong": kong_latency, "proxy": proxy, "request": total},
        "started_at": started_at,
        "client_ip": f"203.0.113.{rng.randint(1, 254)}",
    }
    if version < (0, 12):
        record["request"]["request_uri"] = f"https://{HOST}:443{request_uri}"
    else:
        record["request"]["url"] = f"https://{HOST}:443{request_uri}"
        record["upstream_uri"] = request_uri
    if version < (1, 0):
        record["api"] = {"name": service, "upstream_url": f"http://{service}.internal:8080", "created_at": BASE_MS}
    if version >= (0, 13):
        record["route"] = {"name": route_name, "paths": [template.split("{")[0]], "created_at": BASE_MS // 1000}
        record["service"] = {"name": service, "host": f"{service}.internal", "port": 8080}
    if not not_proxied:
        if version < (0, 8):
            record["authenticated_entity"] = {"id": f"cred-{index}", "consumer_id": consumer_id,
                                              "key": f"secret-key-{rng.getrandbits(40):x}"}
        else:
            record["authenticated_entity"] = {"id": f"cred-{index}", "consumer_id": consumer_id}
        if version >= (0, 11):
            record["consumer"] = {"id": consumer_id, "username": username, "custom_id": custom_id,
                                  "created_at": BASE_MS if version < (1, 0) else BASE_MS // 1000}
            record["tries"] = [{"ip": "10.0.3.7", "port": 8080, "balancer_latency": 0}]
    if version >= (1, 0):
        record["request"]["tls"] = {"version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "client_verify": "NONE"}
    if version >= (3, 3):
        record["upstream_status"] = "" if not_proxied else str(status)
    if version >= (3, 5):
        record["request"]["id"] = f"{rng.getrandbits(128):032x}"
    if version >= (3, 6):
        record["source"] = "kong" if not_proxied else "upstream"
    if version >= (3, 7):
        record["latencies"]["receive"] = rng.randint(0, 2)
        record["workspace"] = "0dc6f45b-8f8d-40d2-a504-473544ee190b"
        record["workspace_name"] = "default"
    return record


def moesif_event(index: int, rng: random.Random) -> dict[str, Any]:
    """A Moesif event as an SDK sends it: zone-less times, `transfer_encoding: json`, some nulls."""
    verb, _, template, _ = ROUTES[index % len(ROUTES)]
    custom_id = USERS[rng.randrange(len(USERS))][0]
    started = BASE_MS + 50_000 + index * 211
    seconds, millis = divmod(started, 1000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    latency = rng.randint(5, 300)
    end_seconds, end_millis = divmod(started + latency, 1000)
    end_stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(end_seconds))
    return {
        "request": {
            "time": f"{stamp}.{millis:03d}",
            "uri": f"https://{HOST}{_path(template, rng)}",
            "verb": verb,
            "headers": {"Host": HOST, "Content-Type": "application/json"},
            "ip_address": f"198.51.100.{rng.randint(1, 254)}",
            "api_version": "1.0",
            "body": {"note": f"sample {index}"} if verb == "POST" else None,
            "transfer_encoding": "json",
        },
        "response": {
            "time": f"{end_stamp}.{end_millis:03d}",
            "status": STATUSES[rng.randrange(len(STATUSES))],
            "headers": {"Content-Type": "application/json"},
            "body": {"ok": True},
            "transfer_encoding": "json",
        },
        "user_id": custom_id,
        "company_id": ORGS[index % len(ORGS)],
        "session_token": None,
        "metadata": {"sdk": "moesifapi-python", "route_name": template},
        "direction": "Incoming",
        "weight": 1,
    }


def _clf(epoch_ms: int) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_ms // 1000))


def _iso(epoch_ms: int, short: bool = False) -> str:
    """Java's ``OffsetDateTime.toString()``: WSO2 drops zero seconds and fractions (``…T12:16Z``)."""
    seconds, millis = divmod(epoch_ms, 1000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return stamp[:-3] + "Z" if short else f"{stamp}.{millis:03d}Z"


def aws_access_log(index: int, rng: random.Random, http_api: bool = False) -> dict[str, Any]:
    """An API Gateway access-log record: the Moesif-style REST template (all values quoted, ``-`` for unset),
    or an HTTP API format with unquoted numbers and ``requestTimeEpoch`` in seconds."""
    verb, _, template, _ = ROUTES[index % len(ROUTES)]
    status = STATUSES[rng.randrange(len(STATUSES))]
    started = BASE_MS + 100_000 + index * 173 + rng.randint(0, 99)
    latency = rng.randint(4, 500)
    request_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if http_api:
        return {"requestId": base64.b64encode(rng.randbytes(10)).decode(), "ip": f"192.0.2.{rng.randint(1, 254)}",
                "requestTime": _clf(started), "requestTimeEpoch": started // 1000, "httpMethod": verb,
                "routeKey": f"{verb} {template}", "path": _path(template, rng), "status": status,
                "protocol": "HTTP/1.1", "responseLength": rng.randint(2, 4000), "responseLatency": latency,
                "integrationLatency": "-" if status in (401, 403, 429) else str(max(latency - 3, 0))}
    user = USERS[rng.randrange(len(USERS))]
    return {
        "apiId": "a1b2c3d4e5", "requestId": request_id, "requestTime": _clf(started),
        "requestTimeEpoch": str(started), "protocol": "HTTP/1.1", "httpMethod": verb, "resourcePath": template,
        "path": "/prod" + _path(template, rng), "requestHostHeader": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
        "requestUserAgentHeader": rng.choice(("curl/8.5.0", "okhttp/4.12.0", "aws-sdk-go/1.50.0")),
        "status": str(status), "responseLength": str(rng.randint(2, 4000)), "durationMs": str(latency),
        "integrationLatency": "-" if status in (401, 403, 429) else str(max(latency - 3, 0)),
        "ip": f"198.51.100.{rng.randint(1, 254)}", "user": "-", "apiKeyId": user[0] if rng.random() < 0.7 else "-",
        "principalId": user[1], "cognitoIdentityId": "-", "caller": "-", "userArn": "-",
        "companyId": ORGS[USERS.index(user) % len(ORGS)], "stage": "prod",
    }


def cloudwatch_envelope(lines: list[dict[str, Any]], first_id: int = 0) -> dict[str, Any]:
    """A CloudWatch Logs subscription DATA_MESSAGE carrying access-log lines (JSON inside strings)."""
    return {
        "messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "API-Gateway-Access-Logs/prod",
        "logStream": "a1b2c3d4e5", "subscriptionFilters": ["gatewaystream"],
        "logEvents": [{"id": f"{first_id + n:056d}", "timestamp": BASE_MS + 200_000 + first_id + n,
                       "message": orjson.dumps(line).decode()} for n, line in enumerate(lines)],
    }


GCP_PROJECT = "acme-prod"
GCP_KINDS = ("load_balancer", "regional_load_balancer", "cdn", "cloud_run", "api_gateway", "endpoints",
             "gke_kong_json", "gke_kong_text")


def _rfc3339(epoch_ms: int, digits: int = 6) -> str:
    """A LogEntry timestamp as Cloud Logging writes it (6 or 9 fraction digits, ``Z``)."""
    seconds, millis = divmod(epoch_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}".ljust(digits + 1, "0") + "Z"


def _duration(milliseconds: float) -> str:
    return f"{milliseconds / 1000:.6f}s"


def gcp_log_entry(kind: str, index: int, rng: random.Random) -> dict[str, Any]:
    """A Cloud Logging ``LogEntry`` as a Pub/Sub log sink publishes it, of one of ``GCP_KINDS``; shapes follow
    the real entries in ``tests/test_decode_gcp.py`` (load balancer, CDN, Cloud Run, ESPv2, ESP, GKE)."""
    verb, _, template, service = ROUTES[index % len(ROUTES)]
    status = STATUSES[rng.randrange(len(STATUSES))]
    started = BASE_MS + 300_000 + index * 157 + rng.randint(0, 99)
    latency = rng.randint(3, 400) + rng.randint(0, 999) / 1000
    insert_id = f"{rng.getrandbits(56):014x}"
    path = _path(template, rng)
    client = f"203.0.113.{rng.randint(1, 254)}"
    entry: dict[str, Any] = {"insertId": insert_id, "severity": "ERROR" if status >= 500 else "INFO",
                             "receiveTimestamp": _rfc3339(started + 900, 9)}
    http_request = {"requestMethod": verb, "requestUrl": f"https://{HOST}{path}", "status": status,
                    "requestSize": str(rng.randint(80, 2000)), "responseSize": str(rng.randint(2, 4000)),
                    "userAgent": rng.choice(("curl/8.7.1", "okhttp/4.12.0", "Go-http-client/2.0")),
                    "remoteIp": client, "latency": _duration(latency)}
    if kind in ("load_balancer", "regional_load_balancer", "cdn"):
        entry["jsonPayload"] = {"@type": "type.googleapis.com/google.cloud.loadbalancing.type.LoadBalancerLogEntry",
                                "backendTargetProjectNumber": "projects/8560181848",
                                "statusDetails": "response_sent_by_backend"}
        entry["timestamp"] = _rfc3339(started)
        if kind == "regional_load_balancer":
            http_request["remoteIp"] = f"{client}:{rng.randint(1024, 65535)}"
            entry["logName"] = f"projects/{GCP_PROJECT}/logs/loadbalancing.googleapis.com%2Fexternal_regional_requests"
            entry["resource"] = {"type": "http_external_regional_lb_rule",
                                 "labels": {"project_id": GCP_PROJECT, "region": "europe-west1",
                                            "backend_target_name": f"{service}-backend",
                                            "forwarding_rule_name": "edge-fr", "url_map_name": "edge-map",
                                            "matched_url_path_rule": template.replace("{id}", "*")}}
        else:
            entry["logName"] = f"projects/{GCP_PROJECT}/logs/requests"
            entry["resource"] = {"type": "http_load_balancer",
                                 "labels": {"project_id": GCP_PROJECT, "zone": "global", "url_map_name": "edge-map",
                                            "forwarding_rule_name": "edge-fr", "target_proxy_name": "edge-proxy",
                                            "backend_service_name": f"{service}-backend"}}
        if kind == "cdn":
            http_request.update(cacheLookup=True, cacheHit=True, status=200)
            http_request.pop("latency")
            entry["jsonPayload"].update(statusDetails="response_from_cache", cacheId="FRA-2c9e8f1a")
    elif kind == "cloud_run":
        entry["logName"] = f"projects/{GCP_PROJECT}/logs/run.googleapis.com%2Frequests"
        entry["resource"] = {"type": "cloud_run_revision",
                             "labels": {"project_id": GCP_PROJECT, "location": "europe-west1",
                                        "service_name": service, "revision_name": f"{service}-00007-xk2",
                                        "configuration_name": service}}
        entry["timestamp"] = _rfc3339(started)
        http_request["requestUrl"] = f"https://{service}-abc123-ew.a.run.app{path}"
        http_request["protocol"] = "HTTP/1.1"
    elif kind in ("api_gateway", "endpoints"):
        api_key = "AIzaSy" + base64.urlsafe_b64encode(rng.randbytes(24)).decode()[:33]
        method = f"1.acme_api.{service.capitalize()}{verb.capitalize()}"
        entry["timestamp"] = _rfc3339(started + round(latency))  # ESP stamps the end of the request
        if kind == "api_gateway":
            entry["logName"] = f"projects/{GCP_PROJECT}/logs/apigateway.googleapis.com%2Frequests"
            entry["resource"] = {"type": "apigateway.googleapis.com/Gateway",
                                 "labels": {"gateway_id": "acme-gw", "location": "europe-west1",
                                            "resource_container": "projects/123456789012"}}
            http_request.update(requestUrl=f"{path}?key={api_key}", protocol="http")
            del http_request["userAgent"]
            entry["httpRequest"] = http_request
            entry["jsonPayload"] = {"timestamp": (started + round(latency)) / 1000, "service_agent": "ESPv2/2.51.0",
                                    "service_config_id": "acme-config-3", "api_key_state": "VERIFIED",
                                    "http_status_code": status, "api_key": api_key, "api_name": "1.acme_api",
                                    "api_method": method, "api_version": "1.0.0", "location": "europe-west1",
                                    "producer_project_id": GCP_PROJECT}
            return entry
        entry["logName"] = f"projects/{GCP_PROJECT}/logs/endpoints_log"
        entry["resource"] = {"type": "api", "labels": {"service": "acme.endpoints.acme-prod.cloud.goog",
                                                       "method": method, "version": "1.0.0",
                                                       "location": "europe-west1", "project_id": GCP_PROJECT}}
        entry["jsonPayload"] = {"http_method": verb, "url": f"{path}?key={api_key}", "http_response_code": status,
                                "request_latency_in_ms": round(latency), "api_key": api_key,
                                "api_name": "1.acme_api", "api_method": method, "api_version": "1.0.0",
                                "location": "europe-west1", "producer_project_id": GCP_PROJECT,
                                "request_size_in_bytes": rng.randint(80, 2000),
                                "response_size_in_bytes": rng.randint(2, 4000),
                                "timestamp": (started + round(latency)) / 1000,
                                "log_message": f"Method: {method} is called"}
        return entry
    else:  # Kong's file-log plugin writing to /dev/stdout in a GKE pod: one log serializer record per line
        record = kong_record("3.9", index, rng)
        entry["logName"] = f"projects/{GCP_PROJECT}/logs/stdout"
        entry["resource"] = {"type": "k8s_container",
                             "labels": {"project_id": GCP_PROJECT, "location": "europe-west1-b",
                                        "cluster_name": "edge", "namespace_name": "kong",
                                        "pod_name": "kong-gateway-7d9f8-abcde", "container_name": "proxy"}}
        entry["timestamp"] = _rfc3339(record["started_at"] + 40)
        if kind == "gke_kong_json":
            entry["jsonPayload"] = record
        else:  # the agent did not parse the line (e.g. a text-only log router in between)
            entry["textPayload"] = orjson.dumps(record).decode() + "\n"
        return entry
    entry["httpRequest"] = http_request
    return entry


def gcp_broken_entries() -> list[bytes]:
    """Each must become one dead letter: an audit log (unknown_format) and a load balancer entry for a client
    that left before any response (status 0, which proto3 leaves out: missing_field:httpRequest.status)."""
    audit = {"protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                              "serviceName": "compute.googleapis.com", "methodName": "v1.compute.instances.insert",
                              "authenticationInfo": {"principalEmail": "ops@acme.io"}},
             "insertId": "-q1w2e3r4t5", "resource": {"type": "gce_instance", "labels": {"project_id": GCP_PROJECT}},
             "timestamp": _rfc3339(BASE_MS + 310_000), "severity": "NOTICE",
             "logName": f"projects/{GCP_PROJECT}/logs/cloudaudit.googleapis.com%2Factivity"}
    aborted = gcp_log_entry("load_balancer", 0, random.Random(11))
    del aborted["httpRequest"]["status"]
    aborted["jsonPayload"]["statusDetails"] = "client_disconnected_before_any_response"
    return [orjson.dumps(audit), orjson.dumps(aborted)]


def wso2_event(index: int, rng: random.Random) -> dict[str, Any]:
    """A WSO2 APIM ``apim_event_response`` or (one in five) ``apim_event_faulty`` as the ELK reporter logs it."""
    verb, _, template, service = ROUTES[index % len(ROUTES)]
    started = BASE_MS + 300_000 + index * 191
    fault = index % 5 == 4
    user = USERS[rng.randrange(len(USERS))]
    common = {
        "correlationId": f"{rng.getrandbits(64):016x}-wso2-{index:06d}", "keyType": "PRODUCTION",
        "apiId": f"api-{service}", "apiName": service.title(), "apiVersion": "1.0.0", "apiCreator": "admin",
        "apiType": "HTTP", "apiCreatorTenantDomain": "carbon.super", "applicationName": "DefaultApplication",
        "applicationOwner": user[1], "regionId": "default", "gatewayType": "SYNAPSE",
    }
    if fault:
        return common | {
            "errorType": "THROTTLED", "errorCode": 900803, "errorMessage": "APPLICATION_LEVEL_LIMIT_EXCEEDED",
            "proxyResponseCode": 429, "targetResponseCode": -1, "requestTimestamp": _iso(started, short=True),
            "eventType": "fault",
            "properties": {"apiMethod": verb, "apiContext": f"/{service}/1.0.0", "userName": f"{user[1]}@carbon.super"},
        }
    latency = rng.randint(5, 300)
    return common | {
        "apiMethod": verb, "apiContext": f"/{service}/1.0.0", "apiResourceTemplate": template,
        "destination": f"http://{service}.internal:8080", "proxyResponseCode": STATUSES[rng.randrange(len(STATUSES))],
        "targetResponseCode": 200, "responseCacheHit": False, "requestTimestamp": _iso(started),
        "responseLatency": latency, "backendLatency": max(latency - 9, 0), "requestMediationLatency": 5,
        "responseMediationLatency": 4, "userIp": f"192.168.{rng.randint(0, 9)}.{rng.randint(1, 254)}",
        "userName": f"{user[1]}@carbon.super", "userAgent": "Chrome", "platform": "Linux", "eventType": "response",
        "properties": {"apiContext": f"/{service}/1.0.0", "responseContentType": "application/json",
                       "subType": "DEFAULT", "responseSize": rng.randint(2, 4000)},
    }


def wso2_metrics_log_line(event: dict[str, Any], index: int) -> bytes:
    """The ``apim_metrics.log`` line the ELK reporter writes for ``event``."""
    kind = "faulty" if event.get("eventType") == "fault" else "response"
    body = {key: value for key, value in event.items() if key != "eventType"}
    stamp = time.strftime("%H:%M:%S", time.gmtime(BASE_MS // 1000 + index))
    return (f"{stamp},{index % 1000:03d} [10.0.0.5-gw01] [PassThroughMessageProcessor-{index % 16}] INFO "
            f"ELKCounterMetric apimMetrics: apim:{kind}, properties :").encode() + orjson.dumps(body)


def alf_document(index: int, rng: random.Random, version: str = "1.1.0", entries: int = 2) -> dict[str, Any]:
    """An ALF document of ``version`` with ``entries`` HAR entries, as Kong's and Galileo's agents wrote them."""
    har_entries = []
    for n in range(entries):
        verb, _, template, _ = ROUTES[(index + n) % len(ROUTES)]
        started = BASE_MS + 400_000 + (index * entries + n) * 157
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started // 1000))
        stamp = seconds if version == "0.0.1" else f"{seconds}Z"  # 0.0.1 has no zone; Kong's agent, seconds
        send, wait, receive = rng.randint(0, 2), rng.randint(3, 300), rng.randint(0, 5)
        page = rng.randint(1, 9)
        url = f"https://{HOST}{_path(template, rng)}" + ("" if version == "2.0.0" else f"?page={page}")
        entry: dict[str, Any] = {
            "serverIPAddress": "10.0.3.7", "startedDateTime": stamp, "time": send + wait + receive,
            "request": {"method": verb, "url": url, "httpVersion": "HTTP/1.1",
                        "queryString": [{"name": "page", "value": str(page)}],
                        "headers": [{"name": "host", "value": HOST}, {"name": "accept", "value": "application/json"},
                                    {"name": "authorization", "value": f"Bearer {_jwt(USERS[index % 12][0], n)}"}],
                        "headersSize": 120, "bodySize": 0},
            "response": {"status": STATUSES[rng.randrange(len(STATUSES))], "statusText": "", "httpVersion": "HTTP/1.1",
                         "headers": [{"name": "content-type", "value": "application/json"}], "headersSize": 0,
                         "bodySize": 11, "content": {"mimeType": "application/json", "encoding": "base64",
                                                     "text": base64.b64encode(b'{"ok":true}').decode()}},
            "timings": {"send": send, "wait": wait, "receive": receive},
        }
        if version != "1.0.0":
            entry["clientIPAddress"] = f"192.0.2.{rng.randint(1, 254)}"
        har_entries.append(entry)
    if version == "2.0.0":
        return {"version": version, "creator": {"name": "galileo-agent", "version": "2.0.0"},
                "service": {"token": f"svc-{rng.getrandbits(32):08x}", "environment": "production"},
                "entries": har_entries}
    document: dict[str, Any] = {"version": version, "serviceToken": f"svc-{rng.getrandbits(32):08x}",
                                "har": {"log": {"creator": {"name": "kong-alf", "version": "1.1.0"},
                                                "entries": har_entries}}}
    if version == "0.0.1":
        del document["version"]
        document["har"]["log"]["version"] = "1.2"
    if version == "1.0.0":
        document["clientIPAddress"] = f"198.51.100.{rng.randint(1, 254)}"
    return document


def malformed_records() -> list[bytes]:
    """One of each common fault; each must become exactly one dead letter with the reason in its comment."""
    good = kong_record("3.9", 0, random.Random(7))
    bad_status = orjson.loads(orjson.dumps(good))
    bad_status["response"]["status"] = 999  # invalid_type:response.status
    no_time = orjson.loads(orjson.dumps(good))
    del no_time["started_at"]  # missing_field:started_at
    seconds_time = orjson.loads(orjson.dumps(good))
    seconds_time["started_at"] = BASE_MS // 1000  # invalid_timestamp (seconds, not ms)
    aws_line = {"requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "httpMethod": "GET", "status": "200"}
    return [
        orjson.dumps(good)[:120],  # invalid_json (truncated line)
        orjson.dumps(bad_status),
        orjson.dumps(no_time),
        orjson.dumps(seconds_time),
        orjson.dumps(aws_line),  # missing_field:path (an access-log format without $context.path)
    ]


def sample_files(seed: int = 20261125) -> dict[str, list[bytes]]:
    """File name → lines (one record per line) of the bundled sample traffic."""
    rng = random.Random(seed)
    index = 0
    files: dict[str, list[bytes]] = {}
    for name, generations, count in (
        ("kong-0.x.jsonl", GENERATIONS[:5], 60),
        ("kong-1.x-2.x.jsonl", GENERATIONS[5:9], 80),
        ("kong-3.x.jsonl", GENERATIONS[9:], 100),
    ):
        lines = []
        for n in range(count):
            lines.append(orjson.dumps(kong_record(generations[n % len(generations)], index, rng)))
            index += 1
        files[name] = lines
    batches = []
    for _ in range(20):  # http-log with queue batch size > 1 posts JSON arrays
        size = rng.randint(2, 5)
        batch = []
        for _ in range(size):
            batch.append(kong_record(rng.choice(GENERATIONS[6:]), index, rng))
            index += 1
        batches.append(orjson.dumps(batch))
    files["kong-http-log-batches.jsonl"] = batches
    files["moesif-events.jsonl"] = [orjson.dumps(moesif_event(n, rng)) for n in range(20)]
    aws = [aws_access_log(n, rng, http_api=n % 4 == 3) for n in range(24)]
    files["aws-apigateway.jsonl"] = [orjson.dumps(line) for line in aws[:12]]
    files["aws-cloudwatch-envelopes.jsonl"] = [orjson.dumps(cloudwatch_envelope(aws[n:n + 4], n))
                                               for n in range(12, 24, 4)]
    files["wso2-apim-metrics.jsonl"] = [wso2_metrics_log_line(wso2_event(n, rng), n) for n in range(15)]
    files["alf.jsonl"] = [orjson.dumps(alf_document(n, rng, version)) for n, version in
                          enumerate(("0.0.1", "1.0.0", "1.1.0", "2.0.0") * 2)]
    files["gcp-cloud-logging.jsonl"] = [orjson.dumps(gcp_log_entry(GCP_KINDS[n % len(GCP_KINDS)], n, rng))
                                        for n in range(24)] + gcp_broken_entries()
    files["malformed.jsonl"] = malformed_records()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.sample_traffic", description=__doc__)
    parser.add_argument("directory", help="where to write the sample files")
    args = parser.parse_args(argv)
    directory = Path(args.directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, lines in sample_files().items():
        (directory / name).write_bytes(b"\n".join(lines) + b"\n")
        print(f"{directory / name}: {len(lines)} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
