"""Bounded gzip inflation, shared by decoding (SPEC §3) and masking (SPEC §5): one limit, one rule."""
from __future__ import annotations

import zlib

from transforms.model.errors import DecodeError

_INFLATE_CHUNK = 64 * 1024


def is_gzip(data: bytes) -> bool:
    """Whether ``data`` opens with the gzip magic number, 1f 8b (compared byte by byte: a slice is a copy)."""
    return len(data) >= 2 and data[0] == 0x1F and data[1] == 0x8B


def gunzip(data: bytes, limit: int) -> bytes:
    """Every gzip member of ``data`` inflated, in bounded steps, so that a gzip bomb is stopped at ``limit``
    bytes and never held whole. Raises DecodeError ``decompressed_size_limit_exceeded`` or ``corrupt_gzip``."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    parts: list[bytes] = []
    size = 0
    pending = data
    try:
        while pending:
            chunk = inflater.decompress(pending, _INFLATE_CHUNK)
            size += len(chunk)
            if size > limit:
                raise DecodeError("decompressed_size_limit_exceeded", f"inflates past {limit} bytes")
            parts.append(chunk)
            pending = inflater.unconsumed_tail
            if inflater.eof:
                # Concatenated gzip members are legal (`cat a.gz b.gz`): inflate the next one too.
                pending = inflater.unused_data
                if not is_gzip(pending):
                    break
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        if not inflater.eof:
            raise DecodeError("corrupt_gzip", "the gzip stream is truncated")
    except zlib.error as exc:
        raise DecodeError("corrupt_gzip", str(exc)) from None
    return b"".join(parts)


def gunzip_layers(data: bytes, limit: int) -> tuple[bytes, int]:
    """``data`` inflated for as long as it is gzip (gzip inside gzip: a shipper compressing what is already
    compressed), every layer from the one ``limit`` (SPEC §3); with the bytes all layers inflated. Each layer
    spends at least its 2-byte magic, so the loop ends. Raises as ``gunzip`` does."""
    spent = 0
    while is_gzip(data):
        data = gunzip(data, limit - spent)
        spent += len(data)
    return data, spent
