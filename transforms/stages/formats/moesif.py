"""Moesif events, as Moesif's SDKs and middlewares send them: validated and normalized to SPEC §2.

Normalization: times to ``…sss Z`` (no zone means UTC), ``transfer_encoding: "json"`` and null optional
fields removed, header values as strings, ``direction`` ``Incoming`` and ``weight`` 1 by default.
"""
from __future__ import annotations

from typing import Any

from transforms.model.event import DIRECTIONS, InvalidTime, canonical_time
from transforms.stages.formats.common import (
    DecodeError,
    headers_map,
    is_number,
    optional_string,
    require_object,
    require_status,
    require_string,
)

FORMAT = "moesif"
MAX_WEIGHT = 2**31 - 1  # schemas/api_event.avsc: weight is an Avro int (32 bits)

_OPTIONAL_STRINGS = ("user_id", "company_id", "session_token", "subscription_id", "trace_id", "action_name")


def looks_like(record: dict[str, Any]) -> bool:
    request = record.get("request")
    return isinstance(request, dict) and "verb" in request


def decode(record: dict[str, Any]) -> dict[str, Any]:
    """One Moesif event → the same event normalized to SPEC §2 (raises DecodeError if it is not valid)."""
    request = require_object(record, "request", "request")
    event: dict[str, Any] = {"request": _side(request, "request")}
    transaction_id = optional_string(record.get("transaction_id"))
    if transaction_id:
        event["transaction_id"] = transaction_id
    response = record.get("response")
    if response is not None:
        if not isinstance(response, dict):
            raise DecodeError("invalid_type:response", "response must be an object")
        event["response"] = _side(response, "response")
        if event["response"]["time"] < event["request"]["time"]:
            raise DecodeError("invalid_timestamp", "response.time is before request.time")
    for key in _OPTIONAL_STRINGS:
        value = optional_string(record.get(key))
        if value:
            event[key] = value
    direction = record.get("direction") or "Incoming"
    if direction not in DIRECTIONS:
        raise DecodeError("invalid_type:direction", f"direction must be one of {', '.join(DIRECTIONS)}")
    event["direction"] = direction
    weight = record.get("weight", 1)
    weight = 1 if weight is None else weight
    if not is_number(weight) or not 1 <= weight <= MAX_WEIGHT or weight != int(weight):
        raise DecodeError("invalid_type:weight", f"weight must be an integer from 1 to {MAX_WEIGHT}")
    event["weight"] = int(weight)
    metadata = record.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise DecodeError("invalid_type:metadata", "metadata must be an object")
        event["metadata"] = metadata
    return event


def _side(part: dict[str, Any], name: str) -> dict[str, Any]:
    time_text = part.get("time")
    if time_text is None:
        raise DecodeError(f"missing_field:{name}.time", f"{name}.time is required")
    try:
        normalized: dict[str, Any] = {"time": canonical_time(time_text)}
    except InvalidTime as exc:
        raise DecodeError("invalid_timestamp", f"{name}.time: {exc}") from None
    if name == "request":
        normalized["uri"] = require_string(part, "uri", "request.uri")
        normalized["verb"] = require_string(part, "verb", "request.verb")
    else:
        normalized["status"] = require_status(part.get("status"), "response.status")
    normalized["headers"] = headers_map(part.get("headers"), f"{name}.headers")
    for key in ("ip_address", "api_version") if name == "request" else ():
        value = optional_string(part.get(key))
        if value:
            normalized[key] = value
    body = part.get("body")
    if body is not None:
        encoding = part.get("transfer_encoding")
        if encoding == "base64":
            if not isinstance(body, str):
                raise DecodeError(f"invalid_type:{name}.body", f"{name}.body must be a base64 string")
            normalized["transfer_encoding"] = "base64"
        elif encoding not in (None, "json"):
            raise DecodeError(f"invalid_type:{name}.transfer_encoding", "transfer_encoding must be json or base64")
        normalized["body"] = body
    return normalized
