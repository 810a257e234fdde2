"""The ingest's speed and memory, against the real Pub/Sub emulator (issue 23):

- requests/s and p50/p99 latency for Moesif batches of 200 events (gzip, as the SDKs send them) and for single
  Kong records, ``--concurrency`` requests at a time;
- beside them, the bare publish rate of the same Pub/Sub client library on the same emulator in the same run
  (one message per request's body, the same number in flight): the ratio is the figure;
- memory under a stalled broker: the emulator is paused (SIGSTOP) while requests keep coming; the ingest's
  resident memory is sampled, and the 503s it answers once its in-flight budget is full are counted.

    .venv/bin/python -m benchmarks.bench_ingest --requests 400 --concurrency 16
"""
from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import orjson
from aiohttp import ClientSession, ClientTimeout

from devtools.collector.report import percentile
from devtools.local_services import (
    INGEST_CREDENTIALS,
    create_topic_and_subscription,
    start_ingest,
    start_pubsub_emulator,
)
from devtools.sample_traffic import kong_record, moesif_event

KONG_HEADERS = {"X-Gatewaystream-Token": INGEST_CREDENTIALS["GATEWAYSTREAM_INGEST_KONG_TOKEN"],
                "Content-Type": "application/json"}
MOESIF_HEADERS = {"X-Moesif-Application-Id": INGEST_CREDENTIALS["GATEWAYSTREAM_INGEST_APPLICATION_IDS"],
                  "Content-Type": "application/json", "Content-Encoding": "gzip"}


def bodies(kind: str, count: int) -> list[bytes]:
    rng = random.Random(7)
    if kind == "moesif":
        return [gzip.compress(orjson.dumps([moesif_event(n * 200 + k, rng) for k in range(200)]))
                for n in range(count)]
    return [orjson.dumps(kong_record("3.9", n, rng)) for n in range(count)]


async def hammer(url: str, payloads: list[bytes], headers: dict[str, str], concurrency: int
                 ) -> tuple[float, list[float], dict[int, int]]:
    """(seconds, latencies in ms, answers by status) for ``payloads`` posted ``concurrency`` at a time."""
    queue = list(reversed(payloads))
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def worker(session: ClientSession) -> None:
        while queue:
            body = queue.pop()
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as answer:
                await answer.read()
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    async with ClientSession(timeout=ClientTimeout(total=120)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, statuses


async def bare_publish(topic: str, payloads: list[bytes], concurrency: int) -> float:
    """Seconds to publish ``payloads`` with google-cloud-pubsub, ``concurrency`` awaiting acknowledgement at once."""
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    queue = list(reversed(payloads))

    async def worker() -> None:
        while queue:
            data = queue.pop()
            await asyncio.wrap_future(publisher.publish(topic, data, format="kong"))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    publisher.stop()
    return elapsed


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def stalled(url: str, pid: int, emulator_pid: int, seconds: float, concurrency: int
                  ) -> tuple[float, list[float], dict[int, int]]:
    """(RSS before, the highest RSS of each tenth of the time, answers by status) while the emulator is paused
    and requests keep coming."""
    payload = bodies("moesif", 1)[0]
    before = rss_mib(pid)
    highest = [before] * 10
    statuses: dict[int, int] = {}
    started = time.monotonic()
    deadline = started + seconds

    async def worker(session: ClientSession) -> None:
        while time.monotonic() < deadline:
            try:
                async with session.post(url + "/v1/events/batch", data=payload, headers=MOESIF_HEADERS) as answer:
                    await answer.read()
                    statuses[answer.status] = statuses.get(answer.status, 0) + 1
                    if answer.status == 503:
                        await asyncio.sleep(0.05)
            except asyncio.TimeoutError:
                statuses[0] = statuses.get(0, 0) + 1

    async def sample() -> None:
        while (now := time.monotonic()) < deadline:
            tenth = min(9, int(10 * (now - started) / seconds))
            highest[tenth] = max(highest[tenth], rss_mib(pid))
            await asyncio.sleep(0.2)

    group = os.getpgid(emulator_pid)  # the gcloud wrapper and the emulator's JVM under it
    os.killpg(group, signal.SIGSTOP)
    try:
        async with ClientSession(timeout=ClientTimeout(total=seconds + 30)) as session:
            await asyncio.gather(sample(), *(worker(session) for _ in range(concurrency)))
    finally:
        os.killpg(group, signal.SIGCONT)
    return before, highest, statuses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="requests per workload")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--stall_secs", type=float, default=15)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    emulator, host = start_pubsub_emulator(work)
    services = [emulator]
    try:
        os.environ["PUBSUB_EMULATOR_HOST"] = host
        topic, _ = create_topic_and_subscription(host, "bench-ingest", "bench-ingest-sub")
        ingest, url = start_ingest(work, [f"--topic={topic}", "--publish_timeout_secs=30"],
                                   {"PUBSUB_EMULATOR_HOST": host}, ("--max_in_flight_bytes=67108864",))
        services.append(ingest)
        print(f"{'workload':<34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'bare publish/s':>15} {'ratio':>7}")
        for kind, path, headers in (("moesif", "/v1/events/batch", MOESIF_HEADERS),
                                    ("kong", "/kong/http-log", KONG_HEADERS)):
            payloads = bodies(kind, args.requests)
            asyncio.run(hammer(url + path, payloads[:20], headers, args.concurrency))  # warm up
            seconds, latencies, statuses = asyncio.run(hammer(url + path, payloads, headers, args.concurrency))
            raw = [gzip.decompress(body) if kind == "moesif" else body for body in payloads]
            bare = asyncio.run(bare_publish(topic, raw, args.concurrency))
            rate, bare_rate = len(payloads) / seconds, len(payloads) / bare
            name = "moesif batch of 200 (gzip)" if kind == "moesif" else "kong record"
            latencies.sort()
            print(f"{name:<34} {rate:>8.0f} {percentile(latencies, 0.5):>8.1f} {percentile(latencies, 0.99):>8.1f} "
                  f"{bare_rate:>15.0f} {rate / bare_rate:>7.2f}   answers {statuses}")
        ingest.stop()
        services.remove(ingest)
        stall_dir = work / "stall"
        stall_dir.mkdir()
        budget_mib = 16
        ingest, url = start_ingest(stall_dir, [f"--topic={topic}", "--publish_timeout_secs=10"],
                                   {"PUBSUB_EMULATOR_HOST": host}, (f"--max_in_flight_bytes={budget_mib << 20}",))
        services.append(ingest)
        asyncio.run(hammer(url + "/v1/events/batch", bodies("moesif", 20), MOESIF_HEADERS, 4))  # warm up
        before, highest, statuses = asyncio.run(stalled(url, ingest.process.pid, emulator.process.pid,
                                                        args.stall_secs, args.concurrency * 4))
        print(f"\nstalled broker for {args.stall_secs:g} s, {args.concurrency * 4} clients sending 200-event batches, "
              f"--max_in_flight_bytes={budget_mib} MiB, --publish_timeout_secs=10: ingest RSS {before:.0f} MiB "
              f"before; highest in each tenth of the stall: {' '.join(f'{value:.0f}' for value in highest)} MiB; "
              f"answers {statuses}")
    finally:
        for service in reversed(services):
            service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
