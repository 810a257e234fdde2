"""Streaming on the DirectRunner: sustained events/s from the source to the collector, and latency from send to
arrival at 20 %, 50 % and 80 % of that rate (issue 5).

The source is the Pub/Sub emulator (``--source pubsub``, default) or a local Kinesis server (``--source
kinesis``); the collector runs as its own process on 127.0.0.1. Each message is one Kong record (one event).

1. Saturation: ``--burst`` records are sent before the pipeline starts; the sustained rate is what the
   collector receives per second between 10 % and 90 % of them (a backlog drained).
2. For each load level, records are sent at that fraction of the sustained rate for ``--secs`` seconds;
   latency is the collector's ``received_at`` minus the moment each record was handed to the source client.

    .venv/bin/python -m benchmarks.bench_streaming --source pubsub --burst 6000 --secs 30
"""
from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from devtools.local_services import Service, start_collector, start_pipeline, stop_services_on_sigterm, wait_for
from devtools.localrun import start_source
from devtools.sample_traffic import kong_record


def arrivals(database: Path) -> dict[str, float]:
    with sqlite3.connect(database) as connection:
        return dict(connection.execute("SELECT transaction_id, MIN(received_at) FROM events GROUP BY 1"))


def arrived_count(database: Path) -> int:
    """Events stored so far, duplicates included: a cheap poll (the GROUP BY above, every 0.2 s over a growing
    table, took a good part of a core that the pipeline and the collector share on this 2-core machine)."""
    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT COUNT(*) FROM events").fetchone()[0]


def wait_for_arrivals(database: Path, ids: list[str], before: int, pipeline: Service, timeout: float,
                      what: str) -> None:
    """Waits until every one of ``ids`` arrived, ``before`` being the count before they were sent: the count is
    polled, and the exact (costly) check runs only when it could pass."""
    wanted = set(ids)
    need = before + len(ids)
    while True:
        wait_for(lambda need=need: arrived_count(database) >= need or not pipeline.running(), timeout, what,
                 interval=0.5)
        if not pipeline.running() or len(arrivals(database).keys() & wanted) >= len(wanted):
            return
        need = arrived_count(database) + 1  # duplicates were counted: wait for more rows


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Traffic:
    """Kong records with fresh request ids, remembering when each was sent."""

    def __init__(self, send: Callable[[list[bytes]], str]):
        self._send = send
        self._rng = random.Random(11)
        self._index = 0
        self.sent_at: dict[str, float] = {}

    def send(self, count: int) -> list[str]:
        records, ids = [], []
        for _ in range(count):
            record = kong_record("3.9", self._index, self._rng)
            self._index += 1
            records.append(orjson.dumps(record))
            ids.append(record["request"]["id"])
        moment = time.time()
        self._send(records)
        for request_id in ids:
            self.sent_at[request_id] = moment
        return ids


def drain_rate(ids: list[str], database: Path, pipeline: Service) -> float:
    """Events/s at which the pipeline drains a backlog of ``ids`` (sent before it started), measured between the
    arrivals of 10 % and 90 % of them: start-up and the last partial batches are left out, and nothing else
    (this benchmark's own publishing) competes with the pipeline for this machine's 2 cores meanwhile."""
    wait_for_arrivals(database, ids, 0, pipeline, 900, f"{len(ids)} events")
    wanted = set(ids)
    times = sorted(t for request_id, t in arrivals(database).items() if request_id in wanted)
    low, high = times[len(times) // 10], times[len(times) * 9 // 10]
    return 0.8 * len(times) / (high - low)


def at_rate(traffic: Traffic, database: Path, rate: float, secs: float, pipeline: Service) -> dict[str, float]:
    ids: list[str] = []
    before = arrived_count(database)
    began = time.monotonic()
    step = 0.1  # send every 100 ms
    while (elapsed := time.monotonic() - began) < secs:
        due = int(rate * (elapsed + step)) - len(ids)
        if due > 0:
            ids.extend(traffic.send(due))
        time.sleep(max(0.0, began + elapsed + step - time.monotonic()))
    wait_for_arrivals(database, ids, before, pipeline, 300, f"{len(ids)} events at {rate:.0f}/s")
    arrived = arrivals(database)
    latencies = [arrived[request_id] - traffic.sent_at[request_id] for request_id in ids]
    return {"sent": len(ids), "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99),
            "max": max(latencies), "mean": statistics.fmean(latencies)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", choices=("pubsub", "kinesis"), default="pubsub")
    parser.add_argument("--burst", type=int, default=6000)
    parser.add_argument("--secs", type=float, default=30)
    parser.add_argument("--max_batch_delay_secs", type=float, default=2.0)
    parser.add_argument("--rates", type=float, nargs="*", default=None,
                        help="events/s for the latency phases (default: 20, 50 and 80 %% of the sustained rate)")
    parser.add_argument("--ceiling", nargs="?", const="empty", choices=("empty", "chunked"),
                        help="run benchmarks/streaming_ceiling.py instead of the pipeline: the same read and sink "
                             "with no per-event work (empty), or with the per-event functions over whole bundles "
                             "in one step (chunked), to measure what the runner and the source allow")
    args = parser.parse_args(argv)
    stop_services_on_sigterm()
    services: list[Service] = []
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        try:
            source_arguments, environment, send = start_source(args.source, work_dir, services)
            collector, url = start_collector(work_dir)
            services.append(collector)
            traffic = Traffic(send)
            backlog = traffic.send(args.burst)
            pipeline = start_pipeline(
                ["--runner=DirectRunner", *source_arguments, f"--api_endpoint={url}",
                 f"--dead_letter={work_dir / 'dl'}", f"--max_batch_delay_secs={args.max_batch_delay_secs}"],
                work_dir, {**environment, "GATEWAYSTREAM_APPLICATION_ID": "benchmark",
                           "GATEWAYSTREAM_CEILING": args.ceiling or ""},
                module="benchmarks.streaming_ceiling" if args.ceiling else "pipeline")
            services.append(pipeline)
            database = work_dir / "collector.db"
            wait_for(database.exists, 60, "the collector's database")
            sustained = drain_rate(backlog, database, pipeline)
            what = {"empty": "ceiling (no per-event work)", "chunked": "ceiling (per-event work over whole bundles)",
                    None: "DirectRunner"}[args.ceiling]
            print(f"{args.source} → {what} → collector, max_batch_delay_secs={args.max_batch_delay_secs}")
            print(f"  sustained: {sustained:,.0f} events/s (burst of {args.burst})")
            rates = args.rates or [fraction * sustained for fraction in (0.2, 0.5, 0.8)]
            for rate in rates:
                result = at_rate(traffic, database, rate, args.secs, pipeline)
                print(f"  {rate / sustained:.0%} ({rate:,.0f}/s, {result['sent']} events): "
                      f"p50 {result['p50']:.2f} s, p99 {result['p99']:.2f} s, max {result['max']:.2f} s")
        finally:
            for service in reversed(services):
                service.stop()


if __name__ == "__main__":
    main()
