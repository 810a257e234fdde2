"""Grouping keyed elements into batches, the same way for events and for dead letters."""
from __future__ import annotations

import time
from collections.abc import Callable

import apache_beam as beam
from apache_beam import coders
from apache_beam.transforms.combiners import CountCombineFn
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import BagStateSpec, CombiningValueStateSpec, TimerSpec, on_timer
from apache_beam.transforms.window import GlobalWindows
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
            return keyed | GroupIntoBatchesWithElementCoder(self._batch_size, self._max_delay_secs, clock=self._clock)
        if keyed.windowing.is_default():
            return keyed | beam.ParDo(_BatchWithinBundleFn(self._batch_size))
        return keyed | beam.ParDo(_BatchWithinBundlePerWindowFn(self._batch_size))


class _BatchWithinBundleFn(beam.DoFn):
    """Full batches as they fill; each partial batch at the end of its bundle. Holds at most ``batch_size`` - 1
    values per key. For the global window (a file replay), like Beam's BatchElements: without a window parameter
    Beam calls ``process`` directly rather than once per window, whose argument handling was ~7 % of a replay."""

    def __init__(self, batch_size: int):
        self._batch_size = batch_size

    def start_bundle(self):
        self._buffers: dict = {}  # key (or key and window) → values

    def process(self, element):
        key, value = element
        batch = self._add(key, key, value)
        if batch is not None:
            yield batch

    def finish_bundle(self):
        buffers, self._buffers = self._buffers, {}
        for key, buffer in buffers.items():
            yield GlobalWindows.windowed_value_at_end_of_window((key, buffer))

    def _add(self, slot, key, value) -> tuple | None:
        """The full batch ``value`` completes in its slot, else None."""
        buffer = self._buffers.setdefault(slot, [])
        buffer.append(value)
        if len(buffer) < self._batch_size:
            return None
        del self._buffers[slot]
        return key, buffer


class _BatchWithinBundlePerWindowFn(_BatchWithinBundleFn):
    """The same per key and window, for bounded input in other windows."""

    def process(self, element, window=beam.DoFn.WindowParam):
        key, value = element
        batch = self._add((key, window), key, value)
        if batch is not None:
            yield batch

    def finish_bundle(self):
        buffers, self._buffers = self._buffers, {}
        for (key, window), buffer in buffers.items():
            yield WindowedValue((key, buffer), window.max_timestamp(), (window,))


class GroupIntoBatchesWithElementCoder(beam.GroupIntoBatches):
    """GroupIntoBatches whose buffer state uses the coder of the elements' type.

    Beam 2.77's ``GroupIntoBatches.expand`` asks the coder registry for the coder of the PCollection object
    (``get_coder(pcoll)``) rather than of its element type, and so gets the fallback coder, which pickles a
    NamedTuple: on the DirectRunner every event buffered for a batch was pickled into state and unpickled out
    (~6 % of a streaming run's busy time). Beam needs that fallback coder for its count state too (an int), so
    the DoFn is rebuilt here, the same as Beam's but with a coder per state. The URN is kept: runners that
    replace GroupIntoBatches with their own (Dataflow) still do.
    """

    def expand(self, pcoll):
        return pcoll | beam.ParDo(_group_into_batches_fn(
            coders.registry.get_coder(pcoll.element_type), self.params.batch_size,
            self.params.max_buffering_duration_secs, self.clock))


def _group_into_batches_fn(element_coder: coders.Coder, batch_size: int, max_buffering_secs: float,
                           clock: Callable[[], float]) -> beam.DoFn:
    elements_spec = BagStateSpec("values", element_coder)
    count_spec = CombiningValueStateSpec("count", coders.VarIntCoder(), CountCombineFn())
    window_timer_spec = TimerSpec("window_end", TimeDomain.WATERMARK)
    buffering_timer_spec = TimerSpec("buffering_end", TimeDomain.REAL_TIME)

    class _GroupIntoBatchesFn(beam.DoFn):
        def process(self, element, window=beam.DoFn.WindowParam,
                    elements=beam.DoFn.StateParam(elements_spec), count=beam.DoFn.StateParam(count_spec),
                    window_timer=beam.DoFn.TimerParam(window_timer_spec),
                    buffering_timer=beam.DoFn.TimerParam(buffering_timer_spec)):
            window_timer.set(window.end)
            elements.add(element)
            count.add(1)
            buffered = count.read()
            if buffered == 1 and max_buffering_secs > 0:
                buffering_timer.set(clock() + max_buffering_secs)
            if buffered >= batch_size:
                yield from self.flush(elements, count, buffering_timer)

        @on_timer(window_timer_spec)
        def on_window_end(self, elements=beam.DoFn.StateParam(elements_spec), count=beam.DoFn.StateParam(count_spec),
                          buffering_timer=beam.DoFn.TimerParam(buffering_timer_spec)):
            yield from self.flush(elements, count, buffering_timer)

        @on_timer(buffering_timer_spec)
        def on_buffering_end(self, elements=beam.DoFn.StateParam(elements_spec),
                             count=beam.DoFn.StateParam(count_spec),
                             buffering_timer=beam.DoFn.TimerParam(buffering_timer_spec)):
            yield from self.flush(elements, count, buffering_timer)

        def flush(self, elements, count, buffering_timer):
            batch = list(elements.read())
            elements.clear()
            count.clear()
            buffering_timer.clear()
            if batch:
                yield batch[0][0], [value for _, value in batch]

    return _GroupIntoBatchesFn()
