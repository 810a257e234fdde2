"""Kong Gateway log serializer records, 0.5 → 3.x (file-log, http-log, tcp-log …), to API events.

Field by field as in ``reference/formats.md`` §A: ``request.request_uri`` (0.5–0.11) gave way to
``request.url`` (≥0.12); sizes are strings up to 2.1 and numbers after; ``latencies.proxy`` is -1
when Kong did not proxy; ``request.id`` (≥3.5) is the gateway's own request id.
"""
from __future__ import annotations

from typing import Any

from transforms.model.event import round_half_up
from transforms.stages.formats.common import (
    DecodeError,
    absolute_url,
    byte_count,
    epoch_ms_time,
    first_present,
    headers_map,
    is_placeholder,
    latency_ms,
    optional_string,
    require_object,
    require_status,
    require_string,
)

FORMAT = "kong"

_NUMBER_TYPES = (int, float)
_CONSUMER_HEADERS = ("x-consumer-custom-id", "x-consumer-username", "x-consumer-id")
_ENTITY_NAMES = (("route_name", "route"), ("service_name", "service"), ("api_name", "api"))
_LATENCY_PARTS = (("latency_kong_ms", "kong"), ("latency_proxy_ms", "proxy"), ("latency_receive_ms", "receive"))
_METADATA_STRINGS = (("upstream_uri", "upstream_uri"), ("upstream_status", "upstream_status"),
                     ("response_source", "source"), ("workspace", "workspace_name"))


def looks_like(record: dict[str, Any]) -> bool:
    # Root keys only Kong writes, so that a record missing request.method is still told apart (and
    # dead-lettered with the missing field's name rather than as an unknown format).
    return isinstance(record.get("request"), dict) and ("started_at" in record or "latencies" in record)


def decode(record: dict[str, Any]) -> dict[str, Any]:
    """One Kong log record → one API event; raises DecodeError naming the first broken field."""
    # Straight-line with inline fast paths for well-formed values (the require_* helpers run only to
    # raise the precise error): this runs once per event, and each Python-level call costs ~0.1 µs. Compiled,
    # the helpers are C calls (kong.pxd), and `request` and `response` are C-typed dicts.
    request = require_object(record, "request", "request")
    response = require_object(record, "response", "response")
    verb = request.get("method")
    if type(verb) is not str or is_placeholder(verb):
        verb = require_string(request, "method", "request.method")
    if "url" in request:
        uri = absolute_url(require_string(request, "url", "request.url"), "request.url")
    else:
        uri = absolute_url(require_string(request, "request_uri", "request.request_uri"), "request.request_uri")
    status = response.get("status")
    if type(status) is not int or not 100 <= status <= 599:
        status = require_status(status, "response.status")
    started_at = record.get("started_at")
    request_time = epoch_ms_time(started_at, "started_at")

    latencies = record.get("latencies")
    if latencies is None:
        latencies = {}
    elif type(latencies) is not dict:
        raise DecodeError("invalid_type:latencies", "latencies must be an object")
    total_latency = latency_ms(latencies.get("request"), "latencies.request")
    metadata: dict[str, Any] = {"gateway": "kong"}
    if total_latency is None:
        response_time = request_time
        metadata["latency_unknown"] = True
    else:
        response_time = epoch_ms_time(round_half_up(started_at) + round_half_up(total_latency), "latencies.request")

    request_headers = headers_map(request.get("headers"), "request.headers")
    request_side = {"time": request_time, "uri": uri, "verb": verb, "headers": request_headers}
    event: dict[str, Any] = {
        "request": request_side,
        "response": {"time": response_time, "status": status,
                     "headers": headers_map(response.get("headers"), "response.headers")},
        "direction": "Incoming",
        "weight": 1,
    }
    request_id = first_present(request.get("id"), request_headers.get("x-kong-request-id"))
    if request_id:
        event["transaction_id"] = request_id
    ip_address = optional_string(record.get("client_ip"))
    if ip_address:
        request_side["ip_address"] = ip_address
    user_id = _user_id(record, request_headers)
    if user_id:
        event["user_id"] = user_id
    _add_metadata(record, request, response, latencies, metadata)
    event["metadata"] = metadata
    return event


def _user_id(record: dict[str, Any], headers: dict[str, str]) -> str | None:
    """Kong's consumer, then the X-Consumer-* headers auth plugins set, then the 0.8+ authenticated entity."""
    consumer = record.get("consumer")
    if type(consumer) is dict:
        for key in ("custom_id", "username", "id"):
            text = optional_string(consumer.get(key))
            if text:
                return text
    for name in _CONSUMER_HEADERS:
        if name in headers:
            text = optional_string(headers[name])
            if text:
                return text
    entity = record.get("authenticated_entity")
    # 0.5–0.7 put the whole credential (with its secret `key`) here: only `consumer_id` is ever read.
    return optional_string(entity.get("consumer_id")) if type(entity) is dict else None


def _add_metadata(
    record: dict[str, Any],
    request: dict[str, Any],
    response: dict[str, Any],
    latencies: dict[str, Any],
    metadata: dict[str, Any],
) -> None:
    for key, source in _ENTITY_NAMES:
        entity = record.get(source)
        if type(entity) is dict:
            name = optional_string(entity.get("name"))
            if name:
                metadata[key] = name
    for key, name in _LATENCY_PARTS:
        value = latencies.get(name)
        # proxy = -1 means "not proxied" (auth failure, rate limit): no latency rather than a negative one.
        if type(value) in _NUMBER_TYPES and value >= 0:
            metadata[key] = value
    for key, side in (("request_size", request), ("response_size", response)):
        size = byte_count(side.get("size"))  # strings up to Kong 2.1, numbers from 2.2 on
        if size is not None:
            metadata[key] = size
    for key, name in _METADATA_STRINGS:
        if name in record:
            value = optional_string(record[name])
            if value:
                metadata[key] = value
