"""Per-format decoders and detection by shape.

A decoder module exposes ``FORMAT``, ``looks_like(obj)`` and ``decode(obj, fallback_transaction_id)``.
Adding a format means adding a module and listing it in ``DECODERS``.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any

from transforms.formats import kong, moesif

DECODERS: dict[str, ModuleType] = {module.FORMAT: module for module in (moesif, kong)}

# Formats SPEC §3 names that are recognised by shape but not decoded yet: their records are dead
# letters with reason `unknown_format` and a detail that says which format was seen.
_PLANNED_SHAPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("aws_apigateway", ("httpMethod", "requestId")),
    ("cloudwatch_logs", ("messageType", "logEvents")),
    ("firehose", ("requestId", "records")),
    ("wso2", ("apiMethod", "requestTimestamp")),
    ("wso2", ("correlationId", "requestTimestamp")),
    ("alf", ("har",)),
    ("alf", ("version", "entries")),
)

FORMAT_CHOICES = ("auto", *DECODERS, "aws_apigateway", "wso2", "alf")


def detect(record: dict[str, Any]) -> str | None:
    """The name of the format ``record`` has the shape of, or None."""
    for name, module in DECODERS.items():
        if module.looks_like(record):
            return name
    for name, keys in _PLANNED_SHAPES:
        if all(key in record for key in keys):
            return name
    return None
