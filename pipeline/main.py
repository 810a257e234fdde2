"""``python -m pipeline``: parse options, build the graph, run it, and print what happened."""
from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import StandardOptions

from pipeline import (  # noqa: F401 - portable registers the PROCESS worker handler
    direct_bundles,
    direct_prism,
    direct_pubsub,
    direct_sdf,
    direct_specs,
    graph,
    portable,
    runner_artifacts,
)
from pipeline.options import describe, kinesis_settings, parse_options, unlistable_location
from pipeline.summary import print_summary
from transforms.io import kinesis
from transforms.io.sources import is_local_runner

_log = logging.getLogger("gatewaystream")


def main(argv: Sequence[str] | None = None) -> int:
    args, pipeline_options = parse_options(sys.argv[1:] if argv is None else argv)
    if args.kinesis_stream:
        local = is_local_runner(pipeline_options.view_as(StandardOptions).runner)
        # Checked only for local runs: a Dataflow or Flink launcher may not hold the workers' AWS credentials.
        # A checkpoint directory that cannot be read would otherwise start the readers over (transforms/io/kinesis.py).
        checkpoints = args.kinesis_checkpoint_dir
        if local and checkpoints and (problem := unlistable_location(checkpoints)):
            print(f"python -m pipeline: --kinesis_checkpoint_dir: {problem}", file=sys.stderr)
            return 2
        if local and (problem := kinesis.stream_problem(kinesis_settings(args))):
            print(f"python -m pipeline: --kinesis_stream: {problem}", file=sys.stderr)
            return 2
    reads_pubsub = bool(args.subscription or args.topic)
    if problem := runner_artifacts.missing_for_run(pipeline_options, reads_pubsub, args.pubsub_source,
                                                   args.pubsub_expansion_service):
        print(f"python -m pipeline: --runner={pipeline_options.view_as(StandardOptions).runner}: {problem}",
              file=sys.stderr)
        return 2
    # force: validating the options may already have logged through the root logger, which configures it
    # at WARNING and would drop our INFO lines.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("apache_beam", "urllib3", "google", "botocore", "boto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _log.info("options: %s", describe(args))
    direct_specs.cache_dofn_specs()  # these four affect only the local DirectRunner
    direct_bundles.commit_only_nonempty_bundles()
    direct_bundles.stack_by_timestamp_micros()
    direct_bundles.refresh_watermarks_from_bundle_minimums()
    if is_local_runner(pipeline_options.view_as(StandardOptions).runner):
        direct_prism.never_try_prism()
    if args.subscription or args.topic:
        direct_pubsub.use_short_pulls()  # only the local DirectRunner's Pub/Sub read is affected
    if args.kinesis_stream:
        direct_sdf.allow_streaming_sdf()  # only the local DirectRunner is affected
    pipeline = beam.Pipeline(options=pipeline_options)
    graph.build(pipeline, args)
    result = pipeline.run()
    result.wait_until_finish()
    if not pipeline_options.view_as(StandardOptions).streaming:
        print_summary(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
