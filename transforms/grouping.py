"""Grouping keyed elements into batches, the same way for events and for dead letters."""
from __future__ import annotations

import time
from collections.abc import Callable

import apache_beam as beam


class BatchByKey(beam.PTransform):
    """``(key, value)`` → ``(key, [value, …])`` of at most ``batch_size`` values.

    Unbounded input uses GroupIntoBatches (count, or ``max_delay_secs`` after a batch's first element).
    Bounded input (a file replay) uses a GroupByKey cut into runs instead: there is no latency to bound, and
    on Beam 2.77's portable/FnApi runner GroupIntoBatches' end-of-input flush was seen to be lost now and
    then (one run in two) in our graph, while a GroupByKey is complete on every runner.
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
        return keyed | beam.GroupByKey() | beam.FlatMap(_chunks, self._batch_size)


def _chunks(keyed_values, size: int):
    key, values = keyed_values
    chunk = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield key, chunk
            chunk = []
    if chunk:
        yield key, chunk
