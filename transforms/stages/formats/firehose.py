"""Amazon Data Firehose HTTP-endpoint delivery bodies (formats.md §B.3): ``records[].data`` is base64.

Each record's data is decoded like a record of its own (an access-log line, or a gzip CloudWatch Logs
envelope when Firehose decompression is off); a record that is not base64 dead-letters alone.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any

from transforms.stages.formats.common import DecodeError

MARKER_KEY = "records"  # present in every record of this shape
FORMAT = "firehose"


def looks_like(record: dict[str, Any]) -> bool:
    return "records" in record and "requestId" in record and "httpMethod" not in record


def is_control_message(body: dict[str, Any]) -> bool:
    return False


def unwrap(body: dict[str, Any]) -> list[tuple[str, bytes | DecodeError]]:
    """(``record=N``, the record's bytes or why it has none) for each record of one delivery request."""
    records = body.get("records")
    if not isinstance(records, list):
        raise DecodeError("invalid_type:records", "records must be an array")
    payloads: list[tuple[str, bytes | DecodeError]] = []
    for position, record in enumerate(records):
        label = f"record={position}"
        data = record.get("data") if isinstance(record, dict) else None
        if not isinstance(data, str):
            payloads.append((label, DecodeError("missing_field:records.data", "a record has no data string")))
            continue
        try:
            payloads.append((label, base64.b64decode(data, validate=True)))
        except (binascii.Error, ValueError):
            payloads.append((label, DecodeError("invalid_base64", "records.data is not base64")))
    return payloads
