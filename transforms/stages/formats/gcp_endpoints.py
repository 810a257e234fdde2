"""Cloud Endpoints ESP / ESPv2 ``endpoints_log`` entries and API Gateway request logs (which the ESPv2 that
API Gateway runs writes), reached through the envelope (``transforms/stages/formats/gcp_logging.py``).

ESP (v1) writes only a ``jsonPayload``: ``http_method``, ``url`` (the path and query the client sent),
``http_response_code``, ``request_latency_in_ms``, ``request_size_in_bytes``, ``response_size_in_bytes``,
``api_name``, ``api_version``, ``api_method``, ``api_key``, ``producer_project_id``, ``location``,
``log_message``, ``error_cause`` and ``timestamp`` (epoch seconds, a float). ESPv2 moves the request facts
into ``httpRequest`` (``requestMethod``, ``requestUrl``, ``status``, ``remoteIp``, ``latency``, sizes) and
keeps in ``jsonPayload`` ``http_status_code``, ``api_key_state``, ``response_code_detail``,
``service_agent``, ``service_config_id`` and the ``api_*`` fields. Either form is read, the payload first.

**``LogEntry.timestamp`` is the request's end.** ESP's and ESPv2's report builders (cloudendpoints/esp
``Proto::FillReportRequest``; GoogleCloudPlatform/esp-v2 ``src/api_proxy/service_control/request_builder.cc``,
``FillLogEntry``) stamp the entry, and the payload's ``timestamp``, with the time the final report is built,
after the response has been sent, and take the latency from the same request. So ``response.time`` is the
timestamp and ``request.time`` is the timestamp minus the latency.

The API key (``api_key``: the consumer's key, which the client also sent in the ``key`` or ``api_key``
query parameter) is never copied to the event, and every occurrence of it in the URL is replaced by the mask,
whatever the query masks say. ``request_headers``, ``response_headers`` and ``jwt_payloads`` (ESPv2's
optional log fields) are not copied either: they are free text that can hold credentials. ``api_method``
(``1.my_api.ListShelves``) and the other ``api_*`` facts go to ``metadata``.
"""
from __future__ import annotations

from typing import Any

from transforms.model.event import round_half_up
from transforms.stages.formats.common import (
    DecodeError,
    byte_count,
    epoch_ms_time,
    is_number,
    latency_ms,
    optional_string,
    require_status,
)
from transforms.stages.formats.gcp_http_request import request_uri, user_agent_and_referer
from transforms.stages.formats.gcp_logging import (
    ENDPOINTS_FORMAT,
    client_ip,
    duration_ms,
    entry_metadata,
    entry_time_ms,
    is_endpoints_entry,
    resource_type,
)
from transforms.stages.masking import MASK

FORMAT = ENDPOINTS_FORMAT

_METADATA_STRINGS = (  # jsonPayload field → metadata name
    ("api_name", "api_name"),
    ("api_method", "api_method"),
    ("api_version", "api_version"),
    ("api_key_state", "api_key_state"),
    ("producer_project_id", "producer_project_id"),
    ("location", "location"),
    ("service_config_id", "service_config_id"),
    ("service_agent", "service_agent"),
    ("response_code_detail", "response_code_detail"),
    ("error_cause", "error_cause"),
    ("grpc_status_code", "grpc_status_code"),
    ("log_message", "log_message"),
)


def looks_like(record: dict[str, Any]) -> bool:
    return is_endpoints_entry(record)


def decode(entry: dict[str, Any]) -> dict[str, Any]:
    """One ESP/ESPv2/API Gateway LogEntry → one API event; raises DecodeError naming the first broken field."""
    payload = entry.get("jsonPayload")
    if payload is None:
        payload = {}
    elif not isinstance(payload, dict):
        raise DecodeError("invalid_type:jsonPayload", f"jsonPayload must be an object, not {type(payload).__name__}")
    http_request = entry.get("httpRequest")
    if http_request is None:
        http_request = {}
    elif not isinstance(http_request, dict):
        raise DecodeError("invalid_type:httpRequest", "httpRequest must be an object")
    verb = _first_string(payload, "http_method", http_request, "requestMethod")
    url = _first_string(payload, "url", http_request, "requestUrl")
    status_value = payload.get("http_status_code", payload.get("http_response_code", http_request.get("status")))
    status_path = "jsonPayload.http_status_code" if "http_status_code" in payload else "jsonPayload.http_response_code"
    status = require_status(status_value, status_path)
    end_ms = _end_time_ms(entry, payload)
    latency = latency_ms(payload.get("request_latency_in_ms"), "jsonPayload.request_latency_in_ms")
    if latency is None:
        latency = duration_ms(http_request.get("latency"), "httpRequest.latency")
    api_key = optional_string(payload.get("api_key"))
    uri = request_uri(url, "jsonPayload.url")
    if api_key and api_key in uri:
        uri = uri.replace(api_key, MASK)
    headers = user_agent_and_referer(http_request)
    referer = optional_string(payload.get("referer"))
    if referer and "referer" not in headers:
        headers["referer"] = referer
    log_name = entry.get("logName")
    is_api_gateway = (type(log_name) is str and log_name.endswith("apigateway.googleapis.com%2Frequests")) or (
        resource_type(entry) == "apigateway.googleapis.com/Gateway")
    metadata = entry_metadata(entry, "gcp_api_gateway" if is_api_gateway else "gcp_endpoints")
    if latency is None:
        metadata["latency_unknown"] = True
        request_ms = end_ms
    else:
        metadata["latency_ms"] = latency
        request_ms = end_ms - round_half_up(latency)
    request = {"time": epoch_ms_time(request_ms, "timestamp"), "uri": uri, "verb": verb, "headers": headers}
    ip_address = client_ip(http_request.get("remoteIp"))
    if ip_address:
        request["ip_address"] = ip_address
    for key, name in _METADATA_STRINGS:
        value = optional_string(payload.get(key))
        if value:
            metadata[name] = value
    for key, name in (("request_size_in_bytes", "request_size"), ("response_size_in_bytes", "response_size")):
        size = byte_count(payload.get(key))
        if size is not None and name not in metadata:
            metadata[name] = size
    return {
        "request": request,
        "response": {"time": epoch_ms_time(end_ms, "timestamp"), "status": status, "headers": {}},
        "direction": "Incoming",
        "weight": 1,
        "metadata": metadata,
    }


def _first_string(payload: dict[str, Any], payload_key: str, http_request: dict[str, Any], request_key: str) -> str:
    value = payload.get(payload_key)
    if value is None:
        value = http_request.get(request_key)
    if value is None or value == "":
        raise DecodeError(f"missing_field:jsonPayload.{payload_key}",
                          f"jsonPayload.{payload_key} (or httpRequest.{request_key}) is required")
    if type(value) is not str:
        raise DecodeError(f"invalid_type:jsonPayload.{payload_key}",
                          f"jsonPayload.{payload_key} must be a string, not {type(value).__name__}")
    return value


def _end_time_ms(entry: dict[str, Any], payload: dict[str, Any]) -> int:
    """The entry's timestamp; without one, the payload's epoch seconds (ESP writes both, the same instant)."""
    if entry.get("timestamp") is not None or not is_number(payload.get("timestamp")):
        return entry_time_ms(entry)
    seconds = payload["timestamp"]
    if not 0 < seconds < 4_102_444_800:  # before 2100-01-01
        raise DecodeError("invalid_timestamp", f"jsonPayload.timestamp {seconds!r:.40} is not epoch seconds")
    return round_half_up(seconds * 1000)
