"""Kong Gateway log serializer records, 0.5 → 3.x (file-log, http-log, tcp-log …), to API events.

Field by field as in ``reference/formats.md`` §A: ``request.request_uri`` (0.5–0.11) gave way to
``request.url`` (≥0.12); sizes are strings up to 2.1 and numbers after; ``latencies.proxy`` is -1
when Kong did not proxy; ``request.id`` (≥3.5) is the gateway's own request id.
"""
from __future__ import annotations

from typing import Any

from transforms.event import round_half_up
from transforms.formats.common import (
    DecodeError,
    absolute_url,
    epoch_ms_time,
    first_present,
    headers_map,
    is_number,
    latency_ms,
    optional_string,
    require_object,
    require_status,
    require_string,
)

FORMAT = "kong"


def looks_like(record: dict[str, Any]) -> bool:
    # Root keys only Kong writes, so that a record missing request.method is still told apart (and
    # dead-lettered with the missing field's name rather than as an unknown format).
    return isinstance(record.get("request"), dict) and ("started_at" in record or "latencies" in record)


def decode(record: dict[str, Any]) -> dict[str, Any]:
    """One Kong log record → one API event; raises DecodeError naming the first broken field."""
    request = require_object(record, "request", "request")
    response = require_object(record, "response", "response")
    verb = require_string(request, "method", "request.method")
    if "url" in request:
        uri = absolute_url(require_string(request, "url", "request.url"), "request.url")
    else:
        uri = absolute_url(require_string(request, "request_uri", "request.request_uri"), "request.request_uri")
    status = require_status(response.get("status"), "response.status")
    started_at = record.get("started_at")
    request_time = epoch_ms_time(started_at, "started_at")

    latencies = record.get("latencies")
    if latencies is not None and not isinstance(latencies, dict):
        raise DecodeError("invalid_type:latencies", "latencies must be an object")
    latencies = latencies or {}
    total_latency = latency_ms(latencies.get("request"), "latencies.request")
    metadata: dict[str, Any] = {"gateway": "kong"}
    if total_latency is None:
        response_time = request_time
        metadata["latency_unknown"] = True
    else:
        response_time = epoch_ms_time(round_half_up(started_at) + round_half_up(total_latency), "latencies.request")

    request_headers = headers_map(request.get("headers"), "request.headers")
    response_headers = headers_map(response.get("headers"), "response.headers")

    event: dict[str, Any] = {
        "request": {"time": request_time, "uri": uri, "verb": verb, "headers": request_headers},
        "response": {"time": response_time, "status": status, "headers": response_headers},
        "direction": "Incoming",
        "weight": 1,
    }
    request_id = first_present(request.get("id"), request_headers.get("x-kong-request-id"))
    if request_id:
        event["transaction_id"] = request_id
    ip_address = optional_string(record.get("client_ip"))
    if ip_address:
        event["request"]["ip_address"] = ip_address
    user_id = _user_id(record, request_headers)
    if user_id:
        event["user_id"] = user_id
    metadata.update(_metadata(record, latencies))
    event["metadata"] = metadata
    return event


def _user_id(record: dict[str, Any], headers: dict[str, str]) -> str | None:
    """Kong's consumer, then the X-Consumer-* headers auth plugins set, then the 0.8+ authenticated entity."""
    consumer = record.get("consumer") if isinstance(record.get("consumer"), dict) else {}
    entity = record.get("authenticated_entity")
    # 0.5–0.7 put the whole credential (with its secret `key`) here: only `consumer_id` is ever read.
    entity_consumer = entity.get("consumer_id") if isinstance(entity, dict) else None
    return first_present(
        consumer.get("custom_id"),
        consumer.get("username"),
        consumer.get("id"),
        headers.get("x-consumer-custom-id"),
        headers.get("x-consumer-username"),
        headers.get("x-consumer-id"),
        entity_consumer,
    )


def _metadata(record: dict[str, Any], latencies: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for key, source in (("route_name", "route"), ("service_name", "service"), ("api_name", "api")):
        entity = record.get(source)
        if isinstance(entity, dict) and optional_string(entity.get("name")):
            metadata[key] = entity["name"]
    for key, name in (("latency_kong_ms", "kong"), ("latency_proxy_ms", "proxy"), ("latency_receive_ms", "receive")):
        value = latencies.get(name)
        # proxy = -1 means "not proxied" (auth failure, rate limit): no latency rather than a negative one.
        if is_number(value) and value >= 0:
            metadata[key] = value
    for key, side in (("request_size", "request"), ("response_size", "response")):
        size = _size(record.get(side, {}).get("size"))
        if size is not None:
            metadata[key] = size
    upstream_status = optional_string(record.get("upstream_status"))
    if upstream_status:
        metadata["upstream_status"] = upstream_status
    for key, name in (("response_source", "source"), ("workspace", "workspace_name")):
        value = optional_string(record.get(name))
        if value:
            metadata[key] = value
    return metadata


def _size(value: Any) -> int | None:
    """Kong sizes are strings up to 2.1 and numbers from 2.2 on."""
    if is_number(value) and value >= 0:
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
