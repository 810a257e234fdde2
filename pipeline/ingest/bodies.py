"""What the ingest checks in a request body before it accepts it, without Beam or a server: the encoding (gzip
inflated under a limit, so a gzip bomb is refused while inflating), that JSON is JSON, and the split of a body
too large for one broker message into several, at element boundaries.

Deeper validation (is this a Kong record, does it have a status) stays in the pipeline's decode step, which
dead-letters what it cannot read: the ingest only makes sure it never accepts a body it cannot hand on whole.
"""
from __future__ import annotations

from typing import Any

import orjson

from transforms.model.errors import DecodeError
from transforms.stages.gunzip import gunzip


class BodyRejected(Exception):
    """A body the ingest answers with ``status`` and a one-line ``reason`` (never the body itself)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def inflate(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body without its ``Content-Encoding`` (identity or gzip), at most ``limit`` bytes once inflated: checked
    while inflating (``transforms/stages/gunzip.py``), so a gzip bomb never reaches memory."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        if len(body) > limit:
            raise BodyRejected(413, f"the body is {len(body)} bytes (limit {limit})")
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise BodyRejected(415, f"Content-Encoding {encoding!r:.40} is not gzip or identity")
    try:
        return gunzip(body, limit)
    except DecodeError as exc:
        if exc.reason == "decompressed_size_limit_exceeded":
            raise BodyRejected(413, f"the body inflates past {limit} bytes") from None
        raise BodyRejected(400, f"the body is not valid gzip: {exc.detail[:120]}") from None


def parse_json(body: bytes) -> Any:
    """The body's JSON value; a body that is not JSON is a 400 naming where it breaks."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyRejected(400, f"the body is not JSON: {str(exc)[:120]}") from None


def json_object_or_array(body: bytes, what: str) -> Any:
    """A JSON object or an array of objects (the pipeline reads both), else a 400."""
    value = parse_json(body)
    if isinstance(value, dict):
        return value
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return value
    raise BodyRejected(400, f"{what} must be a JSON object or a non-empty array of objects")


def split_array(items: list[Any], limit: int) -> list[bytes]:
    """``items`` as JSON arrays of at most ``limit`` bytes each, cut only between elements; one element too
    large alone is a 413 (no message could carry it)."""
    chunks: list[bytes] = []
    current: list[bytes] = []
    size = 2  # the brackets
    for item in items:
        encoded = orjson.dumps(item)
        if len(encoded) + 2 > limit:
            raise BodyRejected(413, f"one element is {len(encoded)} bytes, more than a broker message holds "
                                    f"({limit})")
        if current and size + len(encoded) + 1 > limit:
            chunks.append(b"[" + b",".join(current) + b"]")
            current, size = [], 2
        size += len(encoded) + (1 if current else 0)
        current.append(encoded)
    if current:
        chunks.append(b"[" + b",".join(current) + b"]")
    return chunks


def messages_for(body: bytes, value: Any, limit: int) -> list[bytes]:
    """The broker messages of an accepted JSON body: the body itself when it fits, else its array split."""
    if len(body) <= limit:
        return [body]
    if isinstance(value, list):
        return split_array(value, limit)
    raise BodyRejected(413, f"the JSON object is {len(body)} bytes, more than a broker message holds ({limit})")


def firehose_messages(request_id: str, records: list[Any], limit: int) -> list[bytes]:
    """A Firehose delivery as messages the pipeline's ``firehose`` container reads: the request's records split
    into bodies ``{"requestId", "records"}`` of at most ``limit`` bytes."""
    overhead = len(orjson.dumps({"requestId": request_id, "records": []}))
    messages = []
    for chunk in split_array(records, limit - overhead + 2):
        messages.append(b'{"requestId":' + orjson.dumps(request_id) + b',"records":' + chunk + b"}")
    return messages
