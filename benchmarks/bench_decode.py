"""Decode alone, no Beam: events/s on one core for the pure ``decode_record``, per input format, against
the floor of ``orjson.loads`` + ``orjson.dumps`` of the same records in a plain loop (issue 3's yardstick).

    .venv/bin/python -m benchmarks.bench_decode --records 20000

For container formats (CloudWatch envelopes, ALF documents) the floor parses the outer JSON only, as a
plain loop would; the decoder also inflates the gzip and parses each inner line, so it does strictly more.
"""
from __future__ import annotations

import argparse
import gzip
import random
import time
from collections.abc import Callable

import orjson

from pipeline.sample_traffic import (
    GENERATIONS,
    alf_document,
    aws_access_log,
    cloudwatch_envelope,
    kong_record,
    moesif_event,
    wso2_event,
    wso2_metrics_log_line,
)
from transforms.decode import decode_record
from transforms.masking import MaskSettings, mask_event
from transforms.records import RawRecord


def workloads(count: int) -> dict[str, list[bytes]]:
    """Format name → ``count`` events' worth of raw records, deterministic."""
    rng = random.Random(1)
    envelope_lines = 10
    return {
        "kong (all generations)": [orjson.dumps(kong_record(GENERATIONS[n % len(GENERATIONS)], n, rng))
                                   for n in range(count)],
        "moesif": [orjson.dumps(moesif_event(n, rng)) for n in range(count)],
        "aws_apigateway (line)": [orjson.dumps(aws_access_log(n, rng, http_api=n % 4 == 3)) for n in range(count)],
        f"cloudwatch_logs (gzip, {envelope_lines} lines)": [
            gzip.compress(orjson.dumps(cloudwatch_envelope(
                [aws_access_log(n + k, rng) for k in range(envelope_lines)], n)))
            for n in range(0, count, envelope_lines)],
        "wso2 (event JSON)": [orjson.dumps(wso2_event(n, rng)) for n in range(count)],
        "wso2 (apim_metrics.log line)": [wso2_metrics_log_line(wso2_event(n, rng), n) for n in range(count)],
        "alf (1.1.0, 2 entries)": [orjson.dumps(alf_document(n, rng, "1.1.0")) for n in range(0, count, 2)],
    }


def floor_text(raw: bytes) -> bytes:
    """What a plain loop would hand to orjson: the JSON text inside gzip or after a log-line prefix."""
    if raw[:2] == b"\x1f\x8b":
        return gzip.decompress(raw)
    if not raw.startswith((b"{", b"[")):
        return raw[raw.index(b"{"):]
    return raw


def best_of(runs: int, work: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def measure(records: list[bytes], runs: int) -> tuple[int, float, float, float]:
    """(events, floor events/s, decode events/s, decode+mask+serialize events/s)."""
    raw_records = [RawRecord(data, f"bench#{n}") for n, data in enumerate(records)]
    texts = [floor_text(data) for data in records]
    events = sum(len(decode_record(record).events) for record in raw_records)
    mask_settings = MaskSettings()

    def floor():
        for text in texts:
            orjson.dumps(orjson.loads(text))

    def decode():
        for record in raw_records:
            decode_record(record)

    def decode_mask_serialize():
        for record in raw_records:
            for item in decode_record(record).events:
                orjson.dumps(mask_event(item.event, mask_settings))

    return (events, events / best_of(runs, floor), events / best_of(runs, decode),
            events / best_of(runs, decode_mask_serialize))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000, help="events per format")
    parser.add_argument("--runs", type=int, default=5, help="best of this many runs")
    args = parser.parse_args(argv)
    print(f"{'format':<36} {'bytes/event':>11} {'floor/s':>10} {'decode/s':>10} {'% floor':>8} {'+mask+ser/s':>12}")
    for name, records in workloads(args.records).items():
        events, floor_rate, decode_rate, full_rate = measure(records, args.runs)
        size = sum(map(len, records)) / events
        print(f"{name:<36} {size:>11,.0f} {floor_rate:>10,.0f} {decode_rate:>10,.0f} "
              f"{100 * decode_rate / floor_rate:>7.1f}% {full_rate:>12,.0f}")


if __name__ == "__main__":
    main()
