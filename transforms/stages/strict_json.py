"""Strict JSON (SPEC §3): RFC 8259 in strict UTF-8, finite numbers, no duplicate keys, bounded depth.

orjson does most of it in C: it rejects NaN/Infinity, invalid UTF-8 and lone surrogates, and stops at
depth 1024. Two rules it does not enforce are added here without walking every record in Python:

- **Depth ≤ max_depth**, of the text (a duplicate key that orjson drops still counts). A text with at most
  ``max_depth`` brackets cannot nest deeper, so the exact measure runs only for texts with more brackets.
- **No duplicate keys.** orjson keeps the last duplicate silently. Every ``"`` in a JSON text is a string
  delimiter or an escaped ``\\"`` inside a string, and ``orjson.dumps`` writes each kept string with the same
  quotes. So unless the raw text spells a quote as ``\\u0022``, the parsed value dumps with exactly as many
  ``"`` as the raw text has if and only if no key was dropped (a dropped key takes its two delimiters with
  it). A text with ``\\u0022`` falls back to an exact check with the stdlib parser.

Compiled (setup.py), both rules are exact and cheaper: one C pass over the text (``_structure``) finds its
deepest nesting and counts its object members (``:`` outside strings), and a C walk of the parsed value counts
the keys orjson kept; fewer keys than members means a duplicate was dropped. The four ``bytes.count`` passes
and the ``orjson.dumps`` of the rules above cost ~9 µs per 1 KB record on this project's 2-core VM, the C pass
and walk ~2–3 µs. In CPython a loop over every byte would be the slowest part of decoding, so the source keeps
the counting rules; ``tests/test_compiled.py`` checks that both give the same answers.
"""
from __future__ import annotations

import json
import re
from typing import Any

import orjson

from transforms.model.errors import DecodeError

try:
    import cython

    _COMPILED = cython.compiled
except ImportError:  # Cython is a build dependency only
    _COMPILED = False

DEFAULT_MAX_DEPTH = 64

_NON_FINITE_TOKENS = (b"NaN", b"Infinity", b"-Infinity")
_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"{}[]")))
_OPENERS = b"{["


def loads(text: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """The value of one JSON text; raises DecodeError with a SPEC §3 reason code when it is not strict JSON."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(*_reason_of(exc, text)) from None
    if isinstance(value, (dict, list)):
        if _COMPILED and type(text) is bytes:
            deepest, members = _structure(text)
            _check_depth(deepest, max_depth)
            if _kept_members(value) != members:
                _check_duplicate_keys_exactly(text)
            return value
        if text.count(b"{") + text.count(b"[") > max_depth:
            _check_depth(_text_depth(text), max_depth)
        if not _has_no_duplicate_keys_fast(text, value):
            _check_duplicate_keys_exactly(text)
    return value


def _check_depth(deepest: int, max_depth: int) -> None:
    # The depth of the text, not of the parsed value: a duplicate key that orjson dropped still nested.
    if deepest > max_depth:
        raise DecodeError("max_depth_exceeded", f"nests {deepest} levels deep (limit {max_depth})")


def _text_depth(text: bytes) -> int:
    """The deepest nesting of a valid JSON text, in CPython: strings out (a regex), then a loop over the
    brackets alone, which are few next to the bytes."""
    brackets = _STRINGS.sub(b"", text).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        depth += 1 if byte in _OPENERS else -1
        deepest = max(deepest, depth)
    return deepest


def _structure(text: bytes) -> tuple[int, int]:
    """(deepest nesting, object members) of a text that is valid JSON; the compiled path only (module doc)."""
    depth = deepest = members = 0
    position, length = 0, len(text)
    data = text  # compiled: a C pointer to the bytes, read without bounds checks (position < length holds)
    while position < length:
        byte = data[position]
        if byte == 34:  # a string: skipped by a tighter loop, since most of a JSON text is inside strings
            position = _string_end(data, position + 1, length)
        elif byte == 58:  # colon: one object member
            members += 1
        elif byte == 123 or byte == 91:  # { [
            depth += 1
            if depth > deepest:
                deepest = depth
        elif byte == 125 or byte == 93:  # } ]
            depth -= 1
        position += 1
    return deepest, members


def _string_end(data: bytes, position: int, length: int) -> int:
    """The position of the quote that closes the string whose contents start at ``position``."""
    while position < length:
        byte = data[position]
        if byte == 34:
            break
        position += 2 if byte == 92 else 1  # a backslash escapes the next byte
    return position


def _kept_members(value: Any) -> int:
    """Keys in every object of a parsed value; its depth is already bounded, so recursion is safe."""
    count = 0
    if type(value) is dict:
        count = len(value)
        for child in value.values():
            if type(child) is dict or type(child) is list:
                count += _kept_members(child)
    else:
        for child in value:
            if type(child) is dict or type(child) is list:
                count += _kept_members(child)
    return count


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
