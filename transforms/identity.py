"""Identity (SPEC §4): who made the call and which API version it used.

For each event, in order of precedence:

- ``user_id``: the configured ``user_id_header`` (request, then response headers) when present; else what
  the format's decoder found (Kong consumer, AWS ``user``/``apiKeyId``…, WSO2 ``userName``); else the
  ``authorization_user_id_field`` claim of a JWT in ``authorization_header_name``.
- ``company_id``: ``company_id_header``; else the decoder's; else the ``authorization_company_id_field``
  claim(s) of the JWT (default ``company_id``, then ``org_id``).
- ``request.api_version``: the decoder's; else ``api_version_header``; else the ``api_version`` option.

JWTs are read without verifying signatures (identity for analytics, not authentication): base64url
without padding, ``Bearer`` optional. Anything that is not a JWT (Kong's ``REDACTED``, an opaque token,
Basic credentials) is ignored, never an error. Runs before masking, which may remove these headers.
"""
from __future__ import annotations

import base64
import binascii
import functools
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import orjson
from apache_beam.metrics import Metrics

from transforms.dead_letters import DEAD_LETTER_TAG, event_failure
from transforms.names import LoweredNames
from transforms.records import SourcedEvent

_MAX_TOKEN_CHARS = 16 * 1024  # a larger "JWT" is not decoded: identity must stay cheap and bounded


@dataclass(frozen=True)
class IdentitySettings:
    user_id_header: str | None = "X-Consumer-Custom-Id"
    company_id_header: str | None = None
    authorization_header_name: tuple[str, ...] = ("Authorization",)
    authorization_user_id_field: str = "sub"
    authorization_company_id_field: tuple[str, ...] = ("company_id", "org_id")
    api_version_header: str | None = "X-Api-Version"
    api_version: str | None = None

    @functools.cached_property
    def lowered_names(self) -> LoweredNames:
        """The header-name memo shared by every lookup of this configuration."""
        return LoweredNames()


def header_value(event: dict[str, Any], name: str, lowered: LoweredNames | None = None) -> str | None:
    """A header's value, case-insensitively, from the request and then the response (SPEC §4)."""
    for side in ("request", "response"):
        headers = (event.get(side) or {}).get("headers") or {}
        if name in headers and headers[name]:
            return headers[name]
        value = _any_case_value(headers, name, lowered)
        if value:
            return value
    return None


def request_header(event: dict[str, Any], name: str, lowered: LoweredNames | None = None) -> str | None:
    """A request header's value, case-insensitively (an exact match first)."""
    headers = event["request"].get("headers") or {}
    if name in headers:
        return headers[name] or None
    return _any_case_value(headers, name, lowered)


def _any_case_value(headers: dict[str, str], name: str, lowered: LoweredNames | None) -> str | None:
    """The first non-empty value of a header whose name is ``name`` in any case."""
    wanted = name.lower()
    lowered = LoweredNames() if lowered is None else lowered
    for key, value in headers.items():
        if value and lowered[key] == wanted:
            return value
    return None


def jwt_claims(authorization: str) -> dict[str, Any] | None:
    """The payload of a JWT (``Bearer`` optional), or None when the value is not a JWT."""
    token = authorization.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    if len(token) > _MAX_TOKEN_CHARS or token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):  # orjson.JSONDecodeError is a ValueError
        return None
    return claims if isinstance(claims, dict) else None


def claim(claims: dict[str, Any], field: str) -> str | None:
    """A claim as text: exact name, else case-insensitive, else a dotted path (``user.id``)."""
    value = claims.get(field)
    if value is None:
        lowered = field.lower()
        for key, item in claims.items():
            if key.lower() == lowered:
                value = item
                break
    if value is None and "." in field:
        value = claims
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        return None
    text = str(value) if not isinstance(value, float) or not value.is_integer() else str(int(value))
    return text or None


def identify(event: dict[str, Any], settings: IdentitySettings) -> dict[str, Any]:
    """``event`` with ``user_id``, ``company_id`` and ``request.api_version`` set per SPEC §4; the input is
    not modified."""
    found: dict[str, str] = {}
    for field_name, header in (("user_id", settings.user_id_header), ("company_id", settings.company_id_header)):
        value = header_value(event, header, settings.lowered_names) if header else None
        if value:
            found[field_name] = value
    if not (found.get("user_id") or event.get("user_id")) or not (found.get("company_id") or event.get("company_id")):
        claims = _first_jwt(event, settings)
        if claims:
            if not (found.get("user_id") or event.get("user_id")):
                user_id = claim(claims, settings.authorization_user_id_field)
                if user_id:
                    found["user_id"] = user_id
            if not (found.get("company_id") or event.get("company_id")):
                for name in settings.authorization_company_id_field:
                    company_id = claim(claims, name)
                    if company_id:
                        found["company_id"] = company_id
                        break
    identified = {**event, **found} if found else event
    if not event["request"].get("api_version"):
        version = (request_header(event, settings.api_version_header, settings.lowered_names)
                   if settings.api_version_header else None) \
            or settings.api_version
        if version:
            identified = {**identified, "request": {**event["request"], "api_version": version}}
    return identified


def _first_jwt(event: dict[str, Any], settings: IdentitySettings) -> dict[str, Any] | None:
    for name in settings.authorization_header_name:
        value = request_header(event, name, settings.lowered_names)
        if value:
            return jwt_claims(value)  # the first header present decides, as in Moesif's Kong plugin
    return None


class _IdentifyFn(beam.DoFn):
    def __init__(self, settings: IdentitySettings):
        self._settings = settings
        self._with_user = Metrics.counter("gatewaystream", "events_with_user_id")
        self._with_company = Metrics.counter("gatewaystream", "events_with_company_id")

    def process(self, item: SourcedEvent):
        try:
            event = identify(item.event, self._settings)
        except Exception as exc:
            yield event_failure("identify", "identify_error", exc, item.source, item.event)
            return
        if event.get("user_id"):
            self._with_user.inc()
        if event.get("company_id"):
            self._with_company.inc()
        yield SourcedEvent(item.source, event)


class IdentifyUsers(beam.PTransform):
    """SourcedEvent → SourcedEvent with user, company and API version set, dead letters on ``dead_letters``."""

    def __init__(self, settings: IdentitySettings):
        super().__init__()
        self._settings = settings

    def expand(self, events):
        return events | beam.ParDo(_IdentifyFn(self._settings)).with_outputs(DEAD_LETTER_TAG, main="events")
