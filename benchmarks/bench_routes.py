"""Route inference alone, no Beam: µs per event for ``Router.route`` (it runs once per event, in the decode step),
beside ``decode_record`` of the same events' records in the same run (the ratio is the figure).

    .venv/bin/python -m benchmarks.bench_routes --records 8500
"""
from __future__ import annotations

import argparse
import random

import orjson

from benchmarks.bench_decode import best_of
from devtools.sample_traffic import GCP_KINDS, GENERATIONS, aws_access_log, gcp_log_entry, kong_record, moesif_event
from transforms.model.records import RawRecord
from transforms.stages.decode import decode_record
from transforms.stages.routes import Router, RouteSettings
from transforms.stages.worker_gc import tune_for_event_throughput


def records(count: int) -> list[RawRecord]:
    rng = random.Random(1)
    makers = (lambda n: kong_record(GENERATIONS[n % len(GENERATIONS)], n, rng), lambda n: moesif_event(n, rng),
              lambda n: aws_access_log(n, rng), lambda n: gcp_log_entry(GCP_KINDS[n % len(GCP_KINDS)], n, rng))
    return [RawRecord(orjson.dumps(makers[n % len(makers)](n)), f"bench#{n}") for n in range(count)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=8500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    tune_for_event_throughput()
    raw = records(args.records)
    events = [item.event for record in raw for item in decode_record(record).events]
    templates = RouteSettings(templates=("/v1/users/{user}/cards/{card}", "/v1/orders/{order}/items"))

    def route_all(settings: RouteSettings = RouteSettings()) -> None:
        router = Router(settings)
        for event in events:
            router.route(event)

    decode_seconds = best_of(args.runs, lambda: [decode_record(record) for record in raw])
    inferred = best_of(args.runs, route_all)
    with_templates = best_of(args.runs, lambda: route_all(templates))
    per_event = 1e6 / len(events)
    print(f"{len(events)} events (Kong, Moesif, AWS, GCP)")
    print(f"decode_record:                  {decode_seconds * per_event:6.2f} µs/event")
    print(f"route, inferred:                {inferred * per_event:6.2f} µs/event "
          f"({100 * inferred / decode_seconds:.1f} % of decode)")
    print(f"route, 2 user templates first:  {with_templates * per_event:6.2f} µs/event "
          f"({100 * with_templates / decode_seconds:.1f} % of decode)")


if __name__ == "__main__":
    main()
