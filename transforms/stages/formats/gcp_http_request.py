"""Google Cloud ``LogEntry`` records with an ``httpRequest``: external Application Load Balancers (global,
classic and regional), Cloud CDN, Cloud Run request logs, and any application that logs its requests in
Cloud Logging's ``httpRequest`` form. Reached through the envelope (``transforms/stages/formats/gcp_logging.py``).

Fields (``google.logging.type.HttpRequest``, proto3 JSON): ``requestMethod``, ``requestUrl`` (absolute:
scheme, host, path and query), ``status``, ``remoteIp``, ``userAgent``, ``referer``, ``requestSize`` and
``responseSize`` (int64, so strings), ``latency`` (a ``Duration``: ``"0.005192s"``), ``protocol``,
``serverIp`` and the cache facts (``cacheLookup``, ``cacheHit``, ``cacheValidatedWithOriginServer``,
``cacheFillBytes``). Proto3 leaves out a field at its default value, so a status of 0 — a load balancer's
entry for a client that went away before any response — arrives as no ``status`` at all: that entry is a
``missing_field:httpRequest.status`` dead letter, never an event with status 0 or 200.

**What ``LogEntry.timestamp`` means, per log type.** Google's reference says only "the time the event
described by the log entry occurred"; ``HttpRequest.latency`` is "from the time the request was received
until the response was sent". Where the timestamp sits in that interval differs by writer:

- *Request start* for the request logs Google's front ends write: load balancers (``logs/requests`` on
  ``http_load_balancer``, which Cloud CDN shares; ``logs/loadbalancing.googleapis.com%2Fexternal_regional_requests``
  on ``http_external_regional_lb_rule``) and Cloud Run (``logs/run.googleapis.com%2Frequests`` on
  ``cloud_run_revision``). Evidence: in App Engine's request logs, written by the same serverless front end,
  ``timestamp`` equals ``protoPayload.startTime`` (reported from real entries in googleapis/google-cloud-go
  #1598 and mtraver/gaelog#1); the Logs Explorer nests the log lines a request produced *after* the request
  entry of the same trace, which only works when that entry is stamped with the start. For load balancers
  and Cloud Run no Google page states it; the published real entries (Elastic's fixtures in
  open-telemetry/opentelemetry-collector-contrib ``testdata/apploadbalancer``) fit it without proving it.
  The same rule is used for any other writer of ``httpRequest`` entries.
- *Request end* for ESP, ESPv2 and API Gateway: their entries are decoded by ``gcp_endpoints``, whose
  docstring gives the evidence (the entry is stamped when the report is built, after the response).

So ``request.time`` is ``timestamp``, and ``response.time`` is ``timestamp + latency``. Without a latency,
the response time is the request time and ``metadata.latency_unknown`` is true.

The load balancer's own facts (``statusDetails``, ``backendTargetProjectNumber``, ``cacheId``,
``cacheDecision``, ``proxyStatus``, ``errorService``, ``errorDomain``, TLS protocol and cipher, the enforced
Cloud Armor policy's name and outcome), the cache facts, the log name and the monitored resource's labels
go to ``metadata``. The client IP is ``remoteIp`` without the ``:port`` that regional load balancers append.
There are no request headers in these entries except the user agent and the referer.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any

from transforms.model.event import round_half_up
from transforms.stages.formats.common import absolute_url, epoch_ms_time, require_object, require_status, require_string
from transforms.stages.formats.gcp_logging import (
    HTTP_REQUEST_FORMAT,
    client_ip,
    duration_ms,
    entry_metadata,
    entry_time_ms,
    resource_type,
)

FORMAT = HTTP_REQUEST_FORMAT

_GATEWAYS = MappingProxyType({  # monitored resource type → metadata.gateway
    "http_load_balancer": "gcp_load_balancer",
    "http_external_regional_lb_rule": "gcp_load_balancer",
    "internal_http_lb_rule": "gcp_load_balancer",
    "cloud_run_revision": "gcp_cloud_run",
})
_LOAD_BALANCER_FIELDS = (  # LoadBalancerLogEntry payload field → metadata name
    ("statusDetails", "status_details"),
    ("backendTargetProjectNumber", "backend_target_project_number"),
    ("cacheId", "cache_id"),
    ("cacheDecision", "cache_decision"),
    ("proxyStatus", "proxy_status"),
    ("errorService", "error_service"),
    ("errorDomain", "error_domain"),
    ("overrideResponseCode", "override_response_code"),
)
_CACHE_FIELDS = (
    ("cacheLookup", "cache_lookup"),
    ("cacheHit", "cache_hit"),
    ("cacheValidatedWithOriginServer", "cache_validated_with_origin_server"),
)


def looks_like(record: dict[str, Any]) -> bool:
    return isinstance(record.get("httpRequest"), dict) and "logName" in record


def decode(entry: dict[str, Any]) -> dict[str, Any]:
    """One ``httpRequest`` LogEntry → one API event; raises DecodeError naming the first broken field."""
    http_request = require_object(entry, "httpRequest", "httpRequest")
    verb = require_string(http_request, "requestMethod", "httpRequest.requestMethod")
    uri = request_uri(require_string(http_request, "requestUrl", "httpRequest.requestUrl"), "httpRequest.requestUrl")
    status = require_status(http_request.get("status"), "httpRequest.status")
    request_ms = entry_time_ms(entry)
    latency = duration_ms(http_request.get("latency"), "httpRequest.latency")
    request = {"time": epoch_ms_time(request_ms, "timestamp"), "uri": uri, "verb": verb,
               "headers": user_agent_and_referer(http_request)}
    ip_address = client_ip(http_request.get("remoteIp"))
    if ip_address:
        request["ip_address"] = ip_address
    metadata = entry_metadata(entry, _GATEWAYS.get(resource_type(entry) or "", "gcp_http_request"))
    if latency is None:
        metadata["latency_unknown"] = True
        response_time = request["time"]
    else:
        metadata["latency_ms"] = latency
        response_time = epoch_ms_time(request_ms + round_half_up(latency), "httpRequest.latency")
    _add_load_balancer_facts(entry, http_request, metadata)
    return {
        "request": request,
        "response": {"time": response_time, "status": status, "headers": {}},
        "direction": "Incoming",
        "weight": 1,
        "metadata": metadata,
    }


def request_uri(url: str, path: str) -> str:
    """An absolute http(s) URL with its default port dropped, or a path (``/v1/x?y``) when the writer logged
    only the path, as ESP does."""
    if url[0] == "/":
        return url
    return absolute_url(url, path)


def user_agent_and_referer(http_request: dict[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, name in (("userAgent", "user-agent"), ("referer", "referer")):
        value = http_request.get(key)
        if type(value) is str and value:
            headers[name] = value
    return headers


def _add_load_balancer_facts(entry: dict[str, Any], http_request: dict[str, Any], metadata: dict[str, Any]) -> None:
    for key, name in _CACHE_FIELDS:
        if http_request.get(key) is True:
            metadata[name] = True
    fill = http_request.get("cacheFillBytes")
    if type(fill) is str and fill.isascii() and fill.isdigit():
        metadata["cache_fill_bytes"] = int(fill)
    server_ip = http_request.get("serverIp")
    if type(server_ip) is str and server_ip:
        metadata["server_ip"] = server_ip
    payload = entry.get("jsonPayload")
    if not isinstance(payload, dict):
        return
    for key, name in _LOAD_BALANCER_FIELDS:
        value = payload.get(key)
        if value is not None and value != "":
            metadata[name] = value
    tls = payload.get("tls")
    if isinstance(tls, dict):
        for key in ("protocol", "cipher"):
            if type(tls.get(key)) is str:
                metadata[f"tls_{key}"] = tls[key]
    for key in ("enforcedSecurityPolicy", "enforcedEdgeSecurityPolicy"):
        policy = payload.get(key)
        if isinstance(policy, dict):
            kept = {field: policy[field] for field in ("name", "outcome", "configuredAction")
                    if type(policy.get(field)) is str}
            if kept:
                metadata["security_policy" if key == "enforcedSecurityPolicy" else "edge_security_policy"] = kept

