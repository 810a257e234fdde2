"""Kinesis read rate: N synthetic Kong records put on a local kinesalite stream (127.0.0.1), then read

1. by a bare boto3 loop (GetShardIterator + GetRecords on every shard): the floor the server allows, and
2. by ``python -m pipeline --kinesis_stream … --output DIR`` (streaming, DirectRunner): records/s from the
   moment the first shard reader starts (its log line) to the last batch file, so start-up is left out; the
   whole pipeline (decode, identify, mask, batch, write) runs behind the source, as in production.

    .venv/bin/python -m benchmarks.bench_kinesis --records 20000 --shards 2
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import datetime
from pathlib import Path

import orjson

from devtools.local_services import (
    LOCAL_AWS_ENVIRONMENT,
    create_stream,
    local_kinesis_client,
    put_records,
    start_kinesalite,
    start_pipeline,
    stop_services_on_sigterm,
    wait_for,
)
from devtools.sample_traffic import GENERATIONS, kong_record


def bare_read(endpoint: str, stream: str) -> int:
    client = local_kinesis_client(endpoint)
    total = 0
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            response = client.get_records(ShardIterator=iterator, Limit=10_000)
            total += len(response["Records"])
            if not response["Records"] and response.get("MillisBehindLatest", 0) == 0:
                break
            iterator = response.get("NextShardIterator")
    return total


def events_in(directory: Path) -> tuple[int, list[float]]:
    count, times = 0, []
    for path in directory.glob("batch-*.json"):
        count += len(orjson.loads(path.read_bytes()))
        times.append(path.stat().st_mtime)
    return count, times


def reading_started(log: Path) -> float:
    """The epoch time of the pipeline's first "kinesis: reading" log line."""
    for line in log.read_text().splitlines():
        if "kinesis: reading" in line:
            moment = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            return moment.timestamp()  # the log's asctime is local time, as is this
    raise RuntimeError(f"no shard reader started: {log}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--shards", type=int, default=2)
    args = parser.parse_args(argv)
    stop_services_on_sigterm()
    rng = random.Random(3)
    records = [orjson.dumps(kong_record(GENERATIONS[n % len(GENERATIONS)], n, rng)) for n in range(args.records)]
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        server, endpoint = start_kinesalite(work_dir)
        try:
            create_stream(endpoint, "bench", args.shards)
            started = time.perf_counter()
            put_records(endpoint, "bench", records)
            put_secs = time.perf_counter() - started
            started = time.perf_counter()
            read = bare_read(endpoint, "bench")
            bare_secs = time.perf_counter() - started

            output = work_dir / "out"
            pipeline = start_pipeline(
                ["--runner=DirectRunner", "--kinesis_stream=bench", f"--kinesis_endpoint_url={endpoint}",
                 "--kinesis_initial_position=TRIM_HORIZON", f"--output={output}", f"--dead_letter={work_dir / 'dl'}",
                 "--max_batch_delay_secs=1"],
                work_dir, dict(LOCAL_AWS_ENVIRONMENT))
            try:
                wait_for(lambda: events_in(output)[0] >= args.records or not pipeline.running(), 900,
                         f"{args.records} events in {output}")
            finally:
                pipeline.stop()
            events, times = events_in(output)
            began = reading_started(pipeline.log_path)
        finally:
            server.stop()
    span = max(times) - began
    print(f"{args.records} records on {args.shards} shards: put in {put_secs:.1f} s "
          f"({args.records / put_secs:,.0f} records/s)")
    print(f"  bare boto3 GetRecords loop: {read} records in {bare_secs:.2f} s ({read / bare_secs:,.0f} records/s)")
    print(f"  pipeline (DirectRunner, --output): {events} events, first shard read to last batch file {span:.1f} s "
          f"({events / span:,.0f} records/s)")


if __name__ == "__main__":
    main()
