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

import binascii
import functools
from dataclasses import dataclass
from typing import Any

import orjson

from transforms.stages.names import LoweredNames
from transforms.stages.shell import EventFunction, Stage

_MAX_TOKEN_CHARS = 16 * 1024  # a larger "JWT" is not decoded: identity must stay cheap and bounded
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
# A client sends the same token with every request until it expires, so decoded payloads are remembered; at most
# this many (each under _MAX_TOKEN_CHARS: ~16 MB at worst), then the memo starts over.
CLAIMS_MEMO_LIMIT = 1_000


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
    def wanted_headers(self) -> WantedHeaders:
        """Every header identify reads, found in one pass over each header map."""
        return WantedHeaders((self.user_id_header, self.company_id_header, self.api_version_header,
                              *self.authorization_header_name))

    @functools.cached_property
    def decoded_tokens(self) -> DecodedTokens:
        return DecodedTokens()


class DecodedTokens:
    """JWT payload segment → its claims (None: no claims object), for at most ``CLAIMS_MEMO_LIMIT`` payloads at a
    time. Keyed by the payload alone, so no signature, and no other credential, outlives its event here. The
    claims are shared between events: identify only reads them."""

    def __init__(self) -> None:
        self.known: dict[str, dict[str, Any] | None] = {}

    def claims(self, authorization: str) -> dict[str, Any] | None:
        payload = jwt_payload(authorization)
        if payload is None:
            return None
        if payload in self.known:
            return self.known[payload]
        if len(self.known) >= CLAIMS_MEMO_LIMIT:
            self.known.clear()
        claims = self.known[payload] = payload_claims(payload)
        return claims


class WantedHeaders:
    """Header names to look up case-insensitively, each at a fixed position of ``find``'s answer (a name
    configured twice, in any case, shares the position of its first mention; None is never found)."""

    def __init__(self, names: tuple[str | None, ...]):
        self.slots: dict[str, int] = {}  # lower-cased name → slot
        self.exact_names: list[str] = []  # each slot's first spelling, the one an exact match must have
        self.positions: list[int] = []  # each name's slot, -1 for None
        for name in names:
            if name is None:
                self.positions.append(-1)
                continue
            lowered = name.lower()
            if lowered not in self.slots:
                self.slots[lowered] = len(self.exact_names)
                self.exact_names.append(name)
            self.positions.append(self.slots[lowered])
        self.lowered = LoweredNames()

    def find(self, headers: dict[str, str]) -> list[str | None]:
        """Per slot, the header's value: the exact spelling's when it is non-empty, else the first non-empty value
        in any case (SPEC §4)."""
        found: list[str | None] = [None] * len(self.slots)
        exact = [False] * len(self.slots)
        known = self.lowered.known
        for key, value in headers.items():
            if not value:
                continue
            lowered = known.get(key)
            slot = self.slots.get(self.lowered.learn(key) if lowered is None else lowered)
            if slot is None or exact[slot]:
                continue
            if key == self.exact_names[slot]:
                found[slot] = value
                exact[slot] = True
            elif found[slot] is None:
                found[slot] = value
        return found

    def value(self, found: list[str | None], index: int) -> str | None:
        """The value found for the ``index``-th name given to the constructor."""
        slot = self.positions[index]
        return None if slot < 0 else found[slot]


def jwt_claims(authorization: str) -> dict[str, Any] | None:
    """The payload of a JWT (``Bearer`` optional), or None when the value is not a JWT."""
    payload = jwt_payload(authorization)
    return None if payload is None else payload_claims(payload)


def jwt_payload(authorization: str) -> str | None:
    """The middle (payload) segment of a JWT (``Bearer`` optional), or None when the value is not a JWT."""
    token = authorization.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    if len(token) > _MAX_TOKEN_CHARS or token.count(".") != 2:
        return None
    return token.split(".")[1]


def payload_claims(payload: str) -> dict[str, Any] | None:
    """The claims a JWT payload segment (base64url, padding optional) holds, or None when it holds no object."""
    try:
        # base64.urlsafe_b64decode, without its three Python-level calls (~0.8 µs a token): ASCII only, the URL-safe
        # alphabet mapped to the standard one, padding added, other characters discarded as b64decode does.
        standard = payload.encode("ascii").translate(_URLSAFE_TO_STANDARD) + b"=" * (-len(payload) % 4)
        claims = orjson.loads(binascii.a2b_base64(standard))
    except (binascii.Error, ValueError):  # UnicodeEncodeError and orjson.JSONDecodeError are ValueErrors
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


_USER, _COMPANY, _API_VERSION, _FIRST_AUTHORIZATION = range(4)  # positions in IdentitySettings.wanted_headers


def identify(event: dict[str, Any], settings: IdentitySettings) -> dict[str, Any]:
    """``event`` with ``user_id``, ``company_id`` and ``request.api_version`` set per SPEC §4; the input is
    not modified."""
    wanted = settings.wanted_headers
    request = event["request"]
    in_request = wanted.find(request.get("headers") or {})
    user_id = wanted.value(in_request, _USER)
    company_id = wanted.value(in_request, _COMPANY)
    if user_id is None or company_id is None:
        response = event.get("response") or {}
        in_response = wanted.find(response.get("headers") or {})
        user_id = user_id or wanted.value(in_response, _USER)
        company_id = company_id or wanted.value(in_response, _COMPANY)
    found: dict[str, str] = {}
    if user_id:
        found["user_id"] = user_id
    if company_id:
        found["company_id"] = company_id
    if not (user_id or event.get("user_id")) or not (company_id or event.get("company_id")):
        claims = _first_jwt(wanted, in_request, len(settings.authorization_header_name), settings.decoded_tokens)
        if claims:
            if not (user_id or event.get("user_id")):
                user_id = claim(claims, settings.authorization_user_id_field)
                if user_id:
                    found["user_id"] = user_id
            if not (company_id or event.get("company_id")):
                for name in settings.authorization_company_id_field:
                    company_id = claim(claims, name)
                    if company_id:
                        found["company_id"] = company_id
                        break
    identified = {**event, **found} if found else event
    if not request.get("api_version"):
        version = wanted.value(in_request, _API_VERSION) or settings.api_version
        if version:
            identified = {**identified, "request": {**request, "api_version": version}}
    return identified


def _first_jwt(wanted: WantedHeaders, in_request: list[str | None], count: int,
               tokens: DecodedTokens) -> dict[str, Any] | None:
    for index in range(_FIRST_AUTHORIZATION, _FIRST_AUTHORIZATION + count):
        value = wanted.value(in_request, index)
        if value:
            return tokens.claims(value)  # the first header present decides, as in Moesif's Kong plugin
    return None


def count_identified(event: dict[str, Any], added: dict[str, int]) -> None:
    if event.get("user_id"):
        added["events_with_user_id"] += 1
    if event.get("company_id"):
        added["events_with_company_id"] += 1


class IdentifyUsers(Stage):
    """SourcedEvent → SourcedEvent with user, company and API version set, dead letters on ``dead_letters``."""

    def __init__(self, settings: IdentitySettings):
        super().__init__(EventFunction("identify", "identify_error", identify, settings,
                                       ("events_with_user_id", "events_with_company_id"), count_identified))
