"""``python -m devtools.localrun`` (what ``run_local.sh`` runs): the bundled sample traffic end to end.

Starts the source — the Pub/Sub emulator, or with ``--source kinesis`` a local Kinesis server (kinesalite) —,
the ingest in front of it and the local collector on 127.0.0.1, starts the pipeline on the DirectRunner reading
the source, sends every sample record the way its gateway would (``devtools/sample_senders.py``), waits until
every sample event is accounted for (received by the collector or dead-lettered), prints the collector's report
and the accounting, and stops everything it started — also on Ctrl-C or failure.
"""
from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

from devtools.collector.page import build_page
from devtools.collector.report import build_report
from devtools.collector.store import EventStore
from devtools.local_services import (
    LOCAL_AWS_ENVIRONMENT,
    LOCAL_PROJECT,
    MissingPrerequisite,
    Service,
    count_items,
    create_stream,
    create_topic_and_subscription,
    dead_letters_in,
    http_json,
    publish,
    put_records,
    start_collector,
    start_ingest,
    start_kinesalite,
    start_pipeline,
    start_pubsub_emulator,
    stop_services_on_sigterm,
)
from devtools.sample_senders import sample_files, send_like_gateways

STATUS_EVERY_SECS = 10
LOCAL_APPLICATION_ID = "local-run-application-id"


def sample_records(samples: Path) -> list[bytes]:
    return [record for records in sample_files(samples).values() for record in records]


SOURCES = ("pubsub", "kinesis")


def start_source(source: str, work_dir: Path, services: list[Service]
                 ) -> tuple[list[str], dict[str, str], Callable[[dict[str, list[bytes]]], str]]:
    """Starts the local broker of ``source`` and the ingest in front of it; returns the pipeline's source arguments,
    its environment, and a function that sends the sample files as their gateways would and says where to."""
    if source == "kinesis":
        kinesis, endpoint = start_kinesalite(work_dir)
        services.append(kinesis)
        create_stream(endpoint, "gateway-logs", shards=2)
        broker = ["--kinesis_stream=gateway-logs", f"--kinesis_endpoint_url={endpoint}", "--aws_region=us-east-1"]
        environment = dict(LOCAL_AWS_ENVIRONMENT)
        destination = "Kinesis stream gateway-logs (2 shards)"
        source_arguments = ["--kinesis_stream=gateway-logs", f"--kinesis_endpoint_url={endpoint}",
                            "--kinesis_initial_position=TRIM_HORIZON"]

        def publish_directly(records: list[bytes]) -> None:
            put_records(endpoint, "gateway-logs", records)
    else:
        emulator, emulator_host = start_pubsub_emulator(work_dir)
        services.append(emulator)
        topic, subscription = create_topic_and_subscription(emulator_host, "gateway-logs", "gatewaystream")
        broker = [f"--topic={topic}"]
        environment = {"PUBSUB_EMULATOR_HOST": emulator_host}
        destination = topic
        source_arguments = [f"--subscription={subscription}", f"--project={LOCAL_PROJECT}"]

        def publish_directly(records: list[bytes]) -> None:
            publish(emulator_host, topic, records)

    ingest, ingest_url = start_ingest(work_dir, broker, environment)
    services.append(ingest)

    def send(files: dict[str, list[bytes]]) -> str:
        through_ingest, direct = send_like_gateways(files, ingest_url, publish_directly)
        return (f"{destination}: {through_ingest} through the ingest at {ingest_url} (Kong http-log, Moesif SDK "
                f"batches, Firehose deliveries of AWS logs), {direct} published directly (WSO2 and ALF log lines, "
                "Cloud Logging sink entries, broken records)")

    return source_arguments, environment, send


RUNNERS = MappingProxyType({"direct": "DirectRunner", "prism": "PrismRunner"})


def run(samples: Path, work_dir: Path, timeout: float, source: str = "pubsub", runner: str = "direct",
        serve: bool = False) -> int:
    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    dead_letter_dir = work_dir / "dead-letters"
    files = sample_files(samples)
    records = [record for lines in files.values() for record in lines]
    if not records:
        print(f"run_local: no *.jsonl sample records in {samples}", file=sys.stderr)
        return 1
    expected = sum(count_items(record) for record in records)
    services: list[Service] = []
    try:
        server = "a local Kinesis server (kinesalite)" if source == "kinesis" else "the Pub/Sub emulator"
        print(f"run_local: starting {server}, the ingest and the collector on 127.0.0.1 …", flush=True)
        source_arguments, source_environment, send = start_source(source, work_dir, services)
        collector, collector_url = start_collector(work_dir)
        services.append(collector)
        runner_arguments = [f"--runner={RUNNERS[runner]}"] + (["--streaming"] if runner != "direct" else [])
        pipeline = start_pipeline(
            [*runner_arguments, *source_arguments, f"--api_endpoint={collector_url}",
             f"--dead_letter={dead_letter_dir}", "--company_id_header=X-Org-Id"],
            work_dir,
            {**source_environment, "GATEWAYSTREAM_APPLICATION_ID": LOCAL_APPLICATION_ID},
        )
        services.append(pipeline)
        destination = send(files)
        print(f"run_local: sent {len(records)} sample records holding {expected} events to {destination}; "
              f"the pipeline is running on the {RUNNERS[runner]} …", flush=True)

        deadline = time.monotonic() + timeout
        next_status = time.monotonic() + STATUS_EVERY_SECS
        while True:
            received = http_json(f"{collector_url}/v1/stats")["distinct_transaction_ids"]
            dead = len(dead_letters_in(dead_letter_dir))
            if received + dead >= expected:
                break
            if not pipeline.running():
                print(f"run_local: the pipeline stopped early:\n{pipeline.log_tail()}", file=sys.stderr)
                return 1
            if time.monotonic() > deadline:
                print(f"run_local: timed out after {timeout:.0f} s with {received} received and {dead} "
                      f"dead-lettered of {expected}; pipeline log: {pipeline.log_path}", file=sys.stderr)
                return 1
            if time.monotonic() >= next_status:
                print(f"run_local: {received} received, {dead} dead-lettered of {expected} …", flush=True)
                next_status += STATUS_EVERY_SECS
            time.sleep(0.5)
        pipeline.stop()
        services.remove(pipeline)

        letters = dead_letters_in(dead_letter_dir)
        print()
        print(build_report(EventStore(str(work_dir / "collector.db"))))
        print()
        print("dead letters:")
        for letter in letters:
            print(f"  {letter['stage']}/{letter['reason']}  {letter['source']}  {letter['detail'][:80]}")
        print()
        print(f"accounting: sent {expected} events = received {received} + dead-lettered {len(letters)}"
              f" -> {'every event accounted for' if received + len(letters) == expected else 'MISMATCH'}")
        page = work_dir / "report.html"
        page.write_text(build_page(EventStore(str(work_dir / "collector.db")), letters))
        print(f"files: collector database {work_dir / 'collector.db'}, dead letters {dead_letter_dir}, "
              f"report page {page}, logs {work_dir}/*.log")
        status = 0 if received + len(letters) == expected else 1
        if serve:
            print(f"report page: {collector_url}/ (the collector stays up until Ctrl-C)", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while collector.running():
                    time.sleep(0.5)
        return status
    except MissingPrerequisite as missing:
        print(f"run_local: {missing}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("run_local: interrupted, stopping everything", file=sys.stderr)
        return 130
    finally:
        for service in reversed(services):
            service.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.localrun", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=Path, default=Path("samples"), help="folder of *.jsonl sample records")
    parser.add_argument("--work-dir", type=Path, default=Path("local-run"),
                        help="where logs, the collector database and dead letters go (emptied first)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for every event")
    parser.add_argument("--source", choices=SOURCES, default="pubsub",
                        help="read the samples through the Pub/Sub emulator or a local Kinesis server")
    parser.add_argument("--runner", choices=RUNNERS, default="direct",
                        help="Beam's DirectRunner, or Prism (built by `python -m pipeline.runner_artifacts prism`; "
                        "reads Kinesis only: Beam's Python Pub/Sub source is not a Prism transform)")
    parser.add_argument("--serve", action="store_true",
                        help="after the run, keep the collector up and print the URL of its report page; Ctrl-C "
                        "stops it")
    args = parser.parse_args(argv)
    if args.runner == "prism" and args.source != "kinesis":
        parser.error("--runner prism reads --source kinesis: Beam's Python Pub/Sub source runs only on the "
                     "DirectRunner and Dataflow, and the cross-language one needs a Java expansion service")
    stop_services_on_sigterm()
    return run(args.samples, args.work_dir, args.timeout, args.source, args.runner, args.serve)


if __name__ == "__main__":
    sys.exit(main())
