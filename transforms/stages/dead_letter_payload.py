"""What a read- or decode-stage dead letter keeps of its raw record: ``--dead_letter_payload=raw|masked|none``.

Such a dead letter carries the record as it came, so that it can be replayed; the record may hold API keys,
tokens and passwords, and a dead-letter store is then a secret store nobody planned as one. ``masked`` (the
default) masks the record's text as far as it can be read, with the event masks' names: every JSON member
(also JSON escaped inside a JSON string, as in a CloudWatch envelope's ``message``) whose name is a masked
header, query parameter or body field gets ``*****`` for a string or number value, and every masked query
parameter in a URL likewise. Gzip is inflated first (within the decompression budget) and the masked text is
kept uncompressed; a record that cannot be read (corrupt gzip) keeps no payload. ``raw`` keeps the record as it
came; ``none`` keeps no payload. The dead letter's ``payload_masking`` says which was applied.

The trade-off: a replay of a masked dead letter cannot recover what was masked, e.g. the user id in a masked
JWT, and its events carry ``*****`` where the record had the secret.
"""
from __future__ import annotations

import re
from typing import Any

from transforms.model.errors import DecodeError
from transforms.stages.gunzip import gunzip_layers, is_gzip
from transforms.stages.masking import MASK, MaskSettings

PAYLOAD_POLICIES = ("masked", "raw", "none")
RAW_PAYLOAD_STAGES = frozenset({"read", "decode"})  # later stages carry a masked event or only its id


class PayloadMasker:
    """Masks a raw record's text with one mask configuration; the patterns are built once."""

    def __init__(self, settings: MaskSettings):
        # The names the event masks use (headers with their --unmasked_headers exceptions, query parameters),
        # and each body mask's last name: a dotted path cannot be followed in text that may not parse.
        names = settings.request_headers.wanted | settings.response_headers.wanted | settings.query_parameters.wanted
        names |= {path.rsplit(".", 1)[-1].lower() for path in (*settings.request_body_masks,
                                                              *settings.response_body_masks)}
        alternatives = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
        # A string value may be cut off by the record's end (a truncated record): masked to the end.
        value = r'(?:"(?:[^"\\]|\\.)*(?:"|\Z)|-?[0-9][0-9.eE+-]*)'
        escaped_value = r'(?:\\"(?:[^"\\]|\\[^"])*(?:\\"|\Z)|-?[0-9][0-9.eE+-]*)'
        self._member = re.compile(rf'("(?i:{alternatives})"\s*:\s*){value}')
        self._escaped_member = re.compile(rf'(\\"(?i:{alternatives})\\"\s*:\s*){escaped_value}')
        self._query = re.compile(rf'((?:^|[?&;\s])(?i:{alternatives})=)[^&#"\s\\]*')
        self._max_decompressed_bytes = settings.max_decompressed_bytes

    def mask(self, payload: bytes) -> tuple[bytes, str]:
        """(what the dead letter keeps, how it was masked)."""
        note = "masked"
        if is_gzip(payload):
            try:
                payload, _ = gunzip_layers(payload, self._max_decompressed_bytes)
            except DecodeError as exc:
                return b"", f"withheld: {exc.reason} cannot be read to mask it"
            note = "masked (inflated from gzip)"
        # Latin-1 maps every byte to one character: any record can be read, and bytes nothing matched stay as
        # they were (the masked names and the JSON around them are ASCII).
        text = payload.decode("latin-1")
        text = self._member.sub(rf'\1"{MASK}"', text)
        text = self._escaped_member.sub(rf'\1\\"{MASK}\\"', text)
        text = self._query.sub(rf"\1{MASK}", text)
        return text.encode("latin-1"), note


def apply_payload_policy(letter: dict[str, Any], policy: str, masker: PayloadMasker | None) -> dict[str, Any]:
    """``letter`` with its payload kept, masked or dropped as ``policy`` says (read and decode stages only)."""
    if letter["stage"] not in RAW_PAYLOAD_STAGES or policy == "raw":
        return letter
    if policy == "none":
        return {**letter, "payload": b"", "payload_masking": "none"}
    assert masker is not None, "masked needs a PayloadMasker"
    payload, note = masker.mask(letter["payload"])
    return {**letter, "payload": payload, "payload_masking": note}
