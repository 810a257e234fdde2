"""What the ingest checks in a request body before it accepts it, without Beam or a server: the encoding (gzip
inflated under a limit, so a gzip bomb is refused while inflating), that JSON is JSON, and the split of a body
too large for one broker message into several, at element boundaries.

Deeper validation (is this a Kong record, does it have a status) stays in the pipeline's decode step, which
dead-letters what it cannot read: the ingest only makes sure it never accepts a body it cannot hand on whole.
"""
from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import orjson

_INFLATE_CHUNK = 64 * 1024


class BodyRejected(Exception):
    """A body the ingest answers with ``status`` and a one-line ``reason`` (never the body itself)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def inflate(body: bytes, content_encoding: str | None, limit: int, reserve: Callable[[int], None] = lambda size: None
            ) -> bytes:
    """The body without its ``Content-Encoding`` (identity, gzip or deflate), at most ``limit`` bytes once
    inflated: checked chunk by chunk while inflating, so a bomb never reaches memory. ``reserve`` is told the
    size of every inflated chunk before it is kept (the ingest's in-flight budget; it may raise)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        if len(body) > limit:
            raise BodyRejected(413, f"the body is {len(body)} bytes (limit {limit})")
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise BodyRejected(415, f"Content-Encoding {encoding!r:.40} is not gzip, deflate or identity")
    window = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(window)
    parts: list[bytes] = []
    size = 0
    pending = body
    try:
        while pending:
            part = inflater.decompress(pending, _INFLATE_CHUNK)
            size += len(part)
            if size > limit:
                raise BodyRejected(413, f"the body inflates past {limit} bytes")
            reserve(len(part))
            parts.append(part)
            pending = inflater.unconsumed_tail
        tail = inflater.flush()
    except zlib.error as exc:
        raise BodyRejected(400, f"the body is not valid {encoding}: {exc}") from None
    if not inflater.eof:
        raise BodyRejected(400, f"the {encoding} body is cut short")
    if size + len(tail) > limit:
        raise BodyRejected(413, f"the body inflates past {limit} bytes")
    reserve(len(tail))
    parts.append(tail)
    return b"".join(parts)


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
