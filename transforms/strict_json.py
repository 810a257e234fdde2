"""Strict JSON (SPEC §3): RFC 8259 in strict UTF-8, finite numbers, no duplicate keys, bounded depth.

orjson does most of it in C: it rejects NaN/Infinity, invalid UTF-8 and lone surrogates, and stops at
depth 1024. Two rules it does not enforce are added here without walking every record in Python:

- **Depth ≤ max_depth.** A text with at most ``max_depth`` brackets cannot nest deeper, so the exact
  (Python) walk runs only for texts with more brackets than that.
- **No duplicate keys.** orjson keeps the last duplicate silently. Every ``"`` in a JSON text is a string
  delimiter or an escaped ``\\"`` inside a string, and ``orjson.dumps`` writes each kept string with the same
  quotes. So unless the raw text spells a quote as ``\\u0022``, the parsed value dumps with exactly as many
  ``"`` as the raw text has if and only if no key was dropped (a dropped key takes its two delimiters with
  it). A text with ``\\u0022`` falls back to an exact check with the stdlib parser.
"""
from __future__ import annotations

import json
from typing import Any

import orjson

from transforms.errors import DecodeError

DEFAULT_MAX_DEPTH = 64

_NON_FINITE_TOKENS = (b"NaN", b"Infinity", b"-Infinity")


def loads(text: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """The value of one JSON text; raises DecodeError with a SPEC §3 reason code when it is not strict JSON."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(*_reason_of(exc, text)) from None
    if isinstance(value, (dict, list)):
        if text.count(b"{") + text.count(b"[") > max_depth:
            depth = nesting_depth(value)
            if depth > max_depth:
                raise DecodeError("max_depth_exceeded", f"nests {depth} levels deep (limit {max_depth})")
        if not _has_no_duplicate_keys_fast(text, value):
            _check_duplicate_keys_exactly(text)
    return value


def nesting_depth(value: Any) -> int:
    """Levels of arrays/objects in ``value`` (a scalar is 0); iterative, so deep input cannot overflow."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _has_no_duplicate_keys_fast(text: bytes, value: Any) -> bool:
    if b"\\" in text and b"\\u0022" in text:
        return False
    return text.count(b'"') == orjson.dumps(value).count(b'"')


def _check_duplicate_keys_exactly(text: bytes) -> None:
    json.loads(text, object_pairs_hook=_reject_duplicates)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise DecodeError("duplicate_key", f"key {duplicate[:80]!r} appears more than once in one object")
    return obj


def _reason_of(exc: orjson.JSONDecodeError, text: bytes) -> tuple[str, str]:
    message = str(exc)
    lowered = message.lower()
    if "utf-8" in lowered or "surrogate" in lowered:
        return "invalid_utf8", message[:300]
    if "depth limit" in lowered:
        return "max_depth_exceeded", message[:300]
    if "infinity" in lowered or text[exc.pos:exc.pos + 9].startswith(_NON_FINITE_TOKENS) or (
        text[exc.pos - 1:exc.pos + 8].startswith(b"-Infinity")
    ):
        return "non_finite_number", f"NaN and Infinity are not JSON numbers ({message[:200]})"
    if "no digit after sign" in lowered and text[exc.pos:exc.pos + 1].strip() in (b"", b",", b"}", b"]"):
        return "invalid_json", (f"{message[:200]}: a bare '-' value, as an access-log format writes for an unquoted "
                                "variable without a value; quote the variable in the log format")
    return "invalid_json", message[:300]
