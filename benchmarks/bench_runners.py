"""The same graph and the same input on each runner that starts here (issue 21): a file replay and a Kinesis
drain, each to the local collector (its own process on 127.0.0.1).

For each runner: events/s over the pipeline's wall time (start-up included), CPU seconds per 1 000 events and
peak RSS of the pipeline's processes (``python -m pipeline`` and what it starts: Prism, SDK workers), sampled
from /proc every 0.2 s; the collector's are left out (the same work on every runner).

    .venv/bin/python -m benchmarks.bench_runners --records 50000 --runners direct prism
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import orjson

from benchmarks.bench_streaming import arrived_count
from devtools.local_services import (
    LOCAL_AWS_ENVIRONMENT,
    Service,
    create_stream,
    put_records,
    start_collector,
    start_kinesalite,
    start_pipeline,
    stop_services_on_sigterm,
    wait_for,
)
from devtools.sample_traffic import GENERATIONS, kong_record
from pipeline import runner_artifacts

RUNNERS = MappingProxyType({"direct": ("--runner=DirectRunner",), "prism": ("--runner=PrismRunner",)})
TICKS_PER_SEC = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


class GroupSampler(threading.Thread):
    """CPU time and summed RSS of every process in one process group, read from /proc."""

    def __init__(self, group: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self._group, self._interval = group, interval
        self._cpu_ticks: dict[int, int] = {}
        self.peak_rss_bytes = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        rss = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) != self._group:  # fields after the name: state, ppid, pgrp, …
                continue
            self._cpu_ticks[int(entry.name)] = int(fields[11]) + int(fields[12])  # utime + stime
            rss += int(fields[21]) * PAGE_BYTES
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss)

    def run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def finish(self) -> float:
        """Stops sampling; returns the CPU seconds used by the group's processes."""
        self._sample()
        self._stop.set()
        return sum(self._cpu_ticks.values()) / TICKS_PER_SEC


@dataclass
class Measurement:
    events: int
    wall_secs: float
    cpu_secs: float
    peak_rss_bytes: int

    def line(self, label: str) -> str:
        return (f"  {label:<28} {self.events / self.wall_secs:8,.0f} events/s  "
                f"{1000 * self.cpu_secs / self.events:6.2f} CPU s per 1 000 events  "
                f"peak RSS {self.peak_rss_bytes / 2**20:6,.0f} MiB  ({self.events} events in {self.wall_secs:.1f} s)")


def records(count: int) -> list[bytes]:
    rng = random.Random(2)
    return [orjson.dumps(kong_record(GENERATIONS[n % len(GENERATIONS)], n, rng)) for n in range(count)]


def measure(arguments: list[str], work_dir: Path, environment: dict[str, str], expected: int,
            finished: bool) -> Measurement:
    """Runs the pipeline until the collector holds ``expected`` events (and, for a bounded run, until it exits)."""
    database = work_dir / "collector.db"
    started = time.perf_counter()
    pipeline = start_pipeline(arguments, work_dir, {**environment, "GATEWAYSTREAM_APPLICATION_ID": "benchmark"})
    sampler = GroupSampler(pipeline.process.pid)
    sampler.start()
    try:
        wait_for(lambda: (arrived_count(database) >= expected and (not finished or not pipeline.running()))
                 or not pipeline.running(), 1800, f"{expected} events", interval=0.2)
        elapsed = time.perf_counter() - started
        cpu = sampler.finish()
        if arrived_count(database) < expected:
            raise RuntimeError(f"the pipeline stopped early:\n{pipeline.log_tail(30)}")
    finally:
        pipeline.stop()
    return Measurement(arrived_count(database), elapsed, cpu, sampler.peak_rss_bytes)


def replay(runner: str, data: list[bytes], work_dir: Path) -> Measurement:
    input_path = work_dir / "traffic.jsonl"
    input_path.write_bytes(b"\n".join(data) + b"\n")
    collector, url = start_collector(work_dir)
    try:
        return measure([*RUNNERS[runner], f"--input={input_path}", f"--api_endpoint={url}",
                        f"--dead_letter={work_dir / 'dl'}"], work_dir, {}, len(data), finished=True)
    finally:
        collector.stop()


def kinesis_drain(runner: str, data: list[bytes], work_dir: Path, endpoint: str) -> Measurement:
    stream = f"bench-{runner}"
    create_stream(endpoint, stream, shards=2)
    put_records(endpoint, stream, data)
    collector, url = start_collector(work_dir)
    try:
        streaming = [] if runner == "direct" else ["--streaming"]
        return measure([*RUNNERS[runner], *streaming, f"--kinesis_stream={stream}",
                        f"--kinesis_endpoint_url={endpoint}", "--kinesis_initial_position=TRIM_HORIZON",
                        f"--api_endpoint={url}", f"--dead_letter={work_dir / 'dl'}"],
                       work_dir, dict(LOCAL_AWS_ENVIRONMENT), len(data), finished=False)
    finally:
        collector.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=50_000, help="Kong records (one event each) per run")
    parser.add_argument("--runners", nargs="+", choices=RUNNERS, default=list(RUNNERS))
    parser.add_argument("--work_dir", type=Path, default=Path("bench-runners"))
    args = parser.parse_args(argv)
    stop_services_on_sigterm()
    if "prism" in args.runners:
        runner_artifacts.fetch(runner_artifacts.prism())
    data = records(args.records)
    shutil.rmtree(args.work_dir, ignore_errors=True)
    (args.work_dir / "kinesalite").mkdir(parents=True)
    services: list[Service] = []
    try:
        kinesis, endpoint = start_kinesalite(args.work_dir / "kinesalite")
        services.append(kinesis)
        print(f"{args.records} Kong records, one event each; pipeline processes only (collector apart)")
        for runner in args.runners:
            for name, run in (("file replay", lambda w, r=runner: replay(r, data, w)),
                              ("Kinesis drain (2 shards)", lambda w, r=runner: kinesis_drain(r, data, w, endpoint))):
                work_dir = args.work_dir / f"{runner}-{name.split()[0].lower()}"
                work_dir.mkdir(parents=True, exist_ok=True)
                print(run(work_dir).line(f"{runner}, {name}"), flush=True)
    finally:
        for service in reversed(services):
            service.stop()


if __name__ == "__main__":
    main()
