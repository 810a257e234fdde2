"""``python -m pipeline.ingest --topic projects/P/topics/T`` (or ``--kinesis_stream NAME``): the front door.

Credentials come from the environment by default, so that they are not in a process listing:
GATEWAYSTREAM_INGEST_APPLICATION_IDS (Moesif application ids, comma-separated), GATEWAYSTREAM_INGEST_KONG_TOKEN,
GATEWAYSTREAM_INGEST_FIREHOSE_ACCESS_KEY. A source without a credential refuses every request (401).
"""
from __future__ import annotations

import argparse
import logging
import os
import ssl
import sys
from typing import NoReturn

from aiohttp import web

from pipeline.ingest.app import IngestSettings, build_app
from pipeline.ingest.brokers import KinesisBroker, PubSubBroker


class IngestOptions:
    """Every option of the ingest, documented once here (``--help``)."""

    @staticmethod
    def parser() -> argparse.ArgumentParser:
        parser = _OneLineParser(prog="python -m pipeline.ingest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        server = parser.add_argument_group("server")
        server.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
        server.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")),
                            help="port to listen on (default: $PORT, as Cloud Run sets it, else 8080)")
        server.add_argument("--tls_cert", default=None, help="PEM certificate chain: serve HTTPS (with --tls_key)")
        server.add_argument("--tls_key", default=None, help="PEM private key of --tls_cert")
        broker = parser.add_argument_group("broker (exactly one)")
        broker.add_argument("--topic", default=None, help="Pub/Sub topic to publish to: projects/P/topics/T")
        broker.add_argument("--kinesis_stream", default=None, help="Kinesis data stream to put records to: a name "
                            "or an ARN")
        broker.add_argument("--aws_region", default=None, help="region of --kinesis_stream (default: the ARN's, "
                            "then boto3's)")
        broker.add_argument("--kinesis_endpoint_url", default=None, help="Kinesis endpoint (VPC endpoint, a local "
                            "server)")
        broker.add_argument("--publish_timeout_secs", type=float, default=30,
                            help="how long a request waits for the broker's acknowledgement before a 503")
        sources = parser.add_argument_group("sources and their credentials")
        sources.add_argument("--application_ids", default=os.environ.get("GATEWAYSTREAM_INGEST_APPLICATION_IDS", ""),
                             help="Moesif application ids accepted in X-Moesif-Application-Id, comma-separated")
        sources.add_argument("--kong_token", default=os.environ.get("GATEWAYSTREAM_INGEST_KONG_TOKEN"),
                             help="token Kong's http-log plugin sends (its `headers` setting) on POST /kong/http-log")
        sources.add_argument("--kong_token_header", default="X-Gatewaystream-Token",
                             help="header that carries --kong_token")
        sources.add_argument("--firehose_access_key",
                             default=os.environ.get("GATEWAYSTREAM_INGEST_FIREHOSE_ACCESS_KEY"),
                             help="access key Firehose sends in X-Amz-Firehose-Access-Key on POST /firehose")
        sources.add_argument("--api_endpoint", default=None,
                             help="analytics API that the Moesif calls other than events (users, companies, "
                             "subscriptions, rules) are relayed to unchanged; without it they are refused with 501")
        limits = parser.add_argument_group("limits")
        limits.add_argument("--max_body_bytes", type=int, default=10 * 1024 * 1024,
                            help="largest request body as sent (413 past it)")
        limits.add_argument("--max_decompressed_bytes", type=int, default=50 * 1024 * 1024,
                            help="largest body once inflated, checked while inflating (413 past it)")
        limits.add_argument("--max_in_flight_bytes", type=int, default=256 * 1024 * 1024,
                            help="bytes of bodies held at once (read, inflated, parsed, being published; and, on "
                            "Pub/Sub, messages the client library still holds for a broker that has not "
                            "acknowledged them); a request that would pass it is answered 503 with Retry-After")
        limits.add_argument("--max_message_bytes", type=int, default=1024 * 1024,
                            help="largest message published (bodies are split between elements to fit); keep it at "
                            "most the pipeline's --max_record_bytes (default 1 MiB), which dead-letters larger records")
        limits.add_argument("--retry_after_secs", type=int, default=5, help="Retry-After of a 503")
        return parser


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def main(argv: list[str] | None = None) -> int:
    parser = IngestOptions.parser()
    args = parser.parse_args(argv)
    if (args.topic is None) == (args.kinesis_stream is None):
        parser.error("give exactly one of --topic and --kinesis_stream")
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls_cert and --tls_key go together")
    for name in ("max_body_bytes", "max_decompressed_bytes", "max_in_flight_bytes", "max_message_bytes"):
        if getattr(args, name) < 1024:
            parser.error(f"--{name} must be at least 1024 (got {getattr(args, name)})")
    if args.api_endpoint is not None and not args.api_endpoint.startswith(("http://", "https://")):
        parser.error(f"--api_endpoint must be an http(s) URL (got {args.api_endpoint!r:.80})")
    ssl_context = None
    if args.tls_cert:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ssl_context.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            parser.error(f"--tls_cert/--tls_key: {exc}")
    settings = IngestSettings(
        application_ids=tuple(item.strip() for item in args.application_ids.split(",") if item.strip()),
        kong_token=args.kong_token or None, kong_token_header=args.kong_token_header,
        firehose_access_key=args.firehose_access_key or None, api_endpoint=args.api_endpoint,
        max_body_bytes=args.max_body_bytes, max_decompressed_bytes=args.max_decompressed_bytes,
        max_in_flight_bytes=args.max_in_flight_bytes, max_message_bytes=args.max_message_bytes,
        retry_after_secs=args.retry_after_secs)
    if args.topic:
        broker = PubSubBroker(args.topic, args.publish_timeout_secs, args.max_in_flight_bytes)
    else:
        broker = KinesisBroker(args.kinesis_stream, args.publish_timeout_secs, args.aws_region,
                               args.kinesis_endpoint_url)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    enabled = [name for name, on in (("moesif", settings.application_ids), ("kong", settings.kong_token),
                                     ("firehose", settings.firehose_access_key)) if on]
    scheme = "https" if ssl_context else "http"
    print(f"ingest listening on {scheme}://{args.host}:{args.port}, publishing to {broker.name}; sources with "
          f"credentials: {', '.join(enabled) or 'none'}", flush=True)
    try:
        # auto_decompress=False: aiohttp would inflate gzip bodies itself, under client_max_size only; the ingest
        # inflates them with its own limit and in-flight budget (pipeline/ingest/bodies.py).
        web.run_app(build_app(broker, settings), host=args.host, port=args.port, ssl_context=ssl_context,
                    access_log=None, print=None, auto_decompress=False)
    finally:
        broker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
