"""The route of every event (``metadata.route``): the method-free path template people group calls by, such as
``/v1/orders/{id}``.

Where it comes from, first match wins:

1. a user template (``--route_templates``, e.g. ``/v1/users/{user}/cards/{card}``) whose segments match the path:
   a ``{name}`` segment matches any one segment, any other segment only itself;
2. the gateway, when it knows the template: AWS API Gateway's ``resourcePath`` / ``routeKey``
   (``metadata.route_template``), or a ``metadata.route`` the event already carries (a Moesif event);
3. inference from the path. Each segment, percent-decoded, that is an integer, a UUID, a ULID, a hex string of 8
   or more characters with a digit, a base64url token of 20 or more characters with a digit, an email address or a
   date (``2026-11-25``, ``2026-11-25T10:00:00Z``) becomes ``{id}`` — one placeholder for every kind, so that
   ``/v1/orders/42`` and ``/v1/orders/6f1c…`` group together. A segment already written as a template
   (``{id}``, as WSO2's ``apiResourceTemplate`` is) stays as it is. A segment that does not percent-decode, or is
   longer than 100 characters, is ``{id}`` too.

Kong's ``route.paths`` are prefixes or regular expressions, not templates, and ESP's ``api_method`` is an
operation name, not a path: for both, the route is inferred from the path (their names stay in
``metadata.route_name`` and ``metadata.api_method``). The query string and fragment never belong to a route; a
URI that is not a path still gets one (empty → ``/``, ``*`` stays ``*``, an absolute URL gives its path).

**Cardinality bound.** Ids inference does not recognise (``/v1/users/alice``) would give a route per value. A
``Router`` counts the distinct literal segments it has seen after each route prefix; once a prefix has had more
than ``max_routes_per_prefix``, every further new segment there becomes ``{id}``. The count is per ``Router``
(one per decode worker), so the bound holds per worker; routes already emitted keep their names. At most
``MAX_TRACKED_PREFIXES`` prefixes are tracked; past that, a new literal segment under an untracked prefix
becomes ``{id}`` too, so memory stays bounded whatever the traffic.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

PLACEHOLDER = "{id}"
MAX_TRACKED_PREFIXES = 10_000
MAX_SEGMENT_CHARS = 100
MAX_CACHED_PATHS = 20_000

_TEMPLATE_NAME = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}")
_HEX = re.compile(r"[0-9a-fA-F]{8,}")
_TOKEN = re.compile(r"[A-Za-z0-9_\-]{20,}")
_EMAIL = re.compile(r"[^@\s/]+@[^@\s/]+\.[^@\s/]+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?")
_DIGIT = re.compile(r"\d")
_LETTER = re.compile(r"[A-Za-z]")


class RouteTemplateError(ValueError):
    """A ``--route_templates`` entry that cannot be parsed."""


@dataclass(frozen=True)
class RouteSettings:
    """User templates and the cardinality bound; see ``--route_templates`` and ``--max_routes_per_prefix``."""

    templates: tuple[str, ...] = ()
    max_routes_per_prefix: int = 100


def parse_template(text: str) -> tuple[str | None, ...]:
    """A template's segments: the literal text, or None for a ``{name}``; raises RouteTemplateError."""
    if not text.startswith("/"):
        raise RouteTemplateError(f"route template {text!r} does not start with '/'")
    if "?" in text or "#" in text:
        raise RouteTemplateError(f"route template {text!r} has a query or fragment")
    names: set[str] = set()
    segments: list[str | None] = []
    for segment in text[1:].split("/"):
        if "{" in segment or "}" in segment:
            if not _TEMPLATE_NAME.fullmatch(segment):
                raise RouteTemplateError(f"route template {text!r}: segment {segment!r} is not a whole {{name}}")
            if segment in names:
                raise RouteTemplateError(f"route template {text!r} names {segment} twice")
            names.add(segment)
            segments.append(None)
        else:
            segments.append(segment)
    return tuple(segments)


def route_path(uri: str) -> str:
    """The path of a request URI, without query and fragment; ``/`` for an empty one."""
    if uri == "*":
        return "*"
    scheme_end = uri.find("://")
    if scheme_end > 0 and "/" not in uri[:scheme_end]:
        path_start = uri.find("/", scheme_end + 3)
        uri = uri[path_start:] if path_start >= 0 else "/"
    for mark in ("?", "#"):
        cut = uri.find(mark)
        if cut >= 0:
            uri = uri[:cut]
    if not uri:
        return "/"
    return uri if uri[0] == "/" else "/" + uri


def is_id_segment(segment: str) -> bool:
    """Whether one path segment (percent-encoded as sent) is an id rather than a name; rules in the docstring."""
    length = len(segment)
    if length > MAX_SEGMENT_CHARS:
        return True
    if "%" in segment:
        try:
            segment = unquote(segment, errors="strict")
        except UnicodeDecodeError:
            return True
        length = len(segment)
    if length < 8:  # shorter than every pattern but a number ("v1", "me", "orders" are names)
        return length > 0 and segment.isascii() and segment.isdigit()
    if "@" in segment:
        return _EMAIL.fullmatch(segment) is not None
    if _DIGIT.search(segment) is None:
        return False
    if segment.isascii() and segment.isdigit():
        return True
    return bool(_UUID.fullmatch(segment) or _DATE.fullmatch(segment) or _ULID.fullmatch(segment)
                or _HEX.fullmatch(segment) or (_TOKEN.fullmatch(segment) and _LETTER.search(segment)))


class Router:
    """Routes for a stream of events, with the per-prefix cardinality bound (state: the segments seen)."""

    def __init__(self, settings: RouteSettings = RouteSettings()):
        self._templates = tuple((parse_template(text), text) for text in settings.templates)
        self._limit = settings.max_routes_per_prefix
        self._seen: dict[str, set[str]] = {}
        self._full: set[str] = set()
        # A path's inferred route never changes once given (admitted segments stay admitted, full prefixes stay
        # full), so it is remembered; cleared when it holds MAX_CACHED_PATHS.
        self._inferred: dict[str, str] = {}

    def route(self, event: dict[str, Any]) -> str:
        metadata = event.get("metadata")
        path = route_path(event["request"]["uri"])
        if self._templates:
            matched = self._user_template(path)
            if matched is not None:
                return matched
        if isinstance(metadata, dict):
            known = metadata.get("route")
            if not (type(known) is str and known.startswith("/")) and metadata.get("gateway") == "aws_apigateway":
                known = metadata.get("route_template")
            if type(known) is str and known.startswith("/"):
                return known
        if path == "*" or path == "/":
            return path
        inferred = self._inferred.get(path)
        if inferred is None:
            if len(self._inferred) >= MAX_CACHED_PATHS:
                self._inferred.clear()
            inferred = self._inferred[path] = self._infer(path)
        return inferred

    def _user_template(self, path: str) -> str | None:
        segments = path[1:].split("/")
        for template, text in self._templates:
            if len(template) == len(segments) and all(
                    (expected is None and actual) or expected == actual
                    for expected, actual in zip(template, segments, strict=True)):
                return text
        return None

    def _infer(self, path: str) -> str:
        route_segments: list[str] = []
        prefix = ""
        for segment in path[1:].split("/"):
            if _TEMPLATE_NAME.fullmatch(segment) is None and (
                    is_id_segment(segment) or (segment and not self._admit(prefix, segment))):
                segment = PLACEHOLDER
            route_segments.append(segment)
            prefix = f"{prefix}/{segment}"
        return "/" + "/".join(route_segments)

    def _admit(self, prefix: str, segment: str) -> bool:
        """Whether a literal segment may stay literal after ``prefix`` (the cardinality bound)."""
        if prefix in self._full:
            return segment in self._seen[prefix]
        seen = self._seen.get(prefix)
        if seen is None:
            if len(self._seen) >= MAX_TRACKED_PREFIXES:
                return False
            seen = self._seen[prefix] = set()
        if segment in seen:
            return True
        if len(seen) >= self._limit:
            self._full.add(prefix)
            return False
        seen.add(segment)
        return True


def add_route(event: dict[str, Any], router: Router) -> None:
    """Sets ``metadata.route`` of a freshly decoded event (in place: nothing else holds the event yet)."""
    metadata = event.get("metadata")
    if isinstance(metadata, dict):
        metadata["route"] = router.route(event)
    else:
        event["metadata"] = {"route": router.route(event)}
