"""The Parquet archive: the writer alone (events → Parquet bytes on one core, and bytes per event), and a file
replay with and without ``--archive`` (``--output`` as the sink, so the collector is not what is measured).

    .venv/bin/python -m benchmarks.bench_archive --events 50000
"""
from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from benchmarks.bench_decode import best_of
from benchmarks.bench_replay import ROOT, write_records
from transforms.io.archive import COMPRESSION, parquet_bytes
from transforms.model.records import RawRecord
from transforms.stages.decode import decode_record
from transforms.stages.masking import MaskSettings, mask_event


def masked_events(path: Path) -> list[dict]:
    settings = MaskSettings()
    return [mask_event(item.event, settings) for line in path.read_bytes().splitlines()
            for item in decode_record(RawRecord(line, "bench")).events]


def replay_seconds(input_path: Path, work_dir: Path, archive: bool) -> float:
    out = work_dir / ("out-archive" if archive else "out-plain")
    command = [sys.executable, "-m", "pipeline", f"--input={input_path}", f"--output={out}",
               f"--dead_letter={work_dir / 'dl'}", "--batch_size=500"]
    if archive:
        command.append(f"--archive={work_dir / 'lake'}")
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, capture_output=True, env=os.environ)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        input_path = work_dir / "traffic.jsonl"
        write_records(input_path, args.events)
        events = masked_events(input_path)
        data = parquet_bytes(events)
        json_bytes = sum(len(orjson.dumps(event)) for event in events)
        seconds = best_of(args.runs, lambda: parquet_bytes(events))
        print(f"{len(events)} Kong events (all generations), masked:")
        print(f"  parquet_bytes ({COMPRESSION}): {len(events) / seconds:,.0f} events/s per core, "
              f"{len(data) / len(events):.0f} bytes/event in Parquet vs {json_bytes / len(events):.0f} as JSON")
        plain = replay_seconds(input_path, work_dir, archive=False)
        archived = replay_seconds(input_path, work_dir, archive=True)
        files = glob.glob(str(work_dir / "lake" / "**" / "*.parquet"), recursive=True)
        print(f"  replay to --output: {plain:.1f} s without --archive, {archived:.1f} s with it "
              f"({len(events) / plain:,.0f} vs {len(events) / archived:,.0f} events/s; {len(files)} archive files)")


if __name__ == "__main__":
    main()
