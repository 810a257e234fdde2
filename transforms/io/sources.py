"""Sources: raw gateway records from files (bounded, for replays and dry runs) or Pub/Sub (streaming).

File rules (SPEC §3): ``*.jsonl``, ``*.ndjson``, ``*.log`` and their ``.gz`` give one record per line;
dead-letter files (``*.avro``) give back each dead letter's payload, so a dead-letter directory can be
replayed with ``--input``; any other file is one record.
"""
from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
import fastavro
from apache_beam.io import fileio
from apache_beam.io.gcp.pubsub import PubsubMessage, ReadFromPubSub
from apache_beam.metrics import Metrics

from transforms.model.records import RawRecord, RecordChunk

LINE_DELIMITED_SUFFIXES = (".jsonl", ".ndjson", ".log")
DEAD_LETTER_SUFFIX = ".avro"
_READ_CHUNK = 1024 * 1024
# A RecordChunk's size: at most this many records (measured on 90 000 Kong records to --output, 3-4 interleaved
# runs each: 1 record 11.5 s, 8 9.6 s, 16 8.9 s, 32 9.3 s, 64 9.8 s, 256 9.9 s, 1024 10.1 s; a larger chunk's
# events no longer fit the CPU's cache when the later steps take them) and at most this many bytes of records
# (one record alone may exceed it).
CHUNK_RECORDS = 16
CHUNK_BYTES = 1024 * 1024


def is_line_delimited(path: str) -> bool:
    name = path[:-3] if path.endswith(".gz") else path
    return name.endswith(LINE_DELIMITED_SUFFIXES)


def split_lines(handle, max_line_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for each non-empty line; a line longer than ``max_line_bytes`` is cut to
    ``max_line_bytes + 1`` bytes (so the decoder rejects it as too large) and the rest is skipped
    without being held in memory."""
    pending = b""  # the unfinished last line of the chunks read so far
    line_number = 0
    skipping = False  # inside a line already yielded cut; its remainder is dropped
    while chunk := handle.read(_READ_CHUNK):
        buffer = pending + chunk
        # Scan with an offset: re-slicing the buffer after each line would copy the rest of the chunk
        # once per line.
        start = 0
        while (newline := buffer.find(b"\n", start)) >= 0:
            line = buffer[start:newline]
            start = newline + 1
            line_number += 1
            if skipping:
                skipping = False
            elif line.strip():
                yield line_number, line.rstrip(b"\r")[: max_line_bytes + 1]
        pending = b"" if skipping else buffer[start:]
        if len(pending) > max_line_bytes:
            # Numbered when its newline arrives (above), not here as well.
            yield line_number + 1, pending[: max_line_bytes + 1]
            skipping = True
            pending = b""
    if pending.strip():
        yield line_number + 1, pending.rstrip(b"\r")[: max_line_bytes + 1]


def records_of_file(path: str, handle, max_record_bytes: int) -> Iterator[RawRecord]:
    """The records of one opened (already decompressed) file."""
    if path.endswith(DEAD_LETTER_SUFFIX):
        for index, letter in enumerate(fastavro.reader(handle)):
            yield RawRecord(letter["payload"], f"file:{path}#record={index}")
    elif is_line_delimited(path):
        for line_number, line in split_lines(handle, max_record_bytes):
            yield RawRecord(line, f"file:{path}#line={line_number}")
    else:
        yield RawRecord(handle.read(max_record_bytes + 1), f"file:{path}")


def chunks(records: Iterator[RawRecord], max_records: int = CHUNK_RECORDS,
           max_bytes: int = CHUNK_BYTES) -> Iterator[RecordChunk]:
    """``records`` in order, cut into chunks of at most ``max_records`` records and ``max_bytes`` bytes."""
    chunk: list[RawRecord] = []
    size = 0
    for record in records:
        if chunk and (len(chunk) == max_records or size + len(record.data) > max_bytes):
            yield RecordChunk(chunk)
            chunk, size = [], 0
        chunk.append(record)
        size += len(record.data)
    if chunk:
        yield RecordChunk(chunk)


class _ReadFileRecordsFn(beam.DoFn):
    def __init__(self, max_record_bytes: int):
        self._max_record_bytes = max_record_bytes
        self._files = Metrics.counter("gatewaystream", "files_read")

    def process(self, readable: fileio.ReadableFile):
        self._files.inc()
        path = readable.metadata.path
        # Avro files carry their own compression; everything else is decompressed by suffix (.gz).
        compression = "uncompressed" if path.endswith(DEAD_LETTER_SUFFIX) else None
        with readable.open(mime_type="application/octet-stream", compression_type=compression) as handle:
            yield from chunks(records_of_file(path, handle, self._max_record_bytes))


class ReadFileRecords(beam.PTransform):
    """A file glob (any Beam filesystem: local, gs://, s3://) → RecordChunk (each file's records in order).
    Bounded."""

    def __init__(self, pattern: str, max_record_bytes: int):
        super().__init__()
        self._pattern = pattern
        self._max_record_bytes = max_record_bytes

    def expand(self, pbegin):
        return (
            pbegin
            | "MatchFiles" >> fileio.MatchFiles(
                self._pattern, empty_match_treatment=fileio.EmptyMatchTreatment.DISALLOW
            )
            | "ReadMatches" >> fileio.ReadMatches()
            | "SplitRecords" >> beam.ParDo(_ReadFileRecordsFn(self._max_record_bytes))
        )


def pubsub_source_name(origin: str) -> str:
    """The name of a Pub/Sub read of ``origin`` (a subscription or topic path): its records' sources start with it,
    and its held records are acknowledged under it (``transforms/io/acks.py``)."""
    return f"pubsub:{origin}"


def pubsub_record(message: PubsubMessage, origin: str) -> RawRecord:
    attributes = message.attributes or {}
    return RawRecord(message.data or b"", f"{pubsub_source_name(origin)}#id={message.message_id}",
                     attributes.get("format"))


class ReadPubSubRecords(beam.PTransform):
    """A Pub/Sub subscription or topic → RawRecord, with the message's ``format`` attribute as a hint.

    ``implementation`` is ``native`` (Beam's Python ReadFromPubSub: on the DirectRunner it pulls a bundle at a
    time, sized by ``pipeline/workarounds/pubsub_read.py``, which acks a message only once its events are
    accounted for; on Dataflow it is the service's native source) or ``cross_language`` (Beam's Java PubsubIO
    through the expansion service, for Flink and other portable runners); ``pipeline/runners.py`` picks it by
    runner.
    """

    def __init__(self, subscription: str | None = None, topic: str | None = None, implementation: str = "native",
                 expansion_service: str | None = None):
        super().__init__()
        if bool(subscription) == bool(topic):
            raise ValueError("exactly one of subscription and topic is needed")
        if implementation not in ("native", "cross_language"):
            raise ValueError(f"unknown Pub/Sub implementation {implementation!r}")
        self._subscription = subscription
        self._topic = topic
        self._implementation = implementation
        self._expansion_service = expansion_service

    def expand(self, pbegin):
        origin = self._subscription or self._topic
        if self._implementation == "cross_language":
            from apache_beam.io.external.gcp.pubsub import ReadFromPubSub as CrossLanguageReadFromPubSub

            read = CrossLanguageReadFromPubSub(subscription=self._subscription, topic=self._topic,
                                               with_attributes=True, expansion_service=self._expansion_service)
        else:
            read = ReadFromPubSub(subscription=self._subscription, topic=self._topic, with_attributes=True)
        return pbegin | "ReadFromPubSub" >> read | "ToRawRecord" >> beam.Map(pubsub_record, origin)
