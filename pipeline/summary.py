"""A one-screen summary of a finished bounded run, from Beam's metrics.

Only counters taken before batching are printed: Beam 2.77's DirectRunner runs the bundles that the
end-of-input flush of GroupIntoBatches produces but does not commit their metrics, so `events_sent`
and `batches_sent` would undercount locally (they are right on Dataflow). What was delivered is
counted where it arrived: the collector, or the ``--output`` files.
"""
from __future__ import annotations

from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.runner import PipelineResult

_COUNTERS = ("records_read", "events_decoded")


def counters(result: PipelineResult) -> dict[str, int]:
    """Committed counters by name; dead letters appear as ``dead_letters.<stage>:<reason>``."""
    totals: dict[str, int] = {}
    for counter in result.metrics().query(MetricsFilter())["counters"]:
        namespace, name = counter.key.metric.namespace, counter.key.metric.name
        if namespace == "gatewaystream":
            key = name
        elif namespace == "gatewaystream.dead_letters":
            key = f"dead_letters.{name}"
        else:
            continue
        totals[key] = totals.get(key, 0) + (counter.committed or 0)
    return totals


def print_summary(result: PipelineResult) -> None:
    totals = counters(result)
    reasons = sorted(key for key in totals if key.startswith("dead_letters."))
    dead = sum(totals[key] for key in reasons)
    print("gatewaystream: " + ", ".join(f"{name.replace('_', ' ')} {totals.get(name, 0)}" for name in _COUNTERS)
          + f", dead letters {dead}")
    for key in reasons:
        print(f"  dead letter {key.split('.', 1)[1]}: {totals[key]}")
