"""WSO2 API Manager analytics events, ``apim_event_response`` and ``apim_event_faulty`` (formats.md §C).

Where WSO2's own Moesif client goes wrong we do not follow it: the status is ``proxyResponseCode`` (what
the client got), a fault is never attributed to ``apiCreator``, and a short ``requestTimestamp``
(``…T12:16Z``) is read, not replaced by "now". Faults carry no latency: their response time equals the
request time and ``metadata.latency_unknown`` says so.

``apim_metrics.log`` lines (``… apimMetrics: apim:response, properties :{json}``) are read by
``metrics_log_line``.
"""
from __future__ import annotations

import ipaddress
from typing import Any

from transforms.model.event import format_epoch_ms, round_half_up
from transforms.stages.formats.common import (
    MAX_INT64,
    DecodeError,
    byte_count,
    epoch_ms_time,
    headers_map,
    is_ascii_space,
    is_number,
    is_placeholder,
    iso_time_ms,
    latency_ms,
    optional_string,
    require_status,
)

FORMAT = "wso2"

_SUPER_TENANT_SUFFIX = "@carbon.super"
_ABSENT = object()  # a key missing from the record (a null in it is not looked up in its properties)

_METADATA_STRINGS = (
    ("api_name", "apiName"), ("api_id", "apiId"), ("api_type", "apiType"), ("api_creator", "apiCreator"),
    ("api_creator_tenant_domain", "apiCreatorTenantDomain"), ("application_id", "applicationId"),
    ("application_name", "applicationName"), ("application_owner", "applicationOwner"), ("key_type", "keyType"),
    ("region_id", "regionId"), ("gateway_type", "gatewayType"), ("destination", "destination"),
    ("route_template", "apiResourceTemplate"), ("user_agent", "userAgent"), ("platform", "platform"),
    ("error_type", "errorType"), ("error_message", "errorMessage"),
)
_METADATA_LATENCIES = (
    ("latency_backend_ms", "backendLatency"),
    ("latency_request_mediation_ms", "requestMediationLatency"),
    ("latency_response_mediation_ms", "responseMediationLatency"),
)
_PROPERTY_STRINGS = (("response_content_type", "responseContentType"), ("sub_type", "subType"),
                     ("common_name", "commonName"))


def looks_like(record: dict[str, Any]) -> bool:
    return "requestTimestamp" in record and ("correlationId" in record or "apiContext" in record
                                             or "proxyResponseCode" in record)


def metrics_log_line(line: bytes) -> tuple[bytes, str] | None:
    """The event JSON and ``response``/``faulty`` of an ``apim_metrics.log`` line, or None if it is not one."""
    # Read token by token rather than by a regex: this runs for every line of a WSO2 log (~1 µs saved).
    marker = line.find(b"apimMetrics:")
    while marker >= 0:
        found = _event_after_marker(line, marker + 12)
        if found is not None:
            return found
        marker = line.find(b"apimMetrics:", marker + 1)
    return None


def _event_after_marker(line: bytes, position: int) -> tuple[bytes, str] | None:
    """``apim:response , properties :{…}`` (any ASCII whitespace between the tokens) from ``position`` on."""
    position = _after_spaces(line, position)
    if _has_at(line, position, b"apim:response"):
        kind, position = "response", position + 13
    elif _has_at(line, position, b"apim:faulty"):
        kind, position = "faulty", position + 11
    else:
        return None
    for token in (b",", b"properties", b":"):
        position = _after_spaces(line, position)
        if not _has_at(line, position, token):
            return None
        position += len(token)
    position = _after_spaces(line, position)
    return (line[position:], kind) if _has_at(line, position, b"{") else None


def _has_at(line: bytes, position: int, token: bytes) -> bool:
    """``line.startswith(token, position)``, compared byte by byte (C when compiled, no method call)."""
    if position + len(token) > len(line):
        return False
    for offset in range(len(token)):  # noqa: SIM110 (a C loop when compiled; all() would build a generator)
        found, expected = line[position + offset], token[offset]
        if found != expected:
            return False
    return True


def _after_spaces(line: bytes, position: int) -> int:
    """The position of the first byte at or after ``position`` that is not ASCII whitespace (regex ``\\s``)."""
    while position < len(line):
        byte = line[position]
        if not is_ascii_space(byte):
            break
        position += 1
    return position


def decode(record: dict[str, Any]) -> dict[str, Any]:
    """One WSO2 analytics event → one API event; raises DecodeError naming the first broken field."""
    properties = _properties(record)
    is_fault = record.get("eventType") == "fault" or "errorType" in record or "errorCode" in record
    verb = _required_text(record.get("apiMethod") or properties.get("apiMethod"), "apiMethod")
    context = _required_text(record.get("apiContext") or properties.get("apiContext"), "apiContext")
    template = optional_string(record.get("apiResourceTemplate")) or ""
    status = require_status(record.get("proxyResponseCode"), "proxyResponseCode")
    request_ms = iso_time_ms(record.get("requestTimestamp"), "requestTimestamp")
    metadata: dict[str, Any] = {"gateway": "wso2", "event_type": "fault" if is_fault else "response"}
    latency = None if is_fault else latency_ms(record.get("responseLatency"), "responseLatency")
    if latency is None:
        metadata["latency_unknown"] = True
        latency = 0

    request: dict[str, Any] = {
        "time": format_epoch_ms(request_ms), "uri": _join_path(context, template), "verb": verb,
        "headers": headers_map(properties.get("requestHeaders"), "properties.requestHeaders"),
    }
    response: dict[str, Any] = {
        "time": epoch_ms_time(request_ms + round_half_up(latency), "responseLatency"), "status": status,
        "headers": headers_map(properties.get("responseHeaders"), "properties.responseHeaders"),
    }
    _copy_body(properties, "requestBody", "requestBodyTransferEncoding", request)
    _copy_body(properties, "responseBody", "responseBodyTransferEncoding", response)
    event: dict[str, Any] = {"request": request, "response": response, "direction": "Incoming", "weight": 1}
    transaction_id = optional_string(record.get("correlationId"))
    if transaction_id:
        event["transaction_id"] = transaction_id
    api_version = optional_string(record.get("apiVersion"))
    if api_version:
        request["api_version"] = api_version
    ip_address = _real_ip(record.get("userIp") or properties.get("userIp"))
    if ip_address:
        request["ip_address"] = ip_address
    user_id = _user_id(record.get("userName") or properties.get("userName"))
    if user_id:
        event["user_id"] = user_id
    _add_metadata(record, properties, metadata)
    event["metadata"] = metadata
    return event


def _properties(record: dict[str, Any]) -> dict[str, Any]:
    properties = record.get("properties")
    if properties is None:
        return {}
    if not isinstance(properties, dict):
        raise DecodeError("invalid_type:properties", "properties must be an object")
    return properties


def _required_text(value: Any, path: str) -> str:
    if is_placeholder(value):
        raise DecodeError(f"missing_field:{path}", f"{path} is required")
    if not isinstance(value, str):
        raise DecodeError(f"invalid_type:{path}", f"{path} must be a string, not {type(value).__name__}")
    return value


def _join_path(context: str, template: str) -> str:
    if not template or template == "/":
        return context or "/"
    return context.rstrip("/") + "/" + template.lstrip("/")


def _real_ip(value: Any) -> str | None:
    """WSO2 can mask IPs (``192.168.***.98``): only a parseable address is an ``ip_address``."""
    if not isinstance(value, str) or not value:
        return None
    if ":" not in value:  # not IPv6: a dotted quad or nothing (ipaddress takes ~4 µs to say so)
        return value if _is_ipv4(value) else None
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return None
    return value


def _is_ipv4(text: str) -> bool:
    """Four decimal octets 0–255 without leading zeros, as ``ipaddress`` accepts them."""
    dots = digits = octet = 0
    for char in text:
        if char == ".":
            if digits == 0:
                return False
            dots, digits, octet = dots + 1, 0, 0
        elif "0" <= char <= "9":
            if digits == 1 and octet == 0:
                return False
            octet = octet * 10 + ord(char) - 48
            digits += 1
            if octet > 255:
                return False
        else:
            return False
    return dots == 3 and digits > 0


def _user_id(value: Any) -> str | None:
    """``user@carbon.super`` → ``user`` (the super tenant); masked names (``*****@gmail.com``) are no user."""
    name = optional_string(value)
    if not name or "*" in name:
        return None
    if name.endswith(_SUPER_TENANT_SUFFIX):
        name = name[: -len(_SUPER_TENANT_SUFFIX)]
    return name or None


def _copy_body(properties: dict[str, Any], key: str, encoding_key: str, side: dict[str, Any]) -> None:
    body = properties.get(key)
    if body is None or body == "":
        return
    encoding = properties.get(encoding_key)
    if encoding == "base64":
        if not isinstance(body, str):
            raise DecodeError(f"invalid_type:properties.{key}", f"properties.{key} must be a base64 string")
        side["transfer_encoding"] = "base64"
    side["body"] = body


def _add_metadata(record: dict[str, Any], properties: dict[str, Any], metadata: dict[str, Any]) -> None:
    for key, name in _METADATA_STRINGS:
        value = record.get(name, _ABSENT)
        if value is _ABSENT:
            value = properties.get(name)
        if value is not None:
            if type(value) is not str:
                value = optional_string(value)
            if value and value != "-":
                metadata[key] = value
    for key, name in _METADATA_LATENCIES:
        value = latency_ms(record.get(name), name)
        if value is not None:
            metadata[key] = value
    target = record.get("targetResponseCode")
    if is_number(target) and 100 <= target <= 599:  # -1 on faults: there was no backend response
        metadata["target_response_code"] = int(target)
    error_code = record.get("errorCode")
    if is_number(error_code) and -MAX_INT64 - 1 <= error_code <= MAX_INT64:
        metadata["error_code"] = int(error_code)
    cache_hit = record.get("responseCacheHit")
    if isinstance(cache_hit, bool):
        metadata["response_cache_hit"] = cache_hit
    for key, name in _PROPERTY_STRINGS:
        value = optional_string(properties.get(name))
        if value:
            metadata[key] = value
    size = byte_count(properties.get("responseSize"))
    if size is not None:
        metadata["response_size"] = size
    for key, name in (("ai_metadata", "aiMetadata"), ("ai_token_usage", "aiTokenUsage")):
        if isinstance(properties.get(name), dict):
            metadata[key] = properties[name]
