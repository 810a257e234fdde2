"""File replay end to end: N synthetic Kong records in a .jsonl file → ``python -m pipeline --input`` (bounded,
DirectRunner) → the local collector on 127.0.0.1. Prints events/s over the pipeline's wall time (start-up
included, and shown apart).

    .venv/bin/python -m benchmarks.bench_replay --records 100000
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from devtools.collector import Collector
from devtools.sample_traffic import GENERATIONS, kong_record

ROOT = Path(__file__).resolve().parent.parent


def write_records(path: Path, count: int) -> None:
    rng = random.Random(2)
    with open(path, "wb") as handle:
        for n in range(count):
            handle.write(orjson.dumps(kong_record(GENERATIONS[n % len(GENERATIONS)], n, rng)) + b"\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch_size", type=int, default=200)
    parser.add_argument("pipeline_args", nargs="*", help="more options for the pipeline, after --")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        input_path = work_dir / "traffic.jsonl"
        write_records(input_path, args.records)
        with Collector(str(work_dir / "collector.db")) as collector:
            command = [sys.executable, "-m", "pipeline", "--runner=DirectRunner", f"--input={input_path}",
                       f"--api_endpoint={collector.url}", f"--dead_letter={work_dir / 'dl'}",
                       f"--batch_size={args.batch_size}", *args.pipeline_args]
            environment = {**os.environ, "GATEWAYSTREAM_APPLICATION_ID": "benchmark"}
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import pipeline.graph"], check=True, env=environment, cwd=ROOT)
            startup = time.perf_counter() - started
            started = time.perf_counter()
            subprocess.run(command, check=True, env=environment, cwd=ROOT, capture_output=True)
            elapsed = time.perf_counter() - started
            received = collector.store.counts()["events"]
    print(f"{args.records} records, {received} events received by the collector in {elapsed:.1f} s "
          f"(process start-up and imports alone: {startup:.1f} s)")
    print(f"  file replay → collector: {received / elapsed:,.0f} events/s end to end, "
          f"{received / (elapsed - startup):,.0f} events/s after start-up")


if __name__ == "__main__":
    main()
