"""Helpers shared by the per-format decoders: the error they raise and field readers that enforce SPEC §3."""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

from transforms.model.errors import DecodeError
from transforms.model.event import InvalidTime, format_epoch_ms, parse_iso_ms

MAX_HEADERS_PER_SIDE = 1000
MAX_INT64 = 2**63 - 1  # the largest integer that every later stage writes (orjson, Avro's long, Parquet's int64)

_NUMBER_TYPES = (int, float)  # exact types: bool is an int subclass, and JSON never yields other subclasses

_DEFAULT_PORTS = MappingProxyType({"http": 80, "https": 443})


class AsFormat(NamedTuple):
    """A part a container hands back to be decoded as the leaf format ``format``, without shape detection."""

    format: str
    value: dict


class PayloadOrEntry(NamedTuple):
    """A container's payload object, decoded by its own shape when it has one of a known format, else as
    ``otherwise`` (a GCP entry's ``jsonPayload`` when it is a gateway record, else its ``httpRequest``)."""

    payload: dict
    otherwise: AsFormat


def is_number(value: Any) -> bool:
    """Booleans are not numbers (SPEC §3), although Python says ``True`` is an ``int``."""
    return type(value) in _NUMBER_TYPES


def require_object(container: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    value = container.get(key)
    if value is None:
        raise DecodeError(f"missing_field:{path}", f"{path} is required")
    if not isinstance(value, dict):
        raise DecodeError(f"invalid_type:{path}", f"{path} must be an object, not {type(value).__name__}")
    return value


def is_placeholder(value: Any) -> bool:
    """Absent, empty or ``-``: what gateways write for a variable without a value (SPEC §3: never a value)."""
    return value is None or (type(value) is str and (value == "" or value == "-"))


def is_ascii_space(byte: int) -> bool:
    """Space, \\t \\n \\v \\f \\r: the bytes ``bytes.strip()`` removes and a bytes regex's ``\\s`` matches."""
    return byte == 32 or 9 <= byte <= 13


def require_string(container: dict[str, Any], key: str, path: str) -> str:
    value = container.get(key)
    if is_placeholder(value):
        raise DecodeError(f"missing_field:{path}", f"{path} is required")
    if not isinstance(value, str):
        raise DecodeError(f"invalid_type:{path}", f"{path} must be a string, not {type(value).__name__}")
    return value


def require_status(value: Any, path: str, numeric_string: bool = False) -> int:
    """An HTTP status: an integer 100–599 (a float like 200.0 only when whole; a numeric string only where
    the format quotes every value, as AWS access logs do)."""
    if value is None or (numeric_string and is_placeholder(value)):
        raise DecodeError(f"missing_field:{path}", f"{path} is required")
    if numeric_string and isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not is_number(value) or value != int(value) or not 100 <= value <= 599:
        raise DecodeError(f"invalid_type:{path}", f"{path} must be an integer 100-599, got {value!r:.40}")
    return int(value)


def epoch_ms_time(value: Any, path: str) -> str:
    """SPEC §2 time text of epoch milliseconds; a missing or out-of-range value is a DecodeError."""
    if value is None:
        raise DecodeError(f"missing_field:{path}", f"{path} is required")
    if not is_number(value):
        raise DecodeError(f"invalid_type:{path}", f"{path} must be epoch milliseconds, not {type(value).__name__}")
    try:
        return format_epoch_ms(value)
    except InvalidTime as exc:
        raise DecodeError("invalid_timestamp", f"{path}: {exc}") from None


def iso_time_ms(value: Any, path: str) -> int:
    """Epoch ms of an ISO 8601 time text (no zone = UTC); a missing or bad value is a DecodeError."""
    if value is None or value == "":
        raise DecodeError(f"missing_field:{path}", f"{path} is required")
    try:
        return parse_iso_ms(value)
    except InvalidTime as exc:
        raise DecodeError("invalid_timestamp", f"{path}: {exc}") from None


def latency_ms(value: Any, path: str, numeric_string: bool = False) -> float | None:
    """A latency in ms ≥ 0, or None when absent; negative or non-numeric values are a DecodeError."""
    if value is None or (numeric_string and is_placeholder(value)):
        return None
    if numeric_string and type(value) is str and _is_decimal(value):
        value = float(value)
    if not is_number(value) or not 0 <= value < 1e12:
        raise DecodeError(f"invalid_type:{path}", f"{path} must be milliseconds >= 0, got {value!r:.40}")
    return value


def _is_decimal(text: str) -> bool:
    """ASCII digits, 1 to 15 of them, and optionally a point and 1 to 9 more: a latency written as text."""
    length = len(text)
    point = text.find(".")
    whole = length if point < 0 else point
    if whole < 1 or whole > 15 or (point >= 0 and not 1 <= length - point - 1 <= 9):
        return False
    for position in range(length):  # noqa: SIM110 (a C loop when compiled; all() would build a generator)
        if position != point and not "0" <= text[position] <= "9":
            return False
    return True


def byte_count(value: Any) -> int | None:
    """A size in bytes, from a number >= 0 (truncated) or a string of ASCII digits, as gateways write both; None
    for anything else, and for a size past ``MAX_INT64``: a float such as 1.8e19 would become an integer that no
    later stage can write, so the event would fail at serialization instead of decoding without the size."""
    if type(value) is str and value.isascii() and value.isdigit():
        if len(value.lstrip("0")) > 19:  # past MAX_INT64 whatever its digits (and int() refuses over 4 300)
            return None
        value = int(value)
    elif not is_number(value) or value < 0:
        return None
    return int(value) if value <= MAX_INT64 else None


def optional_string(value: Any) -> str | None:
    """A string value, or None for absent, empty or the ``-`` placeholder (SPEC §3: never emitted as a
    value, in any format); numbers become their decimal text."""
    if type(value) is str:
        return None if is_placeholder(value) else value
    if value is None or isinstance(value, bool):
        return None
    if is_number(value):
        return str(int(value)) if float(value).is_integer() else str(value)
    return None


def headers_map(value: Any, path: str) -> dict[str, str]:
    """Gateway headers → ``{name: value}``; repeated headers (arrays) are joined with ``", "`` (SPEC §2)."""
    if not _has_headers(value, path, dict):
        return {}
    if _all_strings(value):  # the common case: every value is already text, and the map is used as it is
        return value
    headers: dict[str, str] = {}
    for name, raw in value.items():
        if isinstance(raw, list):
            parts = []
            for item in raw:
                text = _header_text(item)
                if text is not None:
                    parts.append(text)
            if parts:
                headers[name] = ", ".join(parts)
        else:
            text = _header_text(raw)
            if text is not None:
                headers[name] = text
    return headers


def _all_strings(headers: dict[str, Any]) -> bool:
    for text in headers.values():  # noqa: SIM110 (all() of a generator is an object per call; this is a C loop)
        if type(text) is not str:
            return False
    return True


def header_list_map(value: Any, path: str) -> dict[str, str]:
    """HAR-style ``[{"name", "value"}]`` headers → a map; repeated names joined with ``", "`` (SPEC §2)."""
    if not _has_headers(value, path, list):
        return {}
    headers: dict[str, str] = {}
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise DecodeError(f"invalid_type:{path}", f"{path} items must be {{name, value}} objects")
        text = _header_text(item.get("value"))
        if text is None:
            continue
        name = item["name"]
        headers[name] = f"{headers[name]}, {text}" if name in headers else text
    return headers


def _has_headers(value: Any, path: str, container: type) -> bool:
    """False when there are none; raises for the wrong container type or more than 1000 headers."""
    if value is None:
        return False
    if not isinstance(value, container):
        kind = "an object" if container is dict else "an array"
        raise DecodeError(f"invalid_type:{path}", f"{path} must be {kind}, not {type(value).__name__}")
    if len(value) > MAX_HEADERS_PER_SIDE:
        raise DecodeError("too_many_headers", f"{path} has {len(value)} headers (limit {MAX_HEADERS_PER_SIDE})")
    return True


def _header_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if value is True:  # a header present without a value
        return ""
    if is_number(value):
        return optional_string(value)
    return None


def absolute_url(value: str, path: str) -> str:
    """An absolute http(s) URL, with the scheme's default port dropped (Kong always logs ``:443``)."""
    # The common case, read character by character (C when compiled): http(s)://, a plain host, an optional
    # port, then the end or a path, query or fragment. Anything else goes to urlsplit below.
    host_start = 7 if value.startswith("http://") else 8 if value.startswith("https://") else 0
    length = len(value)
    position = host_start
    while host_start and position < length and _is_host_char(value[position]):
        position += 1
    if host_start and position > host_start:
        if position == length or value[position] in "/?#":
            return value
        if value[position] == ":":
            port_end = position + 1
            port = 0
            while port_end < length and port_end - position <= 5 and "0" <= value[port_end] <= "9":
                port = port * 10 + ord(value[port_end]) - 48
                port_end += 1
            if port_end - position in (2, 3, 4, 5, 6) and (port_end == length or value[port_end] in "/?#"):
                if port == _DEFAULT_PORTS["http" if host_start == 7 else "https"]:
                    return value[:position] + value[port_end:]
                if port <= 65535:
                    return value
    try:
        parts = urlsplit(value)
        parsed_port = parts.port
    except ValueError as exc:
        raise DecodeError(f"invalid_type:{path}", f"{path} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DecodeError(f"invalid_type:{path}", f"{path} is not an absolute http(s) URL: {value[:100]!r}")
    if parsed_port is not None and parsed_port == _DEFAULT_PORTS[parts.scheme]:
        netloc = parts.netloc.rsplit(":", 1)[0]
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return value


def _is_host_char(char: str) -> bool:
    return "a" <= char <= "z" or "A" <= char <= "Z" or "0" <= char <= "9" or char == "." or char == "-"


def first_present(*values: Any) -> str | None:
    """The first value that is a non-empty string (or a number, as text)."""
    for value in values:
        text = optional_string(value)
        if text is not None:
            return text
    return None

