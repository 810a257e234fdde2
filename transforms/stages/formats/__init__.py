"""Per-format decoders, in the order ``transforms/stages/decode.py`` tries their shapes.

A leaf format module exposes ``FORMAT``, ``looks_like(obj)`` and ``decode(obj) -> event`` (the event has a
``transaction_id`` only when the format carries the gateway's own request id), and optionally
``split(obj)`` when one object holds several events (ALF). A container module (``CONTAINERS``) exposes
``looks_like``, ``is_control_message`` and ``unwrap(obj)``, which yields its parts: the bytes of an inner
record (decoded like a record of its own), an inner object (decoded by its shape), an ``AsFormat`` (decoded
as that leaf format), a ``PayloadOrEntry``, or the ``DecodeError`` of a part that is broken; and optionally
``transaction_seed(obj)``, the bytes its events' fallback transaction ids derive from instead of the
record's. Adding a format means adding a module and listing it here.
"""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType, ModuleType

from transforms.stages.formats import (
    alf,
    aws_apigateway,
    cloudwatch_logs,
    firehose,
    gcp_endpoints,
    gcp_http_request,
    gcp_logging,
    kong,
    moesif,
    wso2,
)

# Detection order matters only where shapes could overlap: each module's looks_like checks keys that
# the formats before it do not have.
DECODERS: Mapping[str, ModuleType] = MappingProxyType(
    {module.FORMAT: module for module in (moesif, kong, aws_apigateway, wso2, alf, gcp_endpoints, gcp_http_request)})
CONTAINERS: Mapping[str, ModuleType] = MappingProxyType(
    {module.FORMAT: module for module in (cloudwatch_logs, firehose, gcp_logging)})

SPLITTERS = MappingProxyType({name: module.split for name, module in DECODERS.items() if hasattr(module, "split")})
FORMAT_CHOICES = ("auto", *DECODERS, *CONTAINERS)
