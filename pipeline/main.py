"""``python -m pipeline``: parse the options, build the configuration and the graph, run it, and print what
happened."""
from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import StandardOptions

from pipeline import graph, runner_artifacts, workarounds
from pipeline.config import PubSubSource, build_config
from pipeline.options import describe, parse_options, unlistable_location
from pipeline.runners import is_local_runner
from pipeline.summary import print_summary
from transforms.io import kinesis

_log = logging.getLogger("gatewaystream")


def main(argv: Sequence[str] | None = None) -> int:
    args, pipeline_options = parse_options(sys.argv[1:] if argv is None else argv)
    runner = pipeline_options.view_as(StandardOptions).runner
    config = build_config(args, runner)
    reads_pubsub = isinstance(config.source, PubSubSource)
    reads_kinesis = isinstance(config.source, kinesis.KinesisSettings)
    if reads_kinesis and is_local_runner(runner):
        # Checked only for local runs: a Dataflow or Flink launcher may not hold the workers' AWS credentials.
        # A checkpoint directory that cannot be read would otherwise start the readers over (transforms/io/kinesis.py).
        checkpoints = config.source.checkpoint_dir
        if checkpoints and (problem := unlistable_location(checkpoints)):
            print(f"python -m pipeline: --kinesis_checkpoint_dir: {problem}", file=sys.stderr)
            return 2
        if problem := kinesis.stream_problem(config.source):
            print(f"python -m pipeline: --kinesis_stream: {problem}", file=sys.stderr)
            return 2
    if problem := runner_artifacts.missing_for_run(pipeline_options, reads_pubsub, args.pubsub_source,
                                                   args.pubsub_expansion_service):
        print(f"python -m pipeline: --runner={runner}: {problem}", file=sys.stderr)
        return 2
    try:
        workarounds.install(pipeline_options, reads_pubsub=reads_pubsub, reads_kinesis=reads_kinesis)
    except workarounds.UnsupportedBeamVersion as exc:
        print(f"python -m pipeline: {exc}", file=sys.stderr)
        return 2
    # force: validating the options may already have logged through the root logger, which configures it
    # at WARNING and would drop our INFO lines.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("apache_beam", "urllib3", "google", "botocore", "boto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _log.info("options: %s", describe(args))
    pipeline = beam.Pipeline(options=pipeline_options)
    graph.build(pipeline, config)
    result = pipeline.run()
    result.wait_until_finish()
    if not pipeline_options.view_as(StandardOptions).streaming:
        print_summary(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
