"""ALF — Mashape's API Log Format 0.0.1, 1.0.0, 1.1.0 and 2.0.0 (HAR based; formats.md §D).

One ALF document holds many entries; ``split`` turns it into one element per entry (so a bad entry
dead-letters alone) and ``decode`` turns an element into an event. Version differences handled:
the client IP is on the root in 1.0.0 and on the entry otherwise; 2.0.0 has no ``har`` and logs the URL
without its query, which is rebuilt from ``queryString``; 0.0.1 times carry no zone (UTC); ``time`` may be
fractional. The ``serviceToken`` is a credential and is never copied.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import quote

from transforms.model.event import format_epoch_ms, round_half_up
from transforms.stages import strict_json
from transforms.stages.formats.common import (
    DecodeError,
    absolute_url,
    epoch_ms_time,
    header_list_map,
    iso_time_ms,
    latency_ms,
    optional_string,
    require_object,
    require_status,
    require_string,
)

FORMAT = "alf"

_CREDENTIAL_OR_ENTRIES = frozenset({"serviceToken", "service", "har", "entries"})


def looks_like(record: dict[str, Any]) -> bool:
    if isinstance(record.get("har"), dict):
        return True
    return isinstance(record.get("entries"), list) and ("service" in record or "version" in record)


def split(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(``entry=N``, a one-entry ALF document) for each entry: the entry with the root fields it needs
    (version, root client IP, environment), minus the service token, so a dead-lettered entry replays alone."""
    _, entries = _root_and_entries(document)
    return [(f"entry={position}", _one_entry_document(document, entry)) for position, entry in enumerate(entries)]


def decode(document: dict[str, Any]) -> dict[str, Any]:
    """A one-entry ALF document (from ``split``) → one API event; raises DecodeError naming the broken field."""
    root, entries = _root_and_entries(document)
    if len(entries) != 1:
        raise DecodeError("invalid_type:entries", "decode() takes a one-entry document from split()")
    entry = entries[0]
    if not isinstance(entry, dict):
        raise DecodeError("not_an_object", f"an ALF entry is a {type(entry).__name__}")
    version = optional_string(document.get("version")) or "0.0.1"
    request = require_object(entry, "request", "entry.request")
    response = require_object(entry, "response", "entry.response")
    verb = require_string(request, "method", "entry.request.method")
    uri = absolute_url(require_string(request, "url", "entry.request.url"), "entry.request.url")
    if version.startswith("2.") and "?" not in uri:
        uri += _query_string(request.get("queryString"))
    status = require_status(response.get("status"), "entry.response.status")
    started_ms = iso_time_ms(entry.get("startedDateTime"), "entry.startedDateTime")
    metadata: dict[str, Any] = {"gateway": "alf", "alf_version": version}
    latency = latency_ms(entry.get("time"), "entry.time")
    if latency is None:
        metadata["latency_unknown"] = True
        latency = 0

    request_side: dict[str, Any] = {
        "time": format_epoch_ms(started_ms), "uri": uri, "verb": verb,
        "headers": header_list_map(request.get("headers"), "entry.request.headers"),
    }
    response_side: dict[str, Any] = {
        "time": epoch_ms_time(started_ms + round_half_up(latency), "entry.time"), "status": status,
        "headers": header_list_map(response.get("headers"), "entry.response.headers"),
    }
    _copy_body(request.get("content") or request.get("postData"), request, "entry.request", request_side)
    _copy_body(response.get("content"), response, "entry.response", response_side)
    ip_address = optional_string(entry.get("clientIPAddress")) or optional_string(document.get("clientIPAddress"))
    if ip_address:
        request_side["ip_address"] = ip_address
    environment = optional_string(root.get("environment"))
    if environment:
        metadata["environment"] = environment
    server_ip = optional_string(entry.get("serverIPAddress"))
    if server_ip:
        metadata["server_ip_address"] = server_ip
    return {"request": request_side, "response": response_side, "direction": "Incoming", "weight": 1,
            "metadata": metadata}


def _root_and_entries(document: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """The object holding ``environment`` (the root, or 2.0's ``service``) and the entries, validated."""
    if "har" in document:
        log = require_object(require_object(document, "har", "har"), "log", "har.log")
        entries, root, path = log.get("entries"), document, "har.log.entries"
    else:
        service = document.get("service")
        entries, root, path = document.get("entries"), service if isinstance(service, dict) else {}, "entries"
    if entries is None:
        raise DecodeError(f"missing_field:{path}", f"{path} is required")
    if not isinstance(entries, list):
        raise DecodeError(f"invalid_type:{path}", f"{path} must be an array")
    if not entries:
        raise DecodeError("empty_input", f"{path} is empty")
    return root, entries


def _one_entry_document(document: dict[str, Any], entry: Any) -> dict[str, Any]:
    single = {key: value for key, value in document.items() if key not in _CREDENTIAL_OR_ENTRIES}
    if "har" in document:
        log = {key: value for key, value in document["har"]["log"].items() if key != "entries"}
        single["har"] = {"log": log | {"entries": [entry]}}
    else:
        if isinstance(document.get("service"), dict):
            single["service"] = {key: value for key, value in document["service"].items() if key != "token"}
        single["entries"] = [entry]
    return single


def _query_string(value: Any) -> str:
    """ALF 2.0 logs the URL without its query: rebuild ``?a=1&b=2`` from ``[{name, value}]``, in order."""
    if not value:
        return ""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise DecodeError("invalid_type:entry.request.queryString", "queryString must be [{name, value}]")
    pairs = []
    for item in value:
        name = optional_string(item.get("name"))
        if name is None:
            raise DecodeError("invalid_type:entry.request.queryString", "a queryString item has no name")
        pairs.append(f"{quote(name, safe='')}={quote(optional_string(item.get('value')) or '', safe='')}")
    return "?" + "&".join(pairs)


def _copy_body(content: Any, part: dict[str, Any], path: str, side: dict[str, Any]) -> None:
    """HAR ``content``/``postData`` → body: base64 stays base64, strict JSON text becomes JSON, other text base64."""
    if part.get("bodyCaptured") is False or not isinstance(content, dict):
        return
    text = content.get("text")
    if text is None or text == "":
        return
    if not isinstance(text, str):
        raise DecodeError(f"invalid_type:{path}.content.text", "content.text must be a string")
    if content.get("encoding") == "base64":
        try:
            base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise DecodeError("invalid_base64", f"{path} body is marked base64 but is not") from None
        side["body"] = text
        side["transfer_encoding"] = "base64"
        return
    try:
        side["body"] = strict_json.loads(text.encode())
    except DecodeError:
        side["body"] = base64.b64encode(text.encode()).decode()
        side["transfer_encoding"] = "base64"
