"""Grouping keyed elements into batches, the same way for events and for dead letters."""
from __future__ import annotations

import time
from collections.abc import Callable

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue


class BatchByKey(beam.PTransform):
    """``(key, value)`` → ``(key, [value, …])`` of at most ``batch_size`` values.

    Unbounded input uses GroupIntoBatches (count, or ``max_delay_secs`` after a batch's first element).
    Bounded input (a file replay) is batched within each bundle instead, like Beam's BatchElements but per key:
    there is no latency to bound, and with no shuffle the runner fuses reading, decoding and delivery into one
    stage, so the sink's sends overlap the decoding of the next events. Behind a GroupByKey the FnApiRunner
    decoded the whole input before it sent the first batch (and GroupIntoBatches' end-of-input flush was seen
    to be lost now and then on Beam 2.77's FnApiRunner in our graph).
    """

    def __init__(self, batch_size: int, max_delay_secs: float, bounded: bool,
                 clock: Callable[[], float] = time.time):
        super().__init__()
        self._batch_size = batch_size
        self._max_delay_secs = max_delay_secs
        self._bounded = bounded
        self._clock = clock

    def expand(self, keyed):
        if not self._bounded:
            return keyed | beam.GroupIntoBatches(self._batch_size, self._max_delay_secs, clock=self._clock)
        return keyed | beam.ParDo(_BatchWithinBundleFn(self._batch_size))


class _BatchWithinBundleFn(beam.DoFn):
    """Full batches as they fill; each partial batch at the end of its bundle. Holds at most ``batch_size`` - 1
    values per key and window."""

    def __init__(self, batch_size: int):
        self._batch_size = batch_size

    def start_bundle(self):
        self._buffers: dict[tuple, list] = {}

    def process(self, element, window=beam.DoFn.WindowParam):
        key, value = element
        buffer = self._buffers.setdefault((key, window), [])
        buffer.append(value)
        if len(buffer) >= self._batch_size:
            del self._buffers[(key, window)]
            yield key, buffer

    def finish_bundle(self):
        buffers, self._buffers = self._buffers, {}
        for (key, window), buffer in buffers.items():
            yield WindowedValue((key, buffer), window.max_timestamp(), (window,))
