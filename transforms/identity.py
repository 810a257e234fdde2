"""Identity (SPEC §4): who made the call. The per-format defaults are set by the decoders; this stage
applies the configured user and company headers on top, for every format.

Still to come (issue 4): JWT claims from the authorization header, `api_version` from header or option.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.dead_letters import DEAD_LETTER_TAG, event_failure
from transforms.records import SourcedEvent


@dataclass(frozen=True)
class IdentitySettings:
    user_id_header: str | None = "X-Consumer-Custom-Id"
    company_id_header: str | None = None


def header_value(event: dict[str, Any], name: str) -> str | None:
    """A header's value, case-insensitively, from the request and then the response (SPEC §4)."""
    wanted = name.lower()
    for side in ("request", "response"):
        headers = (event.get(side) or {}).get("headers") or {}
        for key, value in headers.items():
            if key.lower() == wanted and value:
                return value
    return None


def identify(event: dict[str, Any], settings: IdentitySettings) -> dict[str, Any]:
    """``event`` with ``user_id``/``company_id`` taken from the configured headers when they are present."""
    found = {}
    for field_name, header in (("user_id", settings.user_id_header), ("company_id", settings.company_id_header)):
        if header:
            value = header_value(event, header)
            if value:
                found[field_name] = value
    return {**event, **found} if found else event


class _IdentifyFn(beam.DoFn):
    def __init__(self, settings: IdentitySettings):
        self._settings = settings
        self._identified = Metrics.counter("gatewaystream", "events_with_user_id")

    def process(self, item: SourcedEvent):
        try:
            event = identify(item.event, self._settings)
        except Exception as exc:
            yield event_failure("identify", "identify_error", exc, item.source, item.event)
            return
        if event.get("user_id"):
            self._identified.inc()
        yield SourcedEvent(item.source, event)


class IdentifyUsers(beam.PTransform):
    """SourcedEvent → SourcedEvent with user and company set, dead letters on ``dead_letters``."""

    def __init__(self, settings: IdentitySettings):
        super().__init__()
        self._settings = settings

    def expand(self, events):
        return events | beam.ParDo(_IdentifyFn(self._settings)).with_outputs(DEAD_LETTER_TAG, main="events")
