"""gatewaystream's options: one PipelineOptions subclass, documented here and shown by ``--help``.

Options come from the command line and from a ``--config`` YAML/JSON file whose keys are the option
names (the command line wins). Beam's own options (``--runner``, ``--project``, ``--streaming`` …) pass
through to Beam. ``parse_options`` exits with status 2 and one line naming the option when one is invalid.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import yaml
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.gcp.pubsub import parse_subscription, parse_topic
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from transforms.formats import FORMAT_CHOICES
from transforms.sink import redact_secret

PROG = "python -m pipeline"
APPLICATION_ID_ENV = ("GATEWAYSTREAM_APPLICATION_ID", "MOESIF_APPLICATION_ID")
CONFIG_ALIASES = {"application_id": "moesif_application_id"}  # Moesif Kong plugin names → our option names


class GatewayStreamOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        source = parser.add_argument_group("source (exactly one)")
        source.add_argument("--input", help="file glob to read (local, gs://, s3://): *.jsonl/*.ndjson/*.log(.gz) "
                            "are one record per line, *.avro are dead-letter files to replay, other files are one "
                            "record each; runs bounded and exits when every record is processed")
        source.add_argument("--subscription", help="Pub/Sub subscription to read, projects/P/subscriptions/S "
                            "(streaming)")
        source.add_argument("--topic", help="Pub/Sub topic to read through a temporary subscription, "
                            "projects/P/topics/T (streaming)")

        decode = parser.add_argument_group("decoding")
        decode.add_argument("--input_format", default="auto", choices=FORMAT_CHOICES,
                            help="format of every record; auto detects it from each record's shape (a message's "
                            "`format` attribute wins)")
        decode.add_argument("--max_record_bytes", type=int, default=1024 * 1024,
                            help="a larger record is a dead letter (record_too_large)")
        decode.add_argument("--max_decompressed_bytes", type=int, default=10 * 1024 * 1024,
                            help="a gzip record inflating past this is a dead letter, checked while inflating; "
                            "one budget for every gzip layer inside a record")
        decode.add_argument("--max_json_depth", type=int, default=64,
                            help="JSON nesting deeper than this is a dead letter (max_depth_exceeded)")
        decode.add_argument("--max_elements_per_record", type=int, default=50_000,
                            help="events, lines or array items one record may hold; the rest of a larger record "
                            "is one dead letter (record_too_large), so one record cannot flood the pipeline")

        identity = parser.add_argument_group("identity")
        identity.add_argument("--user_id_header", default="X-Consumer-Custom-Id",
                              help="header whose value is the user id (request, then response); empty to disable")
        identity.add_argument("--company_id_header", default=None,
                              help="header whose value is the company id (request, then response)")

        masking = parser.add_argument_group("masking (Authorization, Proxy-Authorization, Cookie, Set-Cookie, "
                                            "apikey, x-api-key are always masked)")
        masking.add_argument("--request_header_masks", type=_name_list, default=(),
                             help="comma-separated request header names to mask, case-insensitive")
        masking.add_argument("--response_header_masks", type=_name_list, default=(),
                             help="comma-separated response header names to mask, case-insensitive")
        masking.add_argument("--request_query_masks", type=_name_list, default=(),
                             help="comma-separated query parameters to mask, added to the defaults apikey, "
                             "api_key, access_token, token, key, password, secret, client_secret, signature")

        batching = parser.add_argument_group("batching")
        batching.add_argument("--batch_size", type=int, default=200, help="events per batch at most")
        batching.add_argument("--max_batch_delay_secs", type=float, default=2.0,
                              help="a batch is sent at most this long after its first event")
        batching.add_argument("--shards", type=int, default=1,
                              help="keys per destination: batches assembled and sent in parallel")

        delivery = parser.add_argument_group("delivery (--output, or the collection API)")
        delivery.add_argument("--api_endpoint", default="https://api.moesif.net",
                              help="base URL of the Moesif-compatible collector; batches go to "
                              "{api_endpoint}/v1/events/batch")
        # Not --application_id: Beam's Kafka Streams runner options own that flag. A --config file may use
        # `application_id`, the Moesif Kong plugin's name (CONFIG_ALIASES).
        delivery.add_argument("--moesif_application_id", default=None,
                              help="collector application id (X-Moesif-Application-Id); prefer the environment "
                              f"variable {APPLICATION_ID_ENV[0]} (or {APPLICATION_ID_ENV[1]}) so that it stays "
                              "out of job listings")
        delivery.add_argument("--connect_timeout", type=int, default=1000, help="HTTP connect timeout, ms")
        delivery.add_argument("--send_timeout", type=int, default=2000,
                              help="HTTP timeout waiting for the collector's answer, ms")
        delivery.add_argument("--output", default=None,
                              help="write each batch as a JSON array file into this directory instead of sending "
                              "(dry runs)")

        dead = parser.add_argument_group("dead letters")
        dead.add_argument("--dead_letter", default=None,
                          help="directory (local, gs://, s3://) for dead-letter Avro files; required")

        parser.add_argument("--config", default=None,
                            help="YAML or JSON file of option values, keyed by option name; the command line wins")


def _name_list(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


class _OneLineParser(argparse.ArgumentParser):
    """An invalid option is one line naming it, and exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog=PROG,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Read raw API-gateway records, decode, identify, mask, batch and deliver them to an "
        "API-analytics collector, with every failure in a dead-letter output.",
        epilog="Beam's options pass through, e.g. --runner=DirectRunner|DataflowRunner, --project, --region, "
        "--temp_location, --setup_file=./setup.py. Pub/Sub sources run in streaming mode.",
    )
    GatewayStreamOptions._add_argparse_args(parser)
    return parser


def _config_arguments(path: str, parser: argparse.ArgumentParser) -> list[str]:
    """``--config`` file values as command-line arguments, so they get the same parsing and checks."""
    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle)  # YAML is a superset of JSON: one loader serves both
    except (OSError, yaml.YAMLError) as exc:
        parser.error(f"--config {path}: {str(exc).splitlines()[0]}")
    if values is None:
        return []
    if not isinstance(values, dict):
        parser.error(f"--config {path}: must hold a mapping of option names to values")
    known = {action.dest for action in parser._actions}
    arguments = []
    for key, value in values.items():
        key = CONFIG_ALIASES.get(key, key)
        if key not in known or key in ("config", "help"):
            parser.error(f"--config {path}: unknown key {key!r}")
        if isinstance(value, (list, tuple)):
            value = ",".join(str(item) for item in value)
        if value is not None:
            arguments.append(f"--{key}={value}")
    return arguments


def _validate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    sources = [name for name in ("input", "subscription", "topic") if getattr(args, name)]
    if len(sources) != 1:
        parser.error("exactly one of --input, --subscription, --topic is required"
                     + (f" (got {', '.join('--' + s for s in sources)})" if sources else ""))
    for name, check in (("subscription", parse_subscription), ("topic", parse_topic)):
        if getattr(args, name):
            try:
                check(getattr(args, name))
            except ValueError as exc:
                parser.error(f"--{name}: {exc}")
    for name, minimum in (("batch_size", 1), ("shards", 1), ("max_record_bytes", 1), ("max_decompressed_bytes", 1),
                          ("max_json_depth", 2), ("max_elements_per_record", 1), ("connect_timeout", 1),
                          ("send_timeout", 1)):
        if getattr(args, name) < minimum:
            parser.error(f"--{name} must be at least {minimum} (got {getattr(args, name)})")
    if args.max_batch_delay_secs <= 0:
        parser.error(f"--max_batch_delay_secs must be above 0 (got {args.max_batch_delay_secs})")
    if args.input and not _matches_any(args.input):
        parser.error(f"--input: no file matches {args.input!r}")
    if not args.dead_letter:
        parser.error("--dead_letter is required: failures must have somewhere to go")
    if not args.output:
        if not args.api_endpoint.startswith(("http://", "https://")):
            parser.error(f"--api_endpoint must be an http(s) URL (got {args.api_endpoint!r})")
        if not application_id(args):
            parser.error(f"--moesif_application_id (or ${APPLICATION_ID_ENV[0]}) is required unless --output is set")


def _matches_any(pattern: str) -> bool:
    try:
        return any(result.metadata_list for result in FileSystems.match([pattern]))
    except Exception:  # noqa: BLE001 - an unreadable location counts as "no match"; the error names the pattern
        return False


def application_id(args: argparse.Namespace | GatewayStreamOptions) -> str | None:
    return args.moesif_application_id or next(
        (os.environ[name] for name in APPLICATION_ID_ENV if os.environ.get(name)), None
    )


def parse_options(argv: Sequence[str]) -> tuple[argparse.Namespace, PipelineOptions]:
    """Our options (validated) and Beam's PipelineOptions for the whole command line."""
    parser = build_parser()
    argv = list(argv)
    preliminary, _ = parser.parse_known_args(argv)
    config_arguments = _config_arguments(preliminary.config, parser) if preliminary.config else []
    arguments = config_arguments + argv
    args, beam_arguments = parser.parse_known_args(arguments)
    _validate(args, parser)
    pipeline_options = PipelineOptions(beam_arguments)
    if args.subscription or args.topic:
        pipeline_options.view_as(StandardOptions).streaming = True
    return args, pipeline_options


def describe(args: argparse.Namespace) -> dict[str, Any]:
    """The options as a dict safe to log: the application id shows its last 4 characters at most."""
    shown = dict(vars(args))
    secret = application_id(args)
    shown["moesif_application_id"] = redact_secret(secret) if secret else None
    return shown
