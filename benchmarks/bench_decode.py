"""Decode alone, no Beam: events/s on one core for the pure ``decode_record`` on synthetic Kong records,
against the floor of ``orjson.loads`` + ``orjson.dumps`` of the same records in a plain loop.

    .venv/bin/python -m benchmarks.bench_decode --records 50000
"""
from __future__ import annotations

import argparse
import random
import time

import orjson

from pipeline.sample_traffic import GENERATIONS, kong_record
from transforms.decode import decode_record
from transforms.masking import MaskSettings, mask_event
from transforms.records import RawRecord


def best_of(runs: int, work) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    rng = random.Random(1)
    records = [RawRecord(orjson.dumps(kong_record(GENERATIONS[n % len(GENERATIONS)], n, rng)), f"bench#{n}")
               for n in range(args.records)]
    mean_bytes = sum(len(r.data) for r in records) / len(records)

    def floor():
        for record in records:
            orjson.dumps(orjson.loads(record.data))

    def decode():
        for record in records:
            decode_record(record)

    def decode_mask_serialize():
        settings = MaskSettings()
        for record in records:
            for item in decode_record(record).events:
                orjson.dumps(mask_event(item.event, settings))

    print(f"{args.records} Kong records (all generations), mean {mean_bytes:.0f} bytes, best of {args.runs}:")
    floor_rate = args.records / best_of(args.runs, floor)
    print(f"  {'orjson loads+dumps floor':<28} {floor_rate:>10,.0f} events/s per core")
    for name, work in (("decode_record", decode), ("decode + mask + serialize", decode_mask_serialize)):
        rate = args.records / best_of(args.runs, work)
        print(f"  {name:<28} {rate:>10,.0f} events/s per core   {100 * rate / floor_rate:5.1f}% of floor")


if __name__ == "__main__":
    main()
