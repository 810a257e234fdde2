"""AWS API Gateway access-log records (REST and HTTP APIs), as ``reference/formats.md`` §B.1 describes them.

The log format is the user's own ``$context`` template, so every field is optional except the ones SPEC §3
needs. API Gateway writes ``-`` for a variable without a value and usually quotes every value (numbers
too); both spellings are accepted. An *unquoted* variable that is ``-`` makes the line invalid JSON: such
a line is a dead letter (``invalid_json``) — quoting the variable in the format fixes it at the source.
The query string, headers and bodies are not available in access logs at all.
"""
from __future__ import annotations

import calendar
import re
from typing import Any

from transforms.event import round_half_up
from transforms.formats.common import (
    DecodeError,
    absent,
    epoch_ms_time,
    is_number,
    latency_ms,
    optional_string,
    require_status,
)

FORMAT = "aws_apigateway"

# REST APIs log requestTimeEpoch in ms; HTTP APIs (in practice) in seconds. Seconds stay below 1e11
# until the year 5138, ms are above it after 1973: the magnitude tells them apart.
_SECONDS_BELOW = 100_000_000_000

_CLF_TIME = re.compile(r"(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})")
_MONTHS = {name: number for number, name in enumerate(calendar.month_abbr) if name}

_USER_FIELDS = ("user", "apiKeyId", "principalId", "cognitoIdentityId", "caller", "userArn")
_METADATA_STRINGS = (
    ("api_id", "apiId"),
    ("stage", "stage"),
    ("protocol", "protocol"),
    ("domain_prefix", "domainPrefix"),
    ("integration_status", "integrationStatus"),
    ("error_message", "errorMessage"),
    ("error_response_type", "errorResponseType"),
    ("extended_request_id", "extendedRequestId"),
)
_METADATA_LATENCIES = (("latency_integration_ms", "integrationLatency"),)


def looks_like(record: dict[str, Any]) -> bool:
    # API Gateway requires $context.requestId or $context.extendedRequestId in every access-log format.
    return "httpMethod" in record and ("requestId" in record or "extendedRequestId" in record)


def decode(record: dict[str, Any]) -> dict[str, Any]:
    """One access-log record → one API event; raises DecodeError naming the first broken field."""
    verb = _required_text(record, "httpMethod")
    uri = _uri(record)
    status = require_status(record.get("status"), "status", numeric_string=True)
    request_ms = _request_epoch_ms(record)
    metadata: dict[str, Any] = {"gateway": "aws_apigateway"}
    latency = latency_ms(record.get("durationMs"), "durationMs", numeric_string=True)
    if latency is None:
        latency = latency_ms(record.get("responseLatency"), "responseLatency", numeric_string=True)
    if latency is None:
        metadata["latency_unknown"] = True
        latency = 0
    request_headers: dict[str, str] = {}
    host = _host(record)
    if host:
        request_headers["host"] = host
    user_agent = _text(record.get("requestUserAgentHeader")) or _text(record.get("userAgent"))
    if user_agent:
        request_headers["user-agent"] = user_agent

    event: dict[str, Any] = {
        "request": {"time": epoch_ms_time(request_ms, "requestTime"), "uri": uri, "verb": verb,
                    "headers": request_headers},
        "response": {"time": epoch_ms_time(request_ms + round_half_up(latency), "durationMs"), "status": status,
                     "headers": {}},
        "direction": "Incoming",
        "weight": 1,
    }
    transaction_id = _text(record.get("requestId")) or _text(record.get("extendedRequestId"))
    if transaction_id:
        event["transaction_id"] = transaction_id
    ip_address = _text(record.get("ip")) or _text(record.get("sourceIp"))
    if ip_address:
        event["request"]["ip_address"] = ip_address
    for key, fields in (("user_id", _USER_FIELDS), ("company_id", ("companyId",))):
        value = next((text for text in map(_text, (record.get(name) for name in fields)) if text), None)
        if value:
            event[key] = value
    metadata.update(_metadata(record))
    event["metadata"] = metadata
    return event


def _text(value: Any) -> str | None:
    return None if absent(value) else optional_string(value)


def _required_text(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if absent(value):
        raise DecodeError(f"missing_field:{key}", f"{key} is required")
    if not isinstance(value, str):
        raise DecodeError(f"invalid_type:{key}", f"{key} must be a string, not {type(value).__name__}")
    return value


def _host(record: dict[str, Any]) -> str | None:
    return _text(record.get("requestHostHeader")) or _text(record.get("domainName"))


def _route_template(record: dict[str, Any]) -> str | None:
    """REST: ``resourcePath`` (``/pets/{petId}``); HTTP APIs: the path part of ``routeKey`` (``GET /pets``)."""
    template = _text(record.get("resourcePath"))
    if template:
        return template
    route_key = _text(record.get("routeKey"))
    if route_key and " " in route_key:
        return route_key.split(" ", 1)[1]
    return None


def _uri(record: dict[str, Any]) -> str:
    """``https://`` + host + path when the host is logged, else the path alone (no query: AWS never logs it)."""
    path = _text(record.get("path")) or _route_template(record)
    if path is None:
        raise DecodeError("missing_field:path", "path (or resourcePath / routeKey) is required")
    if not isinstance(path, str) or not path.startswith("/"):
        raise DecodeError("invalid_type:path", f"path must start with '/', got {path!r:.60}")
    host = _host(record)
    return f"https://{host}{path}" if host else path


def _request_epoch_ms(record: dict[str, Any]) -> int | float:
    epoch = record.get("requestTimeEpoch")
    if not absent(epoch):
        if isinstance(epoch, str) and epoch.isascii() and epoch.isdigit():
            epoch = int(epoch)
        if not is_number(epoch) or epoch <= 0:
            raise DecodeError("invalid_timestamp", f"requestTimeEpoch {epoch!r:.40} is not an epoch time")
        return epoch * 1000 if epoch < _SECONDS_BELOW else epoch
    text = record.get("requestTime")
    if absent(text):
        raise DecodeError("missing_field:requestTime", "requestTime or requestTimeEpoch is required")
    if not isinstance(text, str):
        raise DecodeError("invalid_type:requestTime", "requestTime must be a string")
    return _clf_epoch_ms(text)


def _clf_epoch_ms(text: str) -> int:
    """``25/Nov/2026:10:00:00 +0000`` (Common Log Format, second precision) → epoch ms."""
    match = _CLF_TIME.fullmatch(text.strip())
    month = _MONTHS.get(match.group(2)) if match else None
    if not match or month is None:
        raise DecodeError("invalid_timestamp", f"requestTime {text[:40]!r} is not dd/MMM/yyyy:HH:mm:ss +0000")
    day, year, hour, minute, second = (int(match.group(i)) for i in (1, 3, 4, 5, 6))
    sign, offset_h, offset_m = match.group(7), int(match.group(8)), int(match.group(9))
    if not (1 <= day <= calendar.monthrange(year, month)[1] and hour < 24 and minute < 60 and second < 60
            and offset_h < 24 and offset_m < 60):
        raise DecodeError("invalid_timestamp", f"requestTime {text[:40]!r} is not a real time")
    offset = (offset_h * 3600 + offset_m * 60) * (1 if sign == "+" else -1)
    return (calendar.timegm((year, month, day, hour, minute, second)) - offset) * 1000


def _metadata(record: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    template = _route_template(record)
    if template:
        metadata["route_template"] = template
    for key, name in _METADATA_STRINGS:
        value = _text(record.get(name))
        if value:
            metadata[key] = value
    for key, name in _METADATA_LATENCIES:
        value = latency_ms(record.get(name), name, numeric_string=True)
        if value is not None:
            metadata[key] = value
    size = record.get("responseLength")
    if isinstance(size, str) and size.isascii() and size.isdigit():
        size = int(size)
    if is_number(size) and size >= 0:
        metadata["response_size"] = int(size)
    extra = record.get("metadata")
    if isinstance(extra, dict):  # the Moesif template's free-form metadata object
        metadata.update({key: value for key, value in extra.items() if not absent(value) and key not in metadata})
    return metadata
