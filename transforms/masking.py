"""Masking (SPEC §5): redaction before anything leaves the pipeline, failing closed.

This first version covers the rules that must hold from day one: the always-masked credential
headers and the default query-parameter masks, matched case-insensitively, every occurrence.
Still to come (issue 4): configurable header/query/body masks, typed masks, body capture switches.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.dead_letters import DEAD_LETTER_TAG, event_failure
from transforms.records import SourcedEvent

MASK = "*****"

ALWAYS_MASKED_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie", "apikey", "x-api-key")
DEFAULT_QUERY_MASKS = (
    "apikey", "api_key", "access_token", "token", "key", "password", "secret", "client_secret", "signature",
)

_QUERY_PAIR = re.compile(r"([?&;])([^=&;#]*)(=?)([^&;#]*)")


@dataclass(frozen=True)
class MaskSettings:
    """Mask lists as configured; the lower-cased name sets are built once per instance, not per event."""

    request_header_masks: tuple[str, ...] = ()
    response_header_masks: tuple[str, ...] = ()
    request_query_masks: tuple[str, ...] = ()

    @functools.cached_property
    def request_headers(self) -> frozenset[str]:
        return frozenset(name.lower() for name in (*ALWAYS_MASKED_HEADERS, *self.request_header_masks))

    @functools.cached_property
    def response_headers(self) -> frozenset[str]:
        return frozenset(name.lower() for name in (*ALWAYS_MASKED_HEADERS, *self.response_header_masks))

    @functools.cached_property
    def query_parameters(self) -> frozenset[str]:
        return frozenset(name.lower() for name in (*DEFAULT_QUERY_MASKS, *self.request_query_masks))


def mask_headers(headers: dict[str, str], masked_names: frozenset[str]) -> dict[str, str]:
    return {name: (MASK if name.lower() in masked_names else value) for name, value in headers.items()}


def mask_query(uri: str, masked_names: frozenset[str]) -> str:
    """Every occurrence of every masked parameter gets the mask as its value (names compared decoded)."""
    if "?" not in uri:
        return uri

    def replace(match: re.Match[str]) -> str:
        separator, name, equals, value = match.groups()
        if value and unquote_plus(name).lower() in masked_names:
            return f"{separator}{name}{equals}{MASK}"
        return match.group(0)

    path, _, rest = uri.partition("?")
    query, hash_sign, fragment = rest.partition("#")
    return f"{path}{_QUERY_PAIR.sub(replace, '?' + query)}{hash_sign}{fragment}"


def mask_event(event: dict[str, Any], settings: MaskSettings) -> dict[str, Any]:
    """A masked copy of ``event``; the input is not modified."""
    request = dict(event["request"])
    request["headers"] = mask_headers(request.get("headers", {}), settings.request_headers)
    request["uri"] = mask_query(request["uri"], settings.query_parameters)
    masked = {**event, "request": request}
    if event.get("response") is not None:
        response = dict(event["response"])
        response["headers"] = mask_headers(response.get("headers", {}), settings.response_headers)
        masked["response"] = response
    return masked


class _MaskFn(beam.DoFn):
    def __init__(self, settings: MaskSettings):
        self._settings = settings
        self._masked = Metrics.counter("gatewaystream", "events_masked")

    def process(self, item: SourcedEvent):
        try:
            event = mask_event(item.event, self._settings)
        except Exception as exc:
            # Fail closed: the event is never sent unmasked, and its dead letter keeps only its id.
            yield event_failure("mask", "mask_error", exc, item.source, item.event)
            return
        self._masked.inc()
        yield SourcedEvent(item.source, event)


class MaskEvents(beam.PTransform):
    """SourcedEvent → masked SourcedEvent, dead letters (``mask_error``) on ``dead_letters``."""

    def __init__(self, settings: MaskSettings):
        super().__init__()
        self._settings = settings

    def expand(self, events):
        return events | beam.ParDo(_MaskFn(self._settings)).with_outputs(DEAD_LETTER_TAG, main="events")
