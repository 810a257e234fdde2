"""De-aggregation of Kinesis Producer Library (KPL) records.

A KPL-aggregated Kinesis record is ``MAGIC + AggregatedRecord (protobuf) + MD5(AggregatedRecord)``; each
``AggregatedRecord.records[i].data`` is one user record. The format: github.com/awslabs/amazon-kinesis-producer
(aggregation-format.md). As every KPL consumer does (KCL, awslabs' aws-kinesis-agg), a record whose magic or
digest does not match is a plain record: a plain record may start with the magic bytes by chance.

Why not awslabs' ``aws-kinesis-agg`` package (the tests use its aggregator to write records): its
de-aggregator inserts itself into ``sys.path`` on import and prints and skips a record it cannot split
instead of raising. The wire format is small enough to read here, with only what de-aggregation needs.
"""
from __future__ import annotations

import hashlib

MAGIC = b"\xf3\x89\x9a\xc2"
_DIGEST_BYTES = 16
_RECORDS_FIELD = 3  # AggregatedRecord.records
_DATA_FIELD = 3  # Record.data
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


class KplFormatError(ValueError):
    """A record with the KPL magic and a valid digest whose protobuf cannot be read."""


def _varint(buffer: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(buffer) or shift > 63:
            raise KplFormatError("truncated or overlong varint")
        byte = buffer[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def _fields(buffer: memoryview):
    """(field number, wire type, value) of each field; a length-delimited value is a memoryview."""
    position = 0
    while position < len(buffer):
        key, position = _varint(buffer, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            value, position = _varint(buffer, position)
        elif wire_type == _LENGTH_DELIMITED:
            length, position = _varint(buffer, position)
            if position + length > len(buffer):
                raise KplFormatError("a field runs past the end of the record")
            value, position = buffer[position:position + length], position + length
        elif wire_type in (_FIXED64, _FIXED32):
            width = 8 if wire_type == _FIXED64 else 4
            value, position = buffer[position:position + width], position + width
        else:
            raise KplFormatError(f"unsupported protobuf wire type {wire_type}")
        if position > len(buffer):
            raise KplFormatError("a field runs past the end of the record")
        yield number, wire_type, value


def is_aggregated(data: bytes) -> bool:
    if len(data) <= len(MAGIC) + _DIGEST_BYTES or not data.startswith(MAGIC):
        return False
    message = data[len(MAGIC):-_DIGEST_BYTES]
    return hashlib.md5(message).digest() == data[-_DIGEST_BYTES:]  # noqa: S324 - the format's checksum


def user_records(data: bytes) -> list[bytes]:
    """The user records inside ``data``: several for a KPL-aggregated record, else ``[data]`` itself."""
    if not is_aggregated(data):
        return [data]
    message = memoryview(data)[len(MAGIC):-_DIGEST_BYTES]
    records = []
    for number, wire_type, value in _fields(message):
        if number != _RECORDS_FIELD:
            continue
        if wire_type != _LENGTH_DELIMITED:
            raise KplFormatError("AggregatedRecord.records is not a message")
        payloads = [bytes(field) for field_number, field_type, field in _fields(value)
                    if field_number == _DATA_FIELD and field_type == _LENGTH_DELIMITED]
        if len(payloads) != 1:
            raise KplFormatError("a user record without exactly one data field")
        records.append(payloads[0])
    return records
