"""The API event (SPEC §2): time formatting, transaction ids, validation against the Avro schema.

Events travel through the pipeline as plain dicts shaped exactly like the JSON the collector receives;
this module is the one place that knows the rules that shape must follow.
"""
from __future__ import annotations

import functools
import hashlib
import math
import re
import time
import uuid
from typing import Any

import fastavro.validation
import orjson

import schemas

try:
    import cython

    _COMPILED = cython.compiled
except ImportError:  # Cython is a build dependency only
    _COMPILED = False

# Times outside this window are treated as invalid: a Kong `started_at` written in seconds instead of
# milliseconds, or a zero, would otherwise become a plausible-looking 1970 date (SPEC §2: never invent a time).
MIN_EPOCH_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_EPOCH_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z

MAX_EVENT_BYTES = 1_000_000  # Moesif's per-event limit (SPEC §2)

# A fixed namespace so that UUIDv5 transaction ids are the same on every worker and every replay.
TRANSACTION_NAMESPACE = uuid.UUID("5d0c8a4e-2f4b-5b8e-9a3c-6f1e2d7c4b90")
# Copied, never updated: copying a hash state skips OpenSSL's per-call digest lookup (2.3 → 1.6 µs an id).
_NAMESPACE_SHA1 = hashlib.sha1(TRANSACTION_NAMESPACE.bytes)

_VARIANT_DIGITS = "89ab"
_HEX_DIGITS = b"0123456789abcdef"

DIRECTIONS = ("Incoming", "Outgoing", "Internal")

_ISO_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"(Z|z|[+-]\d{2}:?\d{2})?",
    re.ASCII,  # ISO 8601 digits are ASCII; Python's \d would also read e.g. Arabic-Indic digits
)
# ".000Z" … ".999Z": indexing a tuple is several times cheaper than formatting the number at every event.
_MILLI_SUFFIXES = tuple(f".{milli:03d}Z" for milli in range(1000))
_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", re.ASCII)


class InvalidTime(ValueError):
    """A time that cannot be turned into a real instant within [2000, 2100)."""


def round_half_up(value: float) -> int:
    """Milliseconds are rounded half-up (SPEC §2), not banker's rounding as Python's ``round`` does."""
    if type(value) is int:  # most latencies and times are whole milliseconds already
        return value
    return math.floor(value + 0.5)


def format_epoch_ms(epoch_ms: int | float) -> str:
    """``1764064800005`` → ``'2025-11-25T10:00:00.005Z'``; raises InvalidTime outside [2000, 2100)."""
    if type(epoch_ms) is int and MIN_EPOCH_MS <= epoch_ms < MAX_EPOCH_MS:  # the common case, checked cheaply
        return _time_text(epoch_ms)
    if isinstance(epoch_ms, bool) or not isinstance(epoch_ms, (int, float)) or not math.isfinite(epoch_ms):
        raise InvalidTime(f"not a finite number: {epoch_ms!r}")
    millis = epoch_ms if isinstance(epoch_ms, int) else round_half_up(epoch_ms)
    if not MIN_EPOCH_MS <= millis < MAX_EPOCH_MS:
        raise InvalidTime(f"epoch ms {millis} is outside 2000..2100")
    return _time_text(millis)


def _time_text(epoch_ms: int) -> str:
    """The SPEC §2 text of epoch ms within [2000, 2100)."""
    if _COMPILED:
        return _time_text_in_c(epoch_ms)
    return _second_text(epoch_ms // 1000) + _MILLI_SUFFIXES[epoch_ms % 1000]


def _time_text_in_c(epoch_ms: int) -> str:
    """``_time_text`` written digit by digit into a C buffer (compiled only: ~0.15 µs, where a cache miss of
    ``_second_text`` costs ~3 µs and a hit ~0.2 µs). The date is H. Hinnant's civil_from_days, the inverse of
    ``days_since_epoch``; ``tests/test_compiled.py`` checks it against the stdlib calendar."""
    days, millis = epoch_ms // 86_400_000, epoch_ms % 86_400_000
    days_since_year_0 = days + 719_468  # counted from 0000-03-01, so that a leap day ends each year
    era = days_since_year_0 // 146_097
    day_of_era = days_since_year_0 - era * 146_097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_from_march = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * month_from_march + 2) // 5 + 1
    month = month_from_march + 3 if month_from_march < 10 else month_from_march - 9
    year = era * 400 + year_of_era + (month <= 2)
    text = cython.declare(cython.char[24])
    _put_digits(text, 0, year, 4)
    text[4] = 45  # -
    _put_digits(text, 5, month, 2)
    text[7] = 45
    _put_digits(text, 8, day, 2)
    text[10] = 84  # T
    _put_digits(text, 11, millis // 3_600_000, 2)
    text[13] = 58  # :
    _put_digits(text, 14, millis // 60_000 % 60, 2)
    text[16] = 58
    _put_digits(text, 17, millis // 1000 % 60, 2)
    text[19] = 46  # .
    _put_digits(text, 20, millis % 1000, 3)
    text[23] = 90  # Z
    return text[:24].decode("ascii")


def _put_digits(text: Any, position: int, value: int, count: int) -> None:
    """``value`` as ``count`` ASCII digits at ``text[position:]``."""
    for offset in range(count - 1, -1, -1):
        text[position + offset] = 48 + value % 10
        value //= 10


@functools.lru_cache(maxsize=4096)
def _second_text(epoch_seconds: int) -> str:
    # Events arrive clustered in time, so most calls hit the cache: formatting a date is the single
    # largest cost of decoding a small record otherwise (in CPython; compiled, _time_text_in_c is cheaper).
    t = time.gmtime(epoch_seconds)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def parse_iso_ms(text: str) -> int:
    """Epoch milliseconds of an ISO 8601 time; no zone means UTC; fractions beyond ms round half-up.

    Accepts what gateways and Moesif SDKs write: missing seconds (``12:16Z``), any fraction length,
    ``Z`` or a numeric offset. Raises InvalidTime for anything else, including out-of-range fields.
    """
    if not isinstance(text, str):
        raise InvalidTime(f"not a string: {type(text).__name__}")
    millis = _parse_common_form(text)
    if millis is not None:
        return millis
    match = _ISO_RE.fullmatch(text.strip())
    if not match:
        raise InvalidTime(f"not an ISO 8601 time: {text[:64]!r}")
    year, month, day, hour, minute = map(int, match.group(1, 2, 3, 4, 5))
    second = int(match.group(6) or 0)
    fraction = match.group(7) or ""
    zone = match.group(8)
    if not (1 <= month <= 12 and 1 <= day <= days_in_month(year, month)):
        raise InvalidTime(f"no such date: {text[:64]!r}")
    if hour > 23 or minute > 59 or second > 59:
        raise InvalidTime(f"no such time of day: {text[:64]!r}")
    seconds = ((days_since_epoch(year, month, day) * 24 + hour) * 60 + minute) * 60 + second
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset_h, offset_m = int(digits[:2]), int(digits[2:])
        if offset_h > 23 or offset_m > 59:
            raise InvalidTime(f"bad zone offset: {zone!r}")
        seconds -= sign * (offset_h * 3600 + offset_m * 60)
    millis = seconds * 1000
    if fraction:
        # Integer arithmetic: 0.0005 s must round up to 1 ms exactly, which float parsing cannot promise.
        nanos = int(fraction.ljust(9, "0"))
        millis += (nanos + 500_000) // 1_000_000
    if not MIN_EPOCH_MS <= millis < MAX_EPOCH_MS:
        raise InvalidTime(f"{text[:64]!r} is outside 2000..2100")
    return millis


def canonical_time(text: Any) -> str:
    """The SPEC §2 time text of an ISO 8601 time: ``text`` itself when it already is one (what Moesif SDKs
    write), or with the ``Z`` it lacks, without parsing and formatting it again; raises InvalidTime as
    ``parse_iso_ms`` does."""
    if type(text) is str and len(text) >= 23 and _parse_common_form(text) is not None:
        return text if len(text) == 24 else text + "Z"
    return format_epoch_ms(parse_iso_ms(text))


def _parse_common_form(text: str) -> int | None:
    """``YYYY-MM-DDTHH:MM:SS`` with 3, 6 or 9 fraction digits (gateways write ms; Cloud Logging µs or ns) or none,
    or ``YYYY-MM-DDTHH:MM`` (WSO2's Java times without seconds), each with ``Z`` or no zone, within [2000, 2100) —
    what almost every record carries — read digit by digit (C integers when compiled); None: "use the general
    parser". Fractions past the millisecond round half-up, as there."""
    length = len(text)
    milli = 0
    if length >= 23 and text[19] == ".":
        count = length - (21 if text[length - 1] == "Z" else 20)
        fraction = _digits(text, 20, 20 + count) if count == 3 or count == 6 or count == 9 else -1
        if fraction < 0:
            return None
        if count == 6:
            milli = (fraction + 500) // 1000
        elif count == 9:
            milli = (fraction + 500_000) // 1_000_000
        else:
            milli = fraction
    elif not (length == 19 or length == 16 or (length == 20 and text[19] == "Z")
              or (length == 17 and text[16] == "Z")):
        return None
    if text[4] != "-" or text[7] != "-" or text[10] != "T" or text[13] != ":":
        return None
    second = 0
    if length >= 19:
        if text[16] != ":":
            return None
        second = _digits(text, 17, 19)
    year, month, day = _digits(text, 0, 4), _digits(text, 5, 7), _digits(text, 8, 10)
    hour, minute = _digits(text, 11, 13), _digits(text, 14, 16)
    if not (2000 <= year < 2100 and 1 <= month <= 12 and 1 <= day <= days_in_month(year, month)):
        return None
    if not (0 <= hour <= 23 and 0 <= minute <= 59 and 0 <= second <= 59 and milli >= 0):
        return None
    millis = (((days_since_epoch(year, month, day) * 24 + hour) * 60 + minute) * 60 + second) * 1000 + milli
    return millis if millis < MAX_EPOCH_MS else None  # .9995 of the century's last second rounds past it


def _digits(text: str, start: int, end: int) -> int:
    """The number ``text[start:end]`` spells in ASCII digits, or -1 when it is not one."""
    value = 0
    for position in range(start, end):
        digit = ord(text[position]) - 48
        if digit < 0 or digit > 9:
            return -1
        value = value * 10 + digit
    return value


def days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def days_since_epoch(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date, any year (H. Hinnant's days_from_civil)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def transaction_id_for(raw_record: bytes, index: int) -> str:
    """UUIDv5 of the raw record bytes plus the event's index in it: the same on every replay (SPEC §2)."""
    return TransactionIds(raw_record).for_index(index)


class TransactionIds:
    """The UUIDv5 ids of one raw record's events. The record's bytes are hashed once, and each event's id
    continues from a copy of that state: a 1 MiB array of 1000 events hashes 1 MiB, not 1 GiB."""

    def __init__(self, raw_record: bytes):
        self._raw_record = raw_record
        self._record_state = None

    def for_index(self, index: int) -> str:
        if self._record_state is None:
            self._record_state = _NAMESPACE_SHA1.copy()
            self._record_state.update(self._raw_record)
        hasher = self._record_state.copy()
        hasher.update(b"\x00%d" % index)
        if _COMPILED:
            return _uuid5_text_in_c(hasher.digest())
        hex_digits = hasher.hexdigest()
        # The first 16 bytes of the SHA-1, with the version (5) and the RFC 4122 variant (10xx) written in.
        variant = _VARIANT_DIGITS[int(hex_digits[16], 16) & 3]
        return (f"{hex_digits[:8]}-{hex_digits[8:12]}-5{hex_digits[13:16]}-{variant}{hex_digits[17:20]}-"
                f"{hex_digits[20:32]}")


def _uuid5_text_in_c(digest: bytes) -> str:
    """The UUID text of a SHA-1 digest's first 16 bytes with the version (5) and the RFC 4122 variant (10xx)
    written in, as ``for_index`` formats it in CPython, hex digit by hex digit into a C buffer (compiled only:
    ~0.05 µs against ~0.8 µs for ``hexdigest`` and the f-string)."""
    data = digest
    hex_digits = _HEX_DIGITS
    text = cython.declare(cython.char[36])
    position = 0
    for index in range(16):
        byte = data[index]
        if index == 6:
            byte = (byte & 0x0F) | 0x50
        elif index == 8:
            byte = (byte & 0x3F) | 0x80
        if index == 4 or index == 6 or index == 8 or index == 10:
            text[position] = 45  # -
            position += 1
        text[position] = hex_digits[byte >> 4]
        text[position + 1] = hex_digits[byte & 15]
        position += 2
    return text[:36].decode("ascii")


def serialize(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def to_avro_record(event: dict[str, Any]) -> dict[str, Any]:
    """The event in the shape of ``schemas/api_event.avsc`` (JSON bodies and metadata as JSON text)."""

    def side(part: dict[str, Any]) -> dict[str, Any]:
        record = dict(part)
        if "body" in record and record.get("transfer_encoding") != "base64":
            record["body"] = orjson.dumps(record["body"]).decode()
        return record

    record = dict(event)
    record["request"] = side(event["request"])
    if event.get("response") is not None:
        record["response"] = side(event["response"])
    if "metadata" in record:
        record["metadata"] = orjson.dumps(record["metadata"]).decode()
    return record


def validate_event(event: Any) -> list[str]:
    """Every way ``event`` breaks SPEC §2, as short messages; empty when it is a valid event."""
    if not isinstance(event, dict):
        return [f"event is a {type(event).__name__}, not an object"]
    problems: list[str] = []
    request = event.get("request")
    response = event.get("response")
    try:
        record = to_avro_record(event)
        # Checked without errors first: with raise_errors, fastavro builds (and JSON-dumps) a ValidationError for
        # every union branch that does not match, even in a valid record (~150 µs per event, 10x the check).
        if not fastavro.validation.validate(record, schemas.api_event(), raise_errors=False):
            fastavro.validation.validate(record, schemas.api_event(), raise_errors=True)
    except (fastavro.validation.ValidationError, TypeError, ValueError, KeyError, AttributeError) as exc:
        problems.append(f"does not match schemas/api_event.avsc: {str(exc)[:300]}")
        return problems
    sides = [("request", request)] + ([("response", response)] if response is not None else [])
    for name, part in sides:
        if not _TIME_RE.fullmatch(part["time"]):
            problems.append(f"{name}.time {part['time']!r} is not ISO 8601 UTC with 3 fraction digits and Z")
        encoding = part.get("transfer_encoding")
        if encoding not in (None, "base64"):
            problems.append(f"{name}.transfer_encoding must be absent or 'base64', not {encoding!r}")
        if encoding == "base64" and not isinstance(part.get("body"), str):
            problems.append(f"{name}.body must be a string when transfer_encoding is base64")
    if not request["uri"] or not request["verb"]:
        problems.append("request.uri and request.verb must not be empty")
    if response is not None:
        if not 100 <= response["status"] <= 599:
            problems.append(f"response.status {response['status']} is not in 100..599")
        if _TIME_RE.fullmatch(response["time"]) and response["time"] < request["time"]:
            problems.append("response.time is before request.time")
    if event["direction"] not in DIRECTIONS:
        problems.append(f"direction {event['direction']!r} is not one of {', '.join(DIRECTIONS)}")
    if event["weight"] < 1:
        problems.append(f"weight {event['weight']} is below 1")
    if "metadata" in event and not isinstance(event["metadata"], dict):
        problems.append("metadata must be an object")
    if not event["transaction_id"]:
        problems.append("transaction_id must not be empty")
    return problems
