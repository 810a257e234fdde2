"""CloudWatch Logs subscription envelopes (formats.md §B.2): the container AWS access logs usually arrive in.

The envelope is gzip JSON (the gzip is undone before this module sees it); each ``logEvents[].message``
is one access-log line holding JSON in a string. ``CONTROL_MESSAGE`` envelopes are health checks: they
yield nothing and are counted, never dead-lettered.
"""
from __future__ import annotations

from typing import Any

from transforms.stages.formats.common import DecodeError

MARKER_KEY = "logEvents"  # present in every record of this shape
FORMAT = "cloudwatch_logs"


def looks_like(record: dict[str, Any]) -> bool:
    return "messageType" in record and "logEvents" in record


def is_control_message(envelope: dict[str, Any]) -> bool:
    return envelope.get("messageType") == "CONTROL_MESSAGE"


def unwrap(envelope: dict[str, Any]) -> list[tuple[str, bytes | DecodeError]]:
    """(``logEvent=N``, the line's bytes or the reason it has none) for each log event of a data message."""
    if envelope.get("messageType") != "DATA_MESSAGE":
        raise DecodeError("invalid_type:messageType", f"messageType {envelope.get('messageType')!r:.40} is not "
                          "DATA_MESSAGE or CONTROL_MESSAGE")
    log_events = envelope.get("logEvents")
    if not isinstance(log_events, list):
        raise DecodeError("invalid_type:logEvents", "logEvents must be an array")
    lines: list[tuple[str, bytes | DecodeError]] = []
    for position, log_event in enumerate(log_events):
        label = f"logEvent={position}"
        message = log_event.get("message") if isinstance(log_event, dict) else None
        if isinstance(message, str):
            lines.append((label, message.encode()))
        else:
            lines.append((label, DecodeError("missing_field:logEvents.message", "a log event has no message text")))
    return lines
