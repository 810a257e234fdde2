"""Hostile input (SPEC §3 strict input and limits): each is one dead letter with its reason code, and
rejecting it takes bounded memory."""
import base64
import gzip
import tracemalloc
import zlib

import orjson
import pytest

from tests.test_decode import KONG_39
from transforms.model.records import RawRecord
from transforms.stages.decode import DecodeSettings, decode_record

MIB = 1024 * 1024


def reasons(raw: bytes, **settings) -> list[str]:
    result = decode_record(RawRecord(raw, "pubsub:gateway#id=1"), DecodeSettings(**settings))
    assert result.events == []
    return [letter["reason"] for letter in result.dead_letters]


def peak_memory_of(work) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def gzip_bomb(inflated_bytes: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * MIB
    parts = [compressor.compress(block) for _ in range(inflated_bytes // MIB)]
    return b"".join(parts) + compressor.flush()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"a": NaN}', "non_finite_number"),
        (b'{"a": [1, -Infinity]}', "non_finite_number"),
        (b'{"a": 1e400}', "non_finite_number"),
        (b'{"request": {"method": "GET"}, "request": {"method": "POST"}}', "duplicate_key"),
        (b'{"a": {"b": 1, "c": {"d": 2, "d": 3}}}', "duplicate_key"),
        (b'{\n  "a": 1,\n  "a": 1\n}', "duplicate_key"),  # pretty-printed: the exact (slow) check
        (b'{"a\\u0022": 1, "a\\"": 2}', "duplicate_key"),  # the same key spelled two ways
        (b'{"a": "\xc3\x28"}', "invalid_utf8"),
        (b'{"a": "\\ud800"}', "invalid_utf8"),  # a lone surrogate escape has no UTF-8 form
        (b"[" * 65 + b"]" * 65, "max_depth_exceeded"),
        (b"[" * 10_000 + b"]" * 10_000, "max_depth_exceeded"),
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "max_depth_exceeded"),
        (b"\x1f\x8b\x08\x00garbage", "corrupt_gzip"),
        (b"\xff\xfe{}", "invalid_utf8"),
        (b'"just a string"', "not_an_object"),
        (b"true", "not_an_object"),
    ],
)
def test_strict_json_rejections(raw, reason):
    assert reasons(raw) == [reason]


def test_nesting_up_to_the_limit_is_accepted():
    record = orjson.loads(orjson.dumps(KONG_39))
    deep: dict = {}
    node = deep
    for _ in range(60):  # the record itself is 2 levels: 62 < 64
        node["x"] = {}
        node = node["x"]
    record["deep"] = deep
    result = decode_record(RawRecord(orjson.dumps(record), "s"))
    assert result.dead_letters == [] and len(result.events) == 1


def test_too_many_headers_and_record_too_large():
    record = orjson.loads(orjson.dumps(KONG_39))
    record["request"]["headers"] = {f"x-h{n}": "v" for n in range(1001)}
    assert reasons(orjson.dumps(record)) == ["too_many_headers"]
    assert reasons(b'{"a": "' + b"x" * (2 * MIB) + b'"}') == ["record_too_large"]


def test_64_mib_gzip_bomb_is_stopped_while_inflating():
    bomb = gzip_bomb(64 * MIB)
    assert len(bomb) < 100_000  # it fits well within max_record_bytes
    outcome: list[list[str]] = []
    peak = peak_memory_of(lambda: outcome.append(reasons(bomb)))
    assert outcome == [["decompressed_size_limit_exceeded"]]
    assert peak < 11 * MIB  # the 10 MiB limit plus one inflate step, never the 64 MiB
    small_limit_peak = peak_memory_of(lambda: reasons(bomb, max_decompressed_bytes=MIB))
    assert small_limit_peak < 2 * MIB  # the bound follows the option


def test_10000_deep_nesting_is_rejected_in_bounded_memory():
    deep = b"[" * 10_000 + b"]" * 10_000
    peak = peak_memory_of(lambda: reasons(deep))
    assert peak < MIB


def test_decompression_budget_is_shared_by_nested_gzip_layers():
    six_mib_line = gzip.compress(b" " * (6 * MIB) + orjson.dumps(KONG_39))
    body = {"requestId": "r", "records": [{"data": base64.b64encode(six_mib_line).decode()}] * 2}
    result = decode_record(RawRecord(orjson.dumps(body), "s"), DecodeSettings(max_record_bytes=4 * MIB))
    assert len(result.events) == 1  # the first fits in the 10 MiB budget; the second would pass it
    assert [letter["reason"] for letter in result.dead_letters] == ["decompressed_size_limit_exceeded"]


def test_gzip_inside_gzip_is_inflated_layer_by_layer():
    record = orjson.dumps(KONG_39)
    twice, thrice = gzip.compress(gzip.compress(record)), gzip.compress(gzip.compress(gzip.compress(record)))
    for nested in (twice, thrice):
        result = decode_record(RawRecord(nested, "s"))
        assert result.dead_letters == [] and len(result.events) == 1
        assert result.events[0].event == decode_record(RawRecord(record, "s")).events[0].event


def test_every_gzip_layer_spends_the_one_decompression_budget():
    inner = gzip.compress(b" " * (3 * MIB) + orjson.dumps(KONG_39))  # ~3 KB inflating to 3 MiB
    within = DecodeSettings(max_decompressed_bytes=6 * MIB)
    assert len(decode_record(RawRecord(gzip.compress(inner), "s"), within).events) == 1
    [letter] = decode_record(RawRecord(gzip.compress(gzip.compress(inner)), "s"),
                             DecodeSettings(max_decompressed_bytes=3 * MIB)).dead_letters
    assert letter["reason"] == "decompressed_size_limit_exceeded"  # 3 MiB + the outer layers' bytes
    assert letter["payload"] == gzip.compress(gzip.compress(inner))  # the record as it came, for a replay


def test_one_record_cannot_hold_more_than_max_elements():
    lines = b"\n".join(orjson.dumps(KONG_39 | {"started_at": 1795600000000 + n}) for n in range(30))
    result = decode_record(RawRecord(lines, "s"), DecodeSettings(max_elements=25))
    assert len(result.events) == 25
    [letter] = result.dead_letters
    assert (letter["reason"], letter["payload"]) == ("record_too_large", lines)
    assert "nothing after s#line=26 was decoded" in letter["detail"]
    flood = gzip.compress(b"{}\n" * 3_000_000)  # 9 MB of empty objects: 3 million dead letters otherwise
    result = decode_record(RawRecord(flood, "s"))
    assert len(result.dead_letters) == 50_001
    assert result.dead_letters[-1]["reason"] == "record_too_large"
