"""Helpers shared by the per-format decoders: the error they raise and field readers that enforce SPEC §3."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

MAX_HEADERS_PER_SIDE = 1000

_DEFAULT_PORTS = {"http": 80, "https": 443}


class DecodeError(Exception):
    """A record (or one element of it) that breaks the contract; ``reason`` is a stable code (SPEC §3)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def is_number(value: Any) -> bool:
    """Booleans are not numbers (SPEC §3), although Python says ``True`` is an ``int``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def require_object(container: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    value = container.get(key)
    if value is None:
        raise DecodeError(f"missing_field:{path}", f"{path} is required")
    if not isinstance(value, dict):
        raise DecodeError(f"invalid_type:{path}", f"{path} must be an object, not {type(value).__name__}")
    return value


def require_string(container: dict[str, Any], key: str, path: str) -> str:
    value = container.get(key)
    if value is None or value == "":
        raise DecodeError(f"missing_field:{path}", f"{path} is required")
    if not isinstance(value, str):
        raise DecodeError(f"invalid_type:{path}", f"{path} must be a string, not {type(value).__name__}")
    return value


def require_status(value: Any, path: str) -> int:
    """An HTTP status: an integer 100–599 (a float like 200.0 is accepted only when it is whole)."""
    if value is None:
        raise DecodeError(f"missing_field:{path}", f"{path} is required")
    if not is_number(value) or value != int(value) or not 100 <= value <= 599:
        raise DecodeError(f"invalid_type:{path}", f"{path} must be an integer 100-599, got {value!r:.40}")
    return int(value)


def optional_string(value: Any) -> str | None:
    """A string value, or None for absent/empty; numbers become their decimal text."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value or None
    if is_number(value):
        return str(int(value)) if float(value).is_integer() else str(value)
    return None


def headers_map(value: Any, path: str) -> dict[str, str]:
    """Gateway headers → ``{name: value}``; repeated headers (arrays) are joined with ``", "`` (SPEC §2)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DecodeError(f"invalid_type:{path}", f"{path} must be an object, not {type(value).__name__}")
    if len(value) > MAX_HEADERS_PER_SIDE:
        raise DecodeError("too_many_headers", f"{path} has {len(value)} headers (limit {MAX_HEADERS_PER_SIDE})")
    headers: dict[str, str] = {}
    for name, raw in value.items():
        if isinstance(raw, list):
            parts = [text for text in (_header_text(item) for item in raw) if text is not None]
            if parts:
                headers[name] = ", ".join(parts)
        else:
            text = _header_text(raw)
            if text is not None:
                headers[name] = text
    return headers


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
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise DecodeError(f"invalid_type:{path}", f"{path} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DecodeError(f"invalid_type:{path}", f"{path} is not an absolute http(s) URL: {value[:100]!r}")
    if port is not None and port == _DEFAULT_PORTS[parts.scheme]:
        netloc = parts.netloc.rsplit(":", 1)[0]
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return value


def first_present(*values: Any) -> str | None:
    """The first value that is a non-empty string (or a number, as text)."""
    for value in values:
        text = optional_string(value)
        if text is not None:
            return text
    return None
