"""Avro schemas of the API event and the dead-letter record, parsed once for fastavro."""
from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import fastavro


@functools.cache
def load(name: str) -> dict[str, Any]:
    """The parsed schema ``schemas/<name>.avsc`` (``api_event`` or ``dead_letter``)."""
    text = resources.files(__name__).joinpath(f"{name}.avsc").read_text(encoding="utf-8")
    return fastavro.parse_schema(json.loads(text))


def api_event() -> dict[str, Any]:
    return load("api_event")


def dead_letter() -> dict[str, Any]:
    return load("dead_letter")
