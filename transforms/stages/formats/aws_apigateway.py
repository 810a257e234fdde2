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
from types import MappingProxyType
from typing import Any

from transforms.model.event import days_in_month, days_since_epoch, round_half_up
from transforms.stages.formats.common import (
    DecodeError,
    byte_count,
    epoch_ms_time,
    is_number,
    is_placeholder,
    latency_ms,
    optional_string,
    require_status,
)

FORMAT = "aws_apigateway"

# REST APIs log requestTimeEpoch in ms; HTTP APIs (in practice) in seconds. Seconds stay below 1e11
# until the year 5138, ms are above it after 1973: the magnitude tells them apart.
_SECONDS_BELOW = 100_000_000_000

_CLF_TIME = re.compile(r"(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})")
_MONTHS = MappingProxyType({name: number for number, name in enumerate(calendar.month_abbr) if name})

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


def looks_like(record: dict[str, Any]) -> bool:
    # API Gateway requires $context.requestId or $context.extendedRequestId in every access-log format.
    return "httpMethod" in record and ("requestId" in record or "extendedRequestId" in record)


def decode(record: dict[str, Any]) -> dict[str, Any]:
    """One access-log record → one API event; raises DecodeError naming the first broken field."""
    # Every field is read through _present, so that nothing below can mistake `-` or "" for a value. The code
    # below is straight-line on purpose: this runs once per event (compiled, _present is a C call).
    verb = _present(record, "httpMethod")
    if type(verb) is not str:
        if verb is None:
            raise DecodeError("missing_field:httpMethod", "httpMethod is required")
        raise DecodeError("invalid_type:httpMethod", f"httpMethod must be a string, not {type(verb).__name__}")
    host = _string(_present(record, "requestHostHeader") or _present(record, "domainName"))
    template = _route_template(record)
    path = _string(_present(record, "path")) or template
    if path is None:
        raise DecodeError("missing_field:path", "path (or resourcePath / routeKey) is required")
    if path[0] != "/":
        raise DecodeError("invalid_type:path", f"path must start with '/', got {path!r:.60}")
    status = _present(record, "status")
    if type(status) is not int or not 100 <= status <= 599:
        status = require_status(record.get("status"), "status", numeric_string=True)
    request_ms = _request_epoch_ms(record)
    latency = _present(record, "durationMs")
    if latency is None:
        latency = _present(record, "responseLatency")
    if latency is not None:
        latency = latency_ms(latency, "durationMs", numeric_string=True)
    request_headers: dict[str, str] = {}
    if host:
        request_headers["host"] = host
    user_agent = _string(_present(record, "requestUserAgentHeader") or _present(record, "userAgent"))
    if user_agent:
        request_headers["user-agent"] = user_agent
    request = {"time": epoch_ms_time(request_ms, "requestTime"), "uri": f"https://{host}{path}" if host else path,
               "verb": verb, "headers": request_headers}
    metadata: dict[str, Any] = {"gateway": "aws_apigateway"}
    if latency is None:
        metadata["latency_unknown"] = True
        response_time = request["time"]
    else:
        response_time = epoch_ms_time(request_ms + round_half_up(latency), "durationMs")
    event: dict[str, Any] = {
        "request": request,
        "response": {"time": response_time, "status": status, "headers": {}},
        "direction": "Incoming",
        "weight": 1,
    }
    transaction_id = _string(_present(record, "requestId") or _present(record, "extendedRequestId"))
    if transaction_id:
        event["transaction_id"] = transaction_id
    ip_address = _string(_present(record, "ip") or _present(record, "sourceIp"))
    if ip_address:
        request["ip_address"] = ip_address
    for name in _USER_FIELDS:
        value = _present(record, name)
        if value is not None:
            user_id = _string(value)
            if user_id:
                event["user_id"] = user_id
                break
    company_id = _string(_present(record, "companyId"))
    if company_id:
        event["company_id"] = company_id
    if template:
        metadata["route_template"] = template
    _add_metadata(record, metadata)
    event["metadata"] = metadata
    return event


def _present(record: dict[str, Any], key: str) -> Any:
    """The value of ``key``, or None when it is absent or a placeholder API Gateway wrote for no value."""
    value = record.get(key)
    return None if is_placeholder(value) else value


def _string(value: Any) -> str | None:
    return value if type(value) is str else optional_string(value)


def _route_template(record: dict[str, Any]) -> str | None:
    """REST: ``resourcePath`` (``/pets/{petId}``); HTTP APIs: the path part of ``routeKey`` (``GET /pets``)."""
    template = _string(_present(record, "resourcePath"))
    if template:
        return template
    route_key = _string(_present(record, "routeKey"))
    if route_key and " " in route_key:
        return route_key.split(" ", 1)[1]
    return None


def _request_epoch_ms(record: dict[str, Any]) -> int | float:
    epoch = _present(record, "requestTimeEpoch")
    if epoch is not None:
        if isinstance(epoch, str) and epoch.isascii() and epoch.isdigit():
            epoch = int(epoch)
        if not is_number(epoch) or epoch <= 0:
            raise DecodeError("invalid_timestamp", f"requestTimeEpoch {epoch!r:.40} is not an epoch time")
        return epoch * 1000 if epoch < _SECONDS_BELOW else epoch
    text = _present(record, "requestTime")
    if text is None:
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
    if not (1 <= day <= days_in_month(year, month) and hour < 24 and minute < 60 and second < 60
            and offset_h < 24 and offset_m < 60):
        raise DecodeError("invalid_timestamp", f"requestTime {text[:40]!r} is not a real time")
    offset = (offset_h * 3600 + offset_m * 60) * (1 if sign == "+" else -1)
    seconds = ((days_since_epoch(year, month, day) * 24 + hour) * 60 + minute) * 60 + second
    return (seconds - offset) * 1000


def _add_metadata(record: dict[str, Any], metadata: dict[str, Any]) -> None:
    for key, name in _METADATA_STRINGS:
        value = _present(record, name)
        if value is not None:
            value = _string(value)
            if value:
                metadata[key] = value
    integration_latency = _present(record, "integrationLatency")
    if integration_latency is not None:
        metadata["latency_integration_ms"] = latency_ms(integration_latency, "integrationLatency",
                                                        numeric_string=True)
    size = byte_count(_present(record, "responseLength"))
    if size is not None:
        metadata["response_size"] = size
    extra = _present(record, "metadata")
    if isinstance(extra, dict):  # the Moesif template's free-form metadata object
        metadata.update({key: value for key, value in extra.items()
                         if not is_placeholder(value) and key not in metadata})
