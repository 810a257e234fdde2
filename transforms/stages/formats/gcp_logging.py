"""Google Cloud Logging ``LogEntry`` envelopes, as a log sink publishes them to Pub/Sub (one entry per message).

A sink whose destination is ``pubsub.googleapis.com/projects/P/topics/T`` publishes each matching entry as
the JSON of the ``LogEntry`` (proto3 JSON mapping: int64 fields such as ``httpRequest.requestSize`` are
strings, a ``Duration`` is ``"0.005192s"``, a ``Timestamp`` has 0, 3, 6 or 9 fraction digits, and a field at
its default value — status 0, an empty string, false — is left out). The entry is the GCP twin of the
CloudWatch Logs envelope on AWS, and is unwrapped the same way:

- ``jsonPayload`` holding a record the pipeline already decodes (Kong's log serializer record written to
  stdout by a container on GKE, an AWS-style JSON access line, a Moesif event, …) is decoded by that
  format's own rules; ``textPayload`` holding such a record as JSON text (or a WSO2 ``apim_metrics.log``
  line) likewise.
- Cloud Endpoints ESP/ESPv2 entries (log ``endpoints_log``) and API Gateway request logs (log
  ``apigateway.googleapis.com/requests``, written by the ESPv2 that API Gateway runs) are decoded as
  ``gcp_endpoints`` (``transforms/stages/formats/gcp_endpoints.py``).
- Any other entry with an ``httpRequest`` — load balancers, Cloud CDN, Cloud Run, an application's own
  request log — is decoded as ``gcp_http_request`` (``transforms/stages/formats/gcp_http_request.py``), unless its
  ``jsonPayload`` is itself a gateway record.
- Anything else (an audit log's ``protoPayload``, a plain-text nginx line, an application's message) is one
  ``unknown_format`` dead letter.

An event without a gateway request id of its own gets a transaction id derived from the entry's log name,
``insertId`` and ``timestamp`` (``transaction_seed``), not from the message bytes: Cloud Logging itself
treats entries with the same ``insertId`` and timestamp in one log as one entry, so the id is the same for a
redelivery and for the same entry exported twice.

The shared readers of ``httpRequest`` entries (``Duration`` latency, ``remoteIp`` without its port, the log
name and resource labels for ``metadata``) live here, beside the envelope they come from.
"""
from __future__ import annotations

from typing import Any

from transforms.stages.formats.common import AsFormat, DecodeError, PayloadOrEntry, byte_count, iso_time_ms
from transforms.stages.formats.wso2 import metrics_log_line

MARKER_KEY = "logName"  # present in every entry a sink exports
FORMAT = "gcp_log_entry"
HTTP_REQUEST_FORMAT = "gcp_http_request"
ENDPOINTS_FORMAT = "gcp_endpoints"

# The logs ESP/ESPv2 write: `endpoints_log` (Cloud Endpoints) and API Gateway's request log.
_ENDPOINTS_LOG_SUFFIXES = ("/logs/endpoints_log", "/logs/apigateway.googleapis.com%2Frequests")
_MAX_DURATION_SECONDS = 315_576_000_000  # protobuf Duration's own range (10 000 years)


def looks_like(record: dict[str, Any]) -> bool:
    return "logName" in record and (
        "jsonPayload" in record or "textPayload" in record or "httpRequest" in record or "protoPayload" in record)


def is_control_message(entry: dict[str, Any]) -> bool:
    return False


def unwrap(entry: dict[str, Any]) -> list[tuple[str, Any]]:
    """The one record an entry holds, labelled by where it was found; rules in the module docstring."""
    if is_endpoints_entry(entry):
        return [("entry", AsFormat(ENDPOINTS_FORMAT, entry))]
    has_http_request = entry.get("httpRequest") is not None
    payload = entry.get("jsonPayload")
    if payload is not None:
        if not isinstance(payload, dict):
            raise DecodeError("invalid_type:jsonPayload",
                              f"jsonPayload must be an object, not {type(payload).__name__}")
        if has_http_request:
            return [("jsonPayload", PayloadOrEntry(payload, AsFormat(HTTP_REQUEST_FORMAT, entry)))]
        return [("jsonPayload", payload)]
    text = entry.get("textPayload")
    if text is not None:
        if not isinstance(text, str):
            raise DecodeError("invalid_type:textPayload", f"textPayload must be a string, not {type(text).__name__}")
        data = text.encode()
        if _holds_record(data):
            return [("textPayload", data)]
        if not has_http_request:
            raise DecodeError("unknown_format", "textPayload is plain text, not a gateway record in JSON "
                              "(e.g. an nginx access line)")
    if has_http_request:
        return [("entry", AsFormat(HTTP_REQUEST_FORMAT, entry))]
    if entry.get("protoPayload") is not None:
        raise DecodeError("unknown_format", "a protoPayload entry (an audit or App Engine log) is not gateway traffic")
    raise DecodeError("unknown_format", "the LogEntry has no httpRequest and no jsonPayload or textPayload")


def transaction_seed(entry: dict[str, Any]) -> bytes | None:
    """The bytes the transaction ids of an entry's events derive from: log name, insertId and timestamp."""
    insert_id = entry.get("insertId")
    log_name = entry.get("logName")
    if type(insert_id) is not str or not insert_id or type(log_name) is not str:
        return None
    timestamp = entry.get("timestamp")
    return b"gcp-log-entry\x00%s\x00%s\x00%s" % (
        log_name.encode(), insert_id.encode(), timestamp.encode() if type(timestamp) is str else b"")


def is_endpoints_entry(entry: dict[str, Any]) -> bool:
    """An ESP/ESPv2 or API Gateway entry: by its log name, or by the fields ESP writes into jsonPayload."""
    log_name = entry.get("logName")
    if type(log_name) is str and log_name.endswith(_ENDPOINTS_LOG_SUFFIXES):
        return True
    payload = entry.get("jsonPayload")
    if not isinstance(payload, dict):
        return False
    if "http_response_code" in payload:  # ESP (v1): always with http_method/url/request_latency_in_ms
        return "http_method" in payload or "url" in payload or "request_latency_in_ms" in payload
    return "http_status_code" in payload and "service_agent" in payload  # ESPv2


def _holds_record(data: bytes) -> bool:
    stripped = data.strip()
    return stripped[:1] in (b"{", b"[") or metrics_log_line(stripped) is not None


def entry_time_ms(entry: dict[str, Any]) -> int:
    """Epoch ms of ``LogEntry.timestamp`` (any fraction length, rounded half-up to the millisecond)."""
    return iso_time_ms(entry.get("timestamp"), "timestamp")


def duration_ms(value: Any, path: str) -> float | None:
    """A protobuf ``Duration`` in its JSON form (``"1.234s"``, ``"0.000500s"``, ``"3s"``) → ms; None when absent."""
    if value is None:
        return None
    if type(value) is not str or len(value) < 2 or value[-1] != "s":
        raise DecodeError(f"invalid_type:{path}", f"{path} must be a Duration such as \"0.123s\", got {value!r:.40}")
    whole, point, fraction = value[:-1].partition(".")
    if (not whole.isascii() or not whole.isdigit() or len(whole) > 12 or (point and not 1 <= len(fraction) <= 9)
            or (point and (not fraction.isascii() or not fraction.isdigit()))):
        raise DecodeError(f"invalid_type:{path}", f"{path} must be a Duration such as \"0.123s\", got {value!r:.40}")
    seconds = int(whole)
    if seconds > _MAX_DURATION_SECONDS:
        raise DecodeError(f"invalid_type:{path}", f"{path} is longer than a Duration can be: {value!r:.40}")
    nanos = int(fraction.ljust(9, "0")) if point else 0
    return seconds * 1000 + nanos / 1_000_000


def client_ip(value: Any) -> str | None:
    """``remoteIp`` without the ``:port`` regional load balancers append (``203.0.113.7:50412``,
    ``[2001:db8::1]:443``); a bare IPv6 address keeps its colons."""
    if type(value) is not str or not value:
        return None
    if value[0] == "[":
        end = value.find("]")
        return value[1:end] if end > 1 else None
    if value.count(":") == 1:
        return value.split(":", 1)[0] or None
    return value


def entry_metadata(entry: dict[str, Any], gateway: str) -> dict[str, Any]:
    """What every GCP event's ``metadata`` carries: the gateway kind, the log name, the monitored resource
    and its labels, the trace it belongs to, and the request and response sizes."""
    metadata: dict[str, Any] = {"gateway": gateway}
    log_name = entry.get("logName")
    if type(log_name) is str and log_name:
        metadata["log_name"] = log_name
    resource = entry.get("resource")
    if isinstance(resource, dict):
        if type(resource.get("type")) is str:
            metadata["resource_type"] = resource["type"]
        labels = resource.get("labels")
        if isinstance(labels, dict):
            kept = {name: value for name, value in labels.items() if type(value) is str and value}
            if kept:
                metadata["resource_labels"] = kept
    for key, name in (("trace", "trace"), ("spanId", "span_id")):
        value = entry.get(key)
        if type(value) is str and value:
            metadata[name] = value
    http_request = entry.get("httpRequest")
    if isinstance(http_request, dict):
        for key, name in (("requestSize", "request_size"), ("responseSize", "response_size")):
            size = byte_count(http_request.get(key))
            if size is not None:
                metadata[name] = size
        protocol = http_request.get("protocol")
        if type(protocol) is str and protocol:
            metadata["protocol"] = protocol
    return metadata


def resource_type(entry: dict[str, Any]) -> str | None:
    resource = entry.get("resource")
    kind = resource.get("type") if isinstance(resource, dict) else None
    return kind if type(kind) is str else None
