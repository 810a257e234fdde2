"""Masking (SPEC §5): redaction before anything leaves the pipeline, failing closed.

What Moesif's Kong plugin gets wrong and this module does not (``reference/moesif.md`` §2.4): names are
matched case-insensitively everywhere (headers, query parameters, body fields); every occurrence of a
query parameter is masked, by exact name, not by substring; masking replaces the value with ``*****``
and keeps the field (redaction, never deletion); bodies that arrive base64 or gzip are decoded when they
hold JSON so that body masks reach them; and any error while masking dead-letters the event
(``mask_error``) instead of sending it unmasked.

Order for each event: capture switches and ``send_headers``; header masks; query masks (in
``request.uri`` and in every URL-like string of ``metadata``); body decoding, size limits and body masks;
typed field masks (``IPV4``, ``IPV6``, ``EMAIL``, ``STRING``, ``HASH``).
"""
from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import ipaddress
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote_plus

import orjson

from transforms.model.errors import DecodeError
from transforms.stages import strict_json
from transforms.stages.gunzip import gunzip, is_gzip
from transforms.stages.names import LoweredNames, MatchedNames
from transforms.stages.shell import EventFunction, Stage

MASK = "*****"

ALWAYS_MASKED_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie", "apikey", "x-api-key")
DEFAULT_QUERY_MASKS = (
    "apikey", "api_key", "access_token", "token", "key", "password", "secret", "client_secret", "signature",
)
SAFE_HEADERS = frozenset({"content-type", "content-length", "user-agent", "accept"})  # kept when send_headers=false
MASK_TYPES = ("IPV4", "IPV6", "EMAIL", "STRING", "HASH")
# Typed-mask fields, with the WSO2 `[apim.analytics.mask]` names as aliases.
FIELD_ALIASES = MappingProxyType({
    "ip_address": "ip_address", "userIp": "ip_address",
    "user_id": "user_id", "userName": "user_id", "userId": "user_id",
    "company_id": "company_id",
    "user_agent": "user_agent", "userAgent": "user_agent",
    "applicationOwner": "metadata.application_owner",
})


class MaskConfigError(ValueError):
    """A mask setting that cannot work (unknown type or field, HASH without a salt)."""


@dataclass(frozen=True)
class MaskSettings:
    """Every mask setting; the lower-cased name sets are built once per instance, not per event."""

    request_header_masks: tuple[str, ...] = ()
    response_header_masks: tuple[str, ...] = ()
    request_query_masks: tuple[str, ...] = ()
    request_body_masks: tuple[str, ...] = ()
    response_body_masks: tuple[str, ...] = ()
    unmasked_headers: tuple[str, ...] = ()  # explicit exceptions to ALWAYS_MASKED_HEADERS
    field_masks: tuple[tuple[str, str], ...] = ()  # (field, type), e.g. ("ip_address", "IPV4")
    hash_salt: str | None = field(default=None, repr=False)  # never logged
    disable_capture_request_body: bool = False
    disable_capture_response_body: bool = False
    send_headers: bool = True
    request_max_body_size_limit: int = 100_000
    response_max_body_size_limit: int = 100_000
    max_decompressed_bytes: int = 10 * 1024 * 1024

    def __post_init__(self) -> None:
        for name, kind in self.field_masks:
            if kind not in MASK_TYPES:
                raise MaskConfigError(f"field_masks: {name}: unknown mask type {kind!r} "
                                      f"(one of {', '.join(MASK_TYPES)})")
            if name not in FIELD_ALIASES and not name.startswith("metadata."):
                raise MaskConfigError(f"field_masks: unknown field {name!r} (one of {', '.join(FIELD_ALIASES)}, "
                                      "or metadata.<key>)")
            if kind == "HASH" and not self.hash_salt:
                raise MaskConfigError(f"field_masks: {name}: HASH needs a salt (--hash_salt or "
                                      "$GATEWAYSTREAM_HASH_SALT): an unsalted hash of an IP or a name is reversible")

    @functools.cached_property
    def request_headers(self) -> MatchedNames:
        return self._header_names(self.request_header_masks)

    @functools.cached_property
    def response_headers(self) -> MatchedNames:
        return self._header_names(self.response_header_masks)

    def _header_names(self, configured: tuple[str, ...]) -> MatchedNames:
        allowed = {name.lower() for name in self.unmasked_headers}
        always = {name for name in ALWAYS_MASKED_HEADERS if name not in allowed}
        return MatchedNames(frozenset(always | {name.lower() for name in configured}))

    @functools.cached_property
    def query_parameters(self) -> MatchedNames:
        return MatchedNames(frozenset(name.lower() for name in (*DEFAULT_QUERY_MASKS, *self.request_query_masks)))

    @functools.cached_property
    def request_body(self) -> _BodyMasks:
        return _BodyMasks(self.request_body_masks)

    @functools.cached_property
    def response_body(self) -> _BodyMasks:
        return _BodyMasks(self.response_body_masks)

    @functools.cached_property
    def typed_fields(self) -> tuple[tuple[str, str], ...]:
        return tuple((FIELD_ALIASES.get(name, name), kind) for name, kind in self.field_masks)


class _BodyMasks:
    """Body field names (any depth) and dotted paths (from the body's root), matched case-insensitively."""

    def __init__(self, masks: tuple[str, ...]):
        self.names = frozenset(mask.lower() for mask in masks if "." not in mask)
        self.paths = tuple(tuple(part.lower() for part in mask.split(".")) for mask in masks if "." in mask)
        self.hits = MatchedNames(self.names)
        self.lowered = LoweredNames()

    def __bool__(self) -> bool:
        return bool(self.names or self.paths)

    def apply(self, body: Any, size: _SizeBound | None = None) -> Any:
        """``body`` masked (a copy of each object or array where anything changed); ``size``, when given, gets
        an upper bound of the serialized size of ``body`` (before masking) added to it."""
        return _mask_fields(body, self.hits, self.lowered, self.paths, _SizeBound() if size is None else size)


class _SizeBound:
    """A running upper bound of ``len(orjson.dumps(value))`` over the values a walk visits.

    The body size limit (SPEC §5) is checked on the body as serialized, and serializing a 2 KB body costs
    ~4 µs, as much as walking it to mask it. The mask walk visits every member anyway, so it adds up a bound
    on the way: a string takes at most 6 bytes per character (``\\u001f``) and its quotes, a number at most
    24 characters (orjson writes 64-bit integers and shortest-repr floats; JSON parsing gives no other),
    ``true``/``false``/``null`` at most 5, and each member or item a comma and a colon. Only a body whose
    bound passes the limit is serialized to measure it exactly."""

    def __init__(self) -> None:
        self.total = 0


def mask_headers(headers: dict[str, str], masked_names: frozenset[str] | MatchedNames) -> dict[str, str]:
    hits = masked_names if isinstance(masked_names, MatchedNames) else MatchedNames(masked_names)
    known = hits.known
    masked = dict(headers)  # a copy even when nothing is masked: typed masks (user_agent) write into it
    for name in headers:
        hit = known.get(name)
        if hit or (hit is None and hits.learn(name)):
            masked[name] = MASK
    return masked


def mask_query(uri: str, masked_names: frozenset[str] | MatchedNames) -> str:
    """Every occurrence of every masked parameter gets the mask as its value (names compared decoded).

    Parameters are separated by ``&`` or ``;``. The query is read character by character (C when compiled) and
    the result built only when a value is masked: splitting it into pairs and joining them cost ~2 µs a URL."""
    question = uri.find("?")
    if question < 0:
        return uri
    end = uri.find("#", question)
    if end < 0:
        end = len(uri)
    hits = masked_names if isinstance(masked_names, MatchedNames) else MatchedNames(masked_names)
    known = hits.known
    pieces = None  # the masked URI's parts, once a value is masked
    copied = 0  # uri[:copied] is in pieces
    start = question + 1
    while start < end:
        stop, equals = start, -1
        while stop < end:
            char = uri[stop]
            if char == "&" or char == ";":
                break
            if char == "=" and equals < 0:
                equals = stop
            stop += 1
        if 0 <= equals < stop - 1:  # a name and a value
            name = uri[start:equals]
            if "%" in name or "+" in name:
                hit = unquote_plus(name).lower() in hits.wanted
            else:
                hit = known.get(name)
                if hit is None:
                    hit = hits.learn(name)
            if hit:
                if pieces is None:
                    pieces = []
                pieces.append(uri[copied:equals + 1])
                pieces.append(MASK)
                copied = stop
        start = stop + 1
    if pieces is None:
        return uri
    pieces.append(uri[copied:])
    return "".join(pieces)


def typed_mask(value: str, kind: str, salt: str | None = None) -> str:
    """WSO2's typed masks plus HASH; a value that does not fit its type is masked whole (fail closed)."""
    if kind == "HASH":
        if not salt:
            raise MaskConfigError("HASH needs a salt")
        return hmac.new(salt.encode(), value.encode(), hashlib.sha256).hexdigest()
    if kind == "IPV4":
        octets = value.split(".")
        if len(octets) == 4 and all(octet.isascii() and octet.isdigit() for octet in octets):
            return f"{octets[0]}.{octets[1]}.***.{octets[3]}"
    elif kind == "IPV6":
        try:
            segments = ipaddress.IPv6Address(value).exploded.split(":")
        except ValueError:
            return MASK
        return ":".join(segments[:3] + ["****"] * 4 + segments[7:])
    elif kind == "EMAIL":
        local, at, domain = value.rpartition("@")
        if at and local and domain:
            return f"{MASK}@{domain}"
    return MASK


def mask_event(event: dict[str, Any], settings: MaskSettings) -> dict[str, Any]:
    """A masked copy of ``event``; the input is not modified."""
    masked = dict(event)
    # A copy even when the event has none: a dropped body is flagged in metadata (SPEC §2).
    metadata = dict(event["metadata"]) if isinstance(event.get("metadata"), dict) else {}
    request = masked["request"] = _mask_side(event["request"], "request", settings, settings.request_headers,
                                             settings.request_body, metadata)
    request["uri"] = mask_query(request["uri"], settings.query_parameters)
    if event.get("response") is not None:
        masked["response"] = _mask_side(event["response"], "response", settings, settings.response_headers,
                                        settings.response_body, metadata)
    if metadata or "metadata" in event:
        masked["metadata"] = _mask_urls(metadata, settings.query_parameters)
    for name, kind in settings.typed_fields:
        _apply_typed_mask(masked, name, kind, settings.hash_salt)
    return masked


def _mask_side(
    side: dict[str, Any],
    name: str,
    settings: MaskSettings,
    header_names: MatchedNames,
    body_masks: _BodyMasks,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    part = dict(side)
    headers = part.get("headers") or {}
    if not settings.send_headers:
        headers = {key: value for key, value in headers.items() if key.lower() in SAFE_HEADERS}
    part["headers"] = mask_headers(headers, header_names)
    if "body" not in part:
        return part
    capture_disabled = (settings.disable_capture_request_body if name == "request"
                        else settings.disable_capture_response_body)
    limit = settings.request_max_body_size_limit if name == "request" else settings.response_max_body_size_limit
    if capture_disabled:
        _drop_body(part)
        return part
    if part.get("transfer_encoding") == "base64":
        _decode_json_body(part, settings.max_decompressed_bytes)
    body = masked_body = part["body"]
    if part.get("transfer_encoding") == "base64":
        size = _base64_size(body)
    elif body_masks:
        bound = _SizeBound()
        masked_body = body_masks.apply(body, bound)
        size = bound.total if bound.total <= limit else len(orjson.dumps(body))  # see _SizeBound
    else:
        size = len(orjson.dumps(body))
    if size > limit:
        _drop_body(part)
        metadata[f"{name}_body_dropped_bytes"] = size
        return part
    part["body"] = masked_body
    return part


def _drop_body(part: dict[str, Any]) -> None:
    part.pop("body", None)
    part.pop("transfer_encoding", None)


def _decode_json_body(part: dict[str, Any], max_decompressed_bytes: int) -> None:
    """A base64 (optionally gzip) body that holds strict JSON becomes that JSON, so body masks reach it."""
    try:
        raw = base64.b64decode(part["body"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        return
    if is_gzip(raw):
        try:
            raw = gunzip(raw, max_decompressed_bytes)
        except DecodeError:
            return  # too large, truncated or corrupt to inspect: it stays base64, and the size limit applies to it
    if raw[:1] not in (b"{", b"["):
        return
    try:
        part["body"] = strict_json.loads(raw)
    except DecodeError:
        return
    del part["transfer_encoding"]


def _base64_size(body: Any) -> int:
    """Decoded bytes of a base64 body (what the gateway saw), without decoding it."""
    if not isinstance(body, str):
        return len(orjson.dumps(body))
    return len(body) * 3 // 4 - body[-2:].count("=")


def _mask_fields(value: Any, hits: MatchedNames, lowered: LoweredNames, paths: tuple[tuple[str, ...], ...],
                 size: _SizeBound) -> Any:
    """``value`` with every field whose name ``hits`` masked at any depth, and every field at one of the dotted
    ``paths`` (lower-cased, from ``value``; arrays on the way apply to each element); copy on write. One walk
    for both: each body is visited once whatever the number of masks. ``size`` gets the bound of ``value``."""
    if type(value) is dict:
        return _mask_object(value, hits, lowered, paths, size)
    if type(value) is list:
        return _mask_array(value, hits, lowered, paths, size)
    size.total += _size_bound(value)
    return value


def _mask_object(value: dict[str, Any], hits: MatchedNames, lowered: LoweredNames,
                 paths: tuple[tuple[str, ...], ...], size: _SizeBound) -> dict[str, Any]:
    copy = None
    known_hits, known_lowered = hits.known, lowered.known
    size.total += 2 + len(value)  # braces and a separator a member
    for key, child in value.items():
        size.total += 6 * len(key) + 3  # its quotes and the colon
        hit = known_hits.get(key)
        if hit is None:
            hit = hits.learn(key)
        below = paths
        if paths and not hit:
            lowered_key = known_lowered.get(key)
            below = _paths_below(lowered.learn(key) if lowered_key is None else lowered_key, paths)
        if hit or below is None:
            new = MASK
            size.total += _size_bound(child)
        elif type(child) is dict:
            new = _mask_object(child, hits, lowered, below, size)
        elif type(child) is list:
            new = _mask_array(child, hits, lowered, below, size)
        else:
            size.total += _size_bound(child)
            continue
        if new is not child:
            if copy is None:
                copy = dict(value)
            copy[key] = new
    return value if copy is None else copy


def _mask_array(value: list[Any], hits: MatchedNames, lowered: LoweredNames,
                paths: tuple[tuple[str, ...], ...], size: _SizeBound) -> list[Any]:
    copy = None
    size.total += 2 + len(value)  # brackets and a comma an item
    for position, child in enumerate(value):
        if type(child) is dict:
            new = _mask_object(child, hits, lowered, paths, size)
        elif type(child) is list:
            new = _mask_array(child, hits, lowered, paths, size)
        else:
            size.total += _size_bound(child)
            continue
        if new is not child:
            if copy is None:
                copy = list(value)
            copy[position] = new
    return value if copy is None else copy


def _size_bound(value: Any) -> int:
    """An upper bound of ``len(orjson.dumps(value))`` (``_SizeBound`` says why it holds)."""
    kind = type(value)
    if kind is str:
        return 6 * len(value) + 2
    if kind is int or kind is float:
        return 24
    if value is None or kind is bool:
        return 5
    if kind is dict:  # the same terms as _mask_object adds
        total = 2 + len(value)
        for key, child in value.items():
            total += 6 * len(key) + 3 + _size_bound(child)
        return total
    if kind is list:  # the same terms as _mask_array adds
        total = 2 + len(value)
        for child in value:
            total += _size_bound(child)
        return total
    return len(orjson.dumps(value))  # anything else is measured (and what orjson cannot write raises here)


def _paths_below(name: str, paths: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...] | None:
    """The rest of each path that goes through a field called ``name`` (lower-cased), or None when a path ends
    at that field (it is masked whole)."""
    below = ()
    for path in paths:
        if path[0] == name:
            if len(path) == 1:
                return None
            below = (*below, path[1:])
    return below


def _mask_urls(value: Any, masked_names: MatchedNames) -> Any:
    """Query masks in every string of ``metadata`` that carries a query (upstream URIs, destinations); copy on
    write, like the body masks."""
    if isinstance(value, str):
        return mask_query(value, masked_names) if "?" in value else value
    if isinstance(value, (dict, list)):
        is_dict = isinstance(value, dict)
        copy = None
        for key, child in (value.items() if is_dict else enumerate(value)):
            new = _mask_urls(child, masked_names)
            if new is not child:
                if copy is None:
                    copy = dict(value) if is_dict else list(value)
                copy[key] = new
        return value if copy is None else copy
    return value


def _apply_typed_mask(event: dict[str, Any], name: str, kind: str, salt: str | None) -> None:
    if name == "ip_address":
        value = event["request"].get("ip_address")
        if isinstance(value, str):
            event["request"]["ip_address"] = typed_mask(value, kind, salt)
    elif name in ("user_id", "company_id"):
        if isinstance(event.get(name), str):
            event[name] = typed_mask(event[name], kind, salt)
    elif name == "user_agent":
        for side in ("request", "response"):
            headers = (event.get(side) or {}).get("headers") or {}
            for key, value in headers.items():
                if key.lower() == "user-agent" and value != MASK:
                    headers[key] = typed_mask(value, kind, salt)
        _apply_typed_mask(event, "metadata.user_agent", kind, salt)
    elif name.startswith("metadata.") and isinstance(event.get("metadata"), dict):
        parent = event["metadata"] = dict(event["metadata"])
        *parents, leaf = name.split(".")[1:]
        for key in parents:
            if not isinstance(parent.get(key), dict):
                return
            parent[key] = dict(parent[key])
            parent = parent[key]
        value = parent.get(leaf)
        if value is not None and not isinstance(value, (dict, list)):
            parent[leaf] = typed_mask(str(value), kind, salt)
        elif value is not None:
            parent[leaf] = MASK


def count_masked(event: dict[str, Any], added: dict[str, int]) -> None:
    added["events_masked"] += 1


class MaskEvent(EventFunction):
    """Masks each event (SPEC §5); an exception while masking dead-letters the event (``mask_error``)
    with only its transaction id as payload: it is never sent unmasked."""

    def __init__(self, settings: MaskSettings):
        super().__init__("mask", "mask_error", mask_event, settings, ("events_masked",), count_masked)


class MaskEvents(Stage):
    """SourcedEvent → masked SourcedEvent, dead letters (``mask_error``) on ``dead_letters``."""

    def __init__(self, settings: MaskSettings):
        super().__init__(MaskEvent(settings))
