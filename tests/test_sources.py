"""Splitting newline-delimited files into records, across read-chunk boundaries."""
import io

import pytest

from transforms.io import sources
from transforms.io.sources import chunks, is_line_delimited, records_of_file, split_lines
from transforms.model.records import RawRecord


@pytest.fixture(params=[1 << 20, 7, 1], ids=["1MiB-chunks", "7-byte-chunks", "1-byte-chunks"])
def chunk_size(request, monkeypatch):
    monkeypatch.setattr(sources, "_READ_CHUNK", request.param)
    return request.param


def test_numbers_every_line_and_skips_blank_ones(chunk_size):
    data = b'{"a":1}\n\n{"b":2}\r\n  \n{"c":3}'
    assert list(split_lines(io.BytesIO(data), 100)) == [(1, b'{"a":1}'), (3, b'{"b":2}'), (5, b'{"c":3}')]


def test_a_too_long_line_is_cut_and_the_next_lines_keep_their_numbers(chunk_size):
    data = b"short\n" + b"x" * 50 + b"\nafter\n" + b"y" * 30
    assert list(split_lines(io.BytesIO(data), 20)) == [
        (1, b"short"),
        (2, b"x" * 21),  # cut to limit + 1 bytes, so the decoder rejects it as record_too_large
        (3, b"after"),
        (4, b"y" * 21),
    ]


def test_file_kinds():
    assert [is_line_delimited(p) for p in ("a.jsonl", "a.ndjson.gz", "a.log", "a.json", "a.json.gz")] == [
        True, True, True, False, False]
    [whole] = list(records_of_file("x.json", io.BytesIO(b"[1,\n2]"), 100))
    assert (whole.data, whole.source) == (b"[1,\n2]", "file:x.json")
    assert [r.source for r in records_of_file("x.jsonl", io.BytesIO(b"1\n2\n"), 100)] == [
        "file:x.jsonl#line=1", "file:x.jsonl#line=2"]


def test_chunks_keep_every_record_in_order_and_close_on_count_or_bytes():
    records = [RawRecord(b"x" * size, f"s#{n}") for n, size in enumerate([3, 3, 3, 9, 1, 1, 1, 1, 20])]
    cut = list(chunks(iter(records), max_records=3, max_bytes=10))
    assert [[record.source for record in chunk.records] for chunk in cut] == [
        ["s#0", "s#1", "s#2"],  # three records
        ["s#3", "s#4"],  # 9 + 1 bytes; one more would pass 10
        ["s#5", "s#6", "s#7"],
        ["s#8"],  # larger than max_bytes alone: a chunk of its own, never dropped
    ]
    assert list(chunks(iter([]))) == []
