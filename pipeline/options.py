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
from types import MappingProxyType
from typing import Any, NoReturn

import yaml
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.gcp.pubsub import parse_subscription, parse_topic
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from pipeline.runners import PUBSUB_SOURCES
from transforms.io.kinesis import KinesisConfigError, KinesisSettings, parse_initial_position
from transforms.io.sink import redact_secret
from transforms.stages.dead_letter_payload import PAYLOAD_POLICIES
from transforms.stages.decode import DecodeSettings
from transforms.stages.formats import FORMAT_CHOICES
from transforms.stages.identity import IdentitySettings
from transforms.stages.masking import MaskConfigError, MaskSettings
from transforms.stages.routes import RouteSettings, RouteTemplateError, parse_template

PROG = "python -m pipeline"
APPLICATION_ID_ENV = ("GATEWAYSTREAM_APPLICATION_ID", "MOESIF_APPLICATION_ID")
HASH_SALT_ENV = "GATEWAYSTREAM_HASH_SALT"
CONFIG_ALIASES = MappingProxyType({  # Moesif Kong plugin names (incl. deprecated ones) → our option names
    "application_id": "moesif_application_id",
    "request_masks": "request_body_masks",
    "response_masks": "response_body_masks",
})  # Moesif Kong plugin names → our option names


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

        source.add_argument("--kinesis_stream", metavar="NAME_OR_ARN",
                            help="Amazon Kinesis data stream to read (streaming); AWS credentials come from boto3's "
                            "standard chain (environment, profile, instance or workload role), never from an option")

        source.add_argument("--pubsub_source", default="auto", choices=PUBSUB_SOURCES,
                            help="Pub/Sub read implementation: native (Beam's Python source: DirectRunner, "
                            "Dataflow) or cross_language (Beam's Java PubsubIO via an expansion service: Flink "
                            "and other portable runners); auto picks by --runner")
        source.add_argument("--pubsub_expansion_service", default=None,
                            help="host:port of a running Java expansion service for cross_language; by default "
                            "Beam starts one from the jar it fetches from Maven Central")

        kinesis = parser.add_argument_group("Kinesis (with --kinesis_stream)")
        kinesis.add_argument("--aws_region", default=None,
                             help="AWS region of the stream; default: the region in the ARN, else boto3's "
                             "(AWS_REGION, AWS_DEFAULT_REGION, the profile)")
        kinesis.add_argument("--kinesis_endpoint_url", default=None,
                             help="Kinesis endpoint URL, for a VPC endpoint or a local server "
                             "(e.g. http://127.0.0.1:4567)")
        kinesis.add_argument("--kinesis_initial_position", default="LATEST",
                             help="where a reader starts when there is no checkpoint: LATEST, TRIM_HORIZON or "
                             "AT_TIMESTAMP:<ISO 8601 time with zone>")
        kinesis.add_argument("--kinesis_checkpoint_dir", default=None,
                             help="directory (local, gs://, s3://) where each shard reader saves the last sequence "
                             "number it handed on (on the local DirectRunner: the last whose events were all "
                             "delivered or dead-lettered), about once a second; a pipeline started with the same "
                             "directory resumes after it instead of at --kinesis_initial_position")

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
        decode.add_argument("--route_templates", type=as_route_templates, default=(),
                            help="comma-separated path templates, matched before the route is inferred from the "
                            "path (e.g. /v1/users/{user}/cards/{card}); each event's route goes to metadata.route")
        decode.add_argument("--max_routes_per_prefix", type=int, default=100,
                            help="distinct literal path segments a route prefix may have (per worker) before new "
                            "ones become {id}, so that unrecognised ids cannot explode the route set")
        decode.add_argument("--max_elements_per_record", type=int, default=50_000,
                            help="events, lines or array items one record may hold; the rest of a larger record "
                            "is one dead letter (record_too_large), so one record cannot flood the pipeline")

        identity = parser.add_argument_group(
            "identity (precedence: the configured header, then the format's own fields, then the JWT claims)")
        identity.add_argument("--user_id_header", default="X-Consumer-Custom-Id",
                              help="header whose value is the user id (request, then response); empty to disable")
        identity.add_argument("--company_id_header", default=None,
                              help="header whose value is the company id (request, then response)")
        identity.add_argument("--authorization_header_name", type=as_name_list, default=("Authorization",),
                              help="comma-separated request headers that may carry a JWT (Bearer optional); the "
                              "first one present is read")
        identity.add_argument("--authorization_user_id_field", default="sub",
                              help="JWT claim holding the user id (a dotted path reaches nested claims)")
        identity.add_argument("--authorization_company_id_field", type=as_name_list, default=("company_id", "org_id"),
                              help="comma-separated JWT claims holding the company id, first present wins")
        identity.add_argument("--api_version_header", default="X-Api-Version",
                              help="request header holding the API version, when the format has none")
        identity.add_argument("--api_version", default=None,
                              help="API version for events that have none from their format or header")

        masking = parser.add_argument_group("masking (Authorization, Proxy-Authorization, Cookie, Set-Cookie, "
                                            "apikey, x-api-key are always masked); names are case-insensitive")
        masking.add_argument("--request_header_masks", type=as_name_list, default=(),
                             help="comma-separated request header names whose values are masked")
        masking.add_argument("--response_header_masks", type=as_name_list, default=(),
                             help="comma-separated response header names whose values are masked")
        masking.add_argument("--request_query_masks", type=as_name_list, default=(),
                             help="comma-separated query parameters to mask, added to the defaults apikey, "
                             "api_key, access_token, token, key, password, secret, client_secret, signature; "
                             "every occurrence, in request.uri and in URLs inside metadata")
        masking.add_argument("--request_body_masks", type=as_name_list, default=(),
                             help="comma-separated JSON field names (any depth) or dotted paths (from the body's "
                             "root, e.g. card.number) masked in request bodies")
        masking.add_argument("--response_body_masks", type=as_name_list, default=(),
                             help="the same for response bodies")
        masking.add_argument("--unmasked_headers", type=as_name_list, default=(),
                             help="always-masked headers to let through unmasked (explicit opt-out)")
        masking.add_argument("--field_masks", type=as_field_masks, default=(),
                             help="typed masks as FIELD=TYPE,...: fields ip_address, user_id, company_id, "
                             "user_agent, metadata.KEY (WSO2 names userIp, userName, userId, userAgent, "
                             "applicationOwner work too); types IPV4 (3rd octet), IPV6 (segments 4-7), EMAIL "
                             "(local part), STRING (whole value), HASH (salted SHA-256, keeps values joinable)")
        masking.add_argument("--hash_salt", default=None,
                             help=f"secret salt for HASH masks; prefer ${HASH_SALT_ENV}. Never logged")
        masking.add_argument("--disable_capture_request_body", type=as_boolean, nargs="?", const=True, default=False,
                             help="drop request bodies")
        masking.add_argument("--disable_capture_response_body", type=as_boolean, nargs="?", const=True, default=False,
                             help="drop response bodies")
        masking.add_argument("--send_headers", type=as_boolean, nargs="?", const=True, default=True,
                             help="false drops every header except content-type, content-length, user-agent and "
                             "accept")
        masking.add_argument("--request_max_body_size_limit", type=int, default=100_000,
                             help="request bodies larger than this many bytes are dropped and the size is put in "
                             "metadata.request_body_dropped_bytes")
        masking.add_argument("--response_max_body_size_limit", type=int, default=100_000,
                             help="the same for response bodies (metadata.response_body_dropped_bytes)")

        batching = parser.add_argument_group("batching")
        batching.add_argument("--batch_size", type=int, default=200, help="events per batch at most")
        batching.add_argument("--batch_max_bytes", type=int, default=1024 * 1024,
                              help="serialized JSON bytes per batch at most; an event larger than this alone is a "
                              "dead letter (event_too_large)")
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
        delivery.add_argument("--max_retry_secs", type=float, default=300.0,
                              help="retry a batch (connection errors, timeouts, 408, 429, 5xx) with exponential "
                              "backoff and full jitter, honouring Retry-After, for at most this long; then its "
                              "events are dead letters. 413 splits the batch; other 4xx are not retried")
        delivery.add_argument("--batches_in_flight", type=int, default=4,
                              help="batches sent at once by each delivering worker thread (1-16), so that the "
                              "pipeline goes on while the collector answers; when all are being retried, "
                              "the pipeline waits (backpressure)")
        delivery.add_argument("--output", default=None,
                              help="write each batch as a JSON array file into this directory instead of sending "
                              "(dry runs)")

        archive = parser.add_argument_group("archive (Parquet copies of the masked events, for a data lake)")
        archive.add_argument("--archive", default=None,
                             help="directory (local, gs://, s3://) for Parquet files partitioned "
                             "dt=YYYY-MM-DD/hour=HH/; off when unset")
        archive.add_argument("--archive_window_secs", type=int, default=300,
                             help="event-time window of one set of archive files")
        archive.add_argument("--allowed_lateness_secs", type=int, default=600,
                             help="events later than the watermark by up to this much go to a late file of "
                             "their window; later ones to a late file of their hour (never dropped)")

        dead = parser.add_argument_group("dead letters")
        dead.add_argument("--dead_letter", default=None,
                          help="directory (local, gs://, s3://) for dead-letter Avro files, or "
                          "pubsub:projects/P/topics/T to publish each dead letter (payload as data, the other "
                          "fields as attributes); required")

        dead.add_argument("--dead_letter_payload", default="masked", choices=PAYLOAD_POLICIES,
                          help="what a read or decode dead letter keeps of its raw record: masked (default: the "
                          "record's text with the header, query and body masks applied as far as it can be read; "
                          "a replay cannot recover what was masked), raw (the record as it came, for an exact "
                          "replay: the dead-letter store then holds the records' secrets), none (no payload)")

        parser.add_argument("--config", default=None,
                            help="YAML or JSON file of option values, keyed by option name; the command line wins")


def as_name_list(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def as_route_templates(text: str) -> tuple[str, ...]:
    templates = as_name_list(text)
    for template in templates:
        try:
            parse_template(template)
        except RouteTemplateError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return templates


def as_boolean(text: str | bool) -> bool:
    lowered = str(text).strip().lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def as_field_masks(text: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in as_name_list(text):
        name, equals, kind = item.partition("=")
        if not equals or not name.strip() or not kind.strip():
            raise argparse.ArgumentTypeError(f"expected FIELD=TYPE, got {item!r}")
        pairs.append((name.strip(), kind.strip().upper()))
    return tuple(pairs)


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
        if isinstance(value, dict):  # field_masks: {ip_address: IPV4, ...}
            value = ",".join(f"{name}={kind}" for name, kind in value.items())
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(item) for item in value)
        if value is not None:
            arguments.append(f"--{key}={value}")
    return arguments


def _validate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    sources = [name for name in ("input", "subscription", "topic", "kinesis_stream") if getattr(args, name)]
    if len(sources) != 1:
        parser.error("exactly one of --input, --subscription, --topic, --kinesis_stream is required"
                     + (f" (got {', '.join('--' + s for s in sources)})" if sources else ""))
    for name, check in (("subscription", parse_subscription), ("topic", parse_topic)):
        if getattr(args, name):
            try:
                check(getattr(args, name))
            except ValueError as exc:
                parser.error(f"--{name}: {exc}")
    if args.kinesis_stream:
        try:
            kinesis_settings(args)
        except KinesisConfigError as exc:
            parser.error(f"--{exc}")
    for name, minimum in (("batch_size", 1), ("batch_max_bytes", 1024), ("shards", 1), ("max_record_bytes", 1),
                          ("max_decompressed_bytes", 1),
                          ("max_json_depth", 2), ("max_elements_per_record", 1), ("max_routes_per_prefix", 1),
                          ("connect_timeout", 1),
                          ("send_timeout", 1), ("request_max_body_size_limit", 0),
                          ("response_max_body_size_limit", 0), ("archive_window_secs", 1), ("max_retry_secs", 0),
                          ("allowed_lateness_secs", 0), ("batches_in_flight", 1)):
        if getattr(args, name) < minimum:
            parser.error(f"--{name} must be at least {minimum} (got {getattr(args, name)})")
    if args.batches_in_flight > 16:
        parser.error(f"--batches_in_flight must be at most 16 (got {args.batches_in_flight})")
    if args.max_batch_delay_secs <= 0:
        parser.error(f"--max_batch_delay_secs must be above 0 (got {args.max_batch_delay_secs})")
    try:
        mask_settings(args)
    except MaskConfigError as exc:
        parser.error(f"--{exc}")
    if args.input:
        _check_input_matches(args.input, parser)
    if not args.dead_letter:
        parser.error("--dead_letter is required: failures must have somewhere to go")
    if args.dead_letter.startswith("pubsub:"):
        try:
            parse_topic(args.dead_letter.removeprefix("pubsub:"))
        except ValueError as exc:
            parser.error(f"--dead_letter: {exc}")
    if not args.output:
        if not args.api_endpoint.startswith(("http://", "https://")):
            parser.error(f"--api_endpoint must be an http(s) URL (got {args.api_endpoint!r})")
        if not application_id(args):
            parser.error(f"--moesif_application_id (or ${APPLICATION_ID_ENV[0]}) is required unless --output is set")


def _check_input_matches(pattern: str, parser: argparse.ArgumentParser) -> None:
    matched, problem = _listing(pattern)
    if problem:
        parser.error(f"--input: {problem}")
    if not matched:
        parser.error(f"--input: no file matches {pattern!r}")


def unlistable_location(pattern: str) -> str | None:
    """Why ``pattern`` (a directory or a glob on any Beam filesystem) cannot be listed; None when it can."""
    return _listing(pattern)[1]


def _listing(pattern: str) -> tuple[bool, str | None]:
    """Whether ``pattern`` matches anything, and why it cannot be listed (None when it can)."""
    try:
        return any(result.metadata_list for result in FileSystems.match([pattern])), None
    except Exception as exc:  # noqa: BLE001 - any filesystem's failure (credentials, endpoint, bucket) is reported
        return False, f"cannot list {pattern!r}: {_one_line(exc)}"


def _one_line(exc: Exception) -> str:
    """Beam wraps a filesystem's error in BeamIOError, whose text holds the cause's repr: the cause reads better."""
    cause = getattr(exc, "exception_details", None)
    if isinstance(cause, dict) and cause:
        exc = next(iter(cause.values()))
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


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
    pipeline_options = PipelineOptions(beam_arguments)
    # Beam's filesystems take their settings (an S3 endpoint and keys, GCS options) from the pipeline options,
    # which Beam hands them only when a Pipeline is built: the --input and checkpoint checks need them before that.
    FileSystems.set_options(pipeline_options)
    _validate(args, parser)
    if args.subscription or args.topic or args.kinesis_stream:
        pipeline_options.view_as(StandardOptions).streaming = True
    return args, pipeline_options


def kinesis_settings(args: argparse.Namespace) -> KinesisSettings:
    """The Kinesis source's settings; raises KinesisConfigError naming a bad option."""
    settings = KinesisSettings(args.kinesis_stream, args.aws_region, args.kinesis_endpoint_url,
                               args.kinesis_initial_position, args.kinesis_checkpoint_dir)
    settings.stream_name  # noqa: B018 - validates the name or ARN
    parse_initial_position(settings.initial_position)
    if settings.region_name is None:
        import boto3

        if boto3.session.Session().region_name is None:
            raise KinesisConfigError("aws_region is needed: the stream is not an ARN and boto3 finds no region "
                                     "(AWS_REGION, AWS_DEFAULT_REGION or a profile)")
    return settings


def hash_salt(args: argparse.Namespace) -> str | None:
    return args.hash_salt or os.environ.get(HASH_SALT_ENV) or None


def decode_settings(args: argparse.Namespace) -> DecodeSettings:
    return DecodeSettings(args.max_record_bytes, args.max_decompressed_bytes, args.input_format, args.max_json_depth,
                          args.max_elements_per_record)


def route_settings(args: argparse.Namespace) -> RouteSettings:
    return RouteSettings(args.route_templates, args.max_routes_per_prefix)


def identity_settings(args: argparse.Namespace) -> IdentitySettings:
    return IdentitySettings(
        user_id_header=args.user_id_header or None,
        company_id_header=args.company_id_header or None,
        authorization_header_name=args.authorization_header_name,
        authorization_user_id_field=args.authorization_user_id_field,
        authorization_company_id_field=args.authorization_company_id_field,
        api_version_header=args.api_version_header or None,
        api_version=args.api_version or None,
    )


def mask_settings(args: argparse.Namespace) -> MaskSettings:
    """The masking options as settings; raises MaskConfigError for a mask that cannot work."""
    return MaskSettings(
        request_header_masks=args.request_header_masks,
        response_header_masks=args.response_header_masks,
        request_query_masks=args.request_query_masks,
        request_body_masks=args.request_body_masks,
        response_body_masks=args.response_body_masks,
        unmasked_headers=args.unmasked_headers,
        field_masks=args.field_masks,
        hash_salt=hash_salt(args),
        disable_capture_request_body=args.disable_capture_request_body,
        disable_capture_response_body=args.disable_capture_response_body,
        send_headers=args.send_headers,
        request_max_body_size_limit=args.request_max_body_size_limit,
        response_max_body_size_limit=args.response_max_body_size_limit,
        max_decompressed_bytes=args.max_decompressed_bytes,
    )


def describe(args: argparse.Namespace) -> dict[str, Any]:
    """The options as a dict safe to log: the application id shows its last 4 characters at most, and the
    hash salt only whether it is set."""
    shown = dict(vars(args))
    secret = application_id(args)
    shown["moesif_application_id"] = redact_secret(secret) if secret else None
    shown["hash_salt"] = "(set)" if hash_salt(args) else None
    return shown
