"""The streaming pipeline with its per-event work taken out, to measure what the runner, the source and the sink
allow on this machine. ``bench_streaming --ceiling`` runs it in place of ``python -m pipeline``, with the same
options and the same DirectRunner patches.

Only the graph differs. It reads with the pipeline's own read and delivers with its own sink, but:
- one step gathers each bundle's records;
- each record gets the smallest valid event, with its Kong request id as the transaction id (one ``orjson.loads``),
  and the step reports to the source's acknowledgements that it became one event, as the decode step does;
- the events go to the sink in batches of ``--batch_size``.

There is no decode, identify or mask, no per-event step after the read, and no GroupIntoBatches. Whatever rate
this drains at bounds the real pipeline's rate on the same machine.

With ``GATEWAYSTREAM_CEILING=chunked`` (``bench_streaming --ceiling chunked``) the gathering step runs the
pipeline's own per-event functions instead (``decode_record``, ``identify``, ``mask_event``, ``serialize``) over
each whole bundle: what the pipeline would drain if every step took a bundle's events at once rather than one
element at a time. A record that fails any of them is left out and logged, since this is a measure, not a
pipeline.
"""
from __future__ import annotations

import logging
import os
import sys

import apache_beam as beam
import orjson
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MAX_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from pipeline import graph
from pipeline import main as pipeline_main
from pipeline.config import PipelineConfig
from transforms.io.acks import Acknowledgements
from transforms.io.dead_letters import DEAD_LETTER_TAG, WriteDeadLetters
from transforms.model.event import serialize
from transforms.model.records import RawRecord, SerializedEvent
from transforms.stages.decode import decode_record
from transforms.stages.identity import identify
from transforms.stages.masking import mask_event

_log = logging.getLogger(__name__)


def smallest_event(record: RawRecord) -> SerializedEvent:
    request_id = orjson.loads(record.data)["request"]["id"]
    event = {"transaction_id": request_id, "direction": "Incoming", "weight": 1,
             "request": {"time": "2026-11-27T00:00:00.000Z", "uri": "https://api.example/", "verb": "GET",
                         "headers": {}}}
    return SerializedEvent(record.source, orjson.dumps(event))


class _PerEventWork:
    """The pipeline's per-event functions, in a row, over one record."""

    def __init__(self, config: PipelineConfig):
        self._decode = config.decode
        self._identity = config.identity
        self._masks = config.mask

    def __call__(self, record: RawRecord) -> list[SerializedEvent]:
        result = decode_record(record, self._decode)
        return [SerializedEvent(item.source, serialize(mask_event(identify(item.event, self._identity), self._masks)))
                for item in result.events]


class _GatherBundle(beam.DoFn):
    """A bundle's records → ``(key, [SerializedEvent])`` batches, output when the bundle ends with the bundle's
    earliest timestamp (so that no output is behind the watermark)."""

    def __init__(self, key: str, batch_size: int, work: _PerEventWork | None = None,
                 acknowledgements: Acknowledgements | None = None):
        self._key = key
        self._batch_size = batch_size
        self._work = work
        self._acknowledgements = acknowledgements

    def start_bundle(self):
        self._records: list[RawRecord] = []
        self._earliest = MAX_TIMESTAMP

    def process(self, record: RawRecord, timestamp=beam.DoFn.TimestampParam):
        self._records.append(record)
        self._earliest = min(self._earliest, timestamp)

    def finish_bundle(self):
        events: list[SerializedEvent] = []
        expected = []
        for record in self._records:
            made = self._events_of(record)
            expected.append((record.source, len(made)))  # so that each message is acknowledged once delivered
            events.extend(made)
        if self._acknowledgements is not None:
            self._acknowledgements.expect(expected)
        for start in range(0, len(events), self._batch_size):
            batch = (self._key, events[start:start + self._batch_size])
            yield WindowedValue(batch, self._earliest, (GlobalWindow(),))

    def _events_of(self, record: RawRecord) -> list[SerializedEvent]:
        if self._work is None:
            return [smallest_event(record)]
        try:
            return self._work(record)
        except Exception as exc:  # a measure, not a pipeline: the record is left out, and said so
            _log.warning("left out %s: %s", record.source, exc)
            return []


def build_ceiling(pipeline: beam.Pipeline, config: PipelineConfig) -> None:
    acknowledgements = Acknowledgements(config.held_source) if config.held_source else None
    records = pipeline | "Read" >> graph.read_records(config.source)
    work = _PerEventWork(config) if os.environ.get("GATEWAYSTREAM_CEILING") == "chunked" else None
    gather = _GatherBundle(f"{config.batching.destination}#0", config.batching.batch_size, work, acknowledgements)
    batches = records | "GatherBundle" >> beam.ParDo(gather)
    delivered = batches | "Deliver" >> graph.deliver(config.delivery, acknowledgements)
    _ = delivered[DEAD_LETTER_TAG] | "WriteDeadLetters" >> WriteDeadLetters(config.dead_letters.target,
                                                                            acknowledgements=acknowledgements)


if __name__ == "__main__":
    graph.build = build_ceiling
    sys.exit(pipeline_main.main())
