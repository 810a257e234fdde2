"""The programs Beam's portable runners need, fetched by the project's own command and used from a cache.

``python -m pipeline.runner_artifacts prism|flink|pubsub-expansion|all`` fetches them for the installed Beam
release, never another one (a Python SDK and a job server of different releases do not work together):

* ``prism``: Beam's Prism runner, built with ``go install`` from the Go module proxy into
  ``~/.apache_beam/cache/prism/v<release>/prism`` (about 2.5 minutes the first time; Go 1.24+ needed).
* ``flink``: the Flink job server jar ``org.apache.beam:beam-runners-flink-<flink>-job-server:<release>``,
  copied with ``mvn`` into Beam's jar cache (``~/.apache_beam/cache/jars``), where Beam's FlinkRunner looks.
* ``pubsub-expansion``: the Java expansion service behind Beam's cross-language PubsubIO
  (``beam-sdks-java-io-google-cloud-platform-expansion-service``), likewise.

Beam itself would download these at run time from GitHub or Maven Central with its own HTTP client; machines
that reach package registries only through their ordinary clients (``go``, ``mvn``) cannot, hence this module.
Fetching is idempotent and, once cached, offline. ``python -m pipeline`` never fetches: when the runner it is
given needs an artifact that is not cached, it stops with one line naming the artifact and this command
(``missing_for_run``).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from apache_beam.options.pipeline_options import (
    FlinkRunnerOptions,
    PipelineOptions,
    PrismRunnerOptions,
    StandardOptions,
)
from apache_beam.utils.subprocess_server import JavaJarServer
from apache_beam.version import __version__ as BEAM_VERSION

from pipeline.runners import pubsub_source_for, runner_name

PRISM_MODULE = "github.com/apache/beam/sdks/v2/go/cmd/prism"
MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.11.0"
BEAM_GROUP = "org.apache.beam"
DEFAULT_FLINK_VERSION = FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS[-1]
PUBSUB_EXPANSION_ARTIFACT = "beam-sdks-java-io-google-cloud-platform-expansion-service"
FETCH_COMMAND = "python -m pipeline.runner_artifacts"
NAMES = ("prism", "flink", "pubsub-expansion")


class ArtifactUnavailable(RuntimeError):
    """An artifact that is not cached and could not be fetched; the message is one line."""


@dataclass(frozen=True)
class Artifact:
    name: str  # what FETCH_COMMAND takes
    coordinates: str  # the Go module or Maven artifact, with the release
    path: Path  # where it is cached

    @property
    def fetch_command(self) -> str:
        return f"{FETCH_COMMAND} {self.name}"

    def missing(self) -> str | None:
        """One line naming the artifact and how to fetch it, or None when it is cached."""
        if self.path.is_file():
            return None
        return f"{self.coordinates} is not in {self.path.parent}: fetch it with `{self.fetch_command}`"


def default_cache_root() -> Path:
    """Beam's cache folder (``~/.apache_beam/cache``), the parent of its jar cache."""
    return Path(JavaJarServer.JAR_CACHE).parent


def prism(cache_root: Path | None = None) -> Artifact:
    root = cache_root or default_cache_root()
    return Artifact("prism", f"{PRISM_MODULE}@v{BEAM_VERSION}", root / "prism" / f"v{BEAM_VERSION}" / "prism")


def _maven_artifact(name: str, artifact_id: str, cache_root: Path | None) -> Artifact:
    jars = (cache_root or default_cache_root()) / "jars"
    # The file name Beam's JavaJarServer.local_jar looks for in its jar cache.
    return Artifact(name, f"{BEAM_GROUP}:{artifact_id}:{BEAM_VERSION}", jars / f"{artifact_id}-{BEAM_VERSION}.jar")


def flink_job_server(flink_version: str = DEFAULT_FLINK_VERSION, cache_root: Path | None = None) -> Artifact:
    return _maven_artifact("flink", f"beam-runners-flink-{flink_version}-job-server", cache_root)


def pubsub_expansion_service(cache_root: Path | None = None) -> Artifact:
    return _maven_artifact("pubsub-expansion", PUBSUB_EXPANSION_ARTIFACT, cache_root)


_COLOURS = re.compile(r"\x1b\[[0-9;]*m")
_MAVEN_FRAME = re.compile(r"^\[ERROR\] (Failed to execute goal \S+ \([^)]*\) on project \S+: )?| -> \[Help 1\]$")


def _last_error(output: str) -> str:
    """The line of a tool's output that says what went wrong, without Maven's frame, cut to one short line."""
    lines = [_COLOURS.sub("", line).strip() for line in output.splitlines()]
    lines = [line for line in lines if line]
    errors = [line for line in lines if "ERROR" in line or "error" in line.lower()]
    line = _MAVEN_FRAME.sub("", (errors or lines or ["no output"])[0])
    return line if len(line) <= 300 else line[:297] + "..."


def _run(command: list[str], artifact: Artifact, tool: str, environment: dict[str, str] | None = None) -> None:
    if shutil.which(tool) is None:
        raise ArtifactUnavailable(f"{artifact.coordinates}: `{tool}` is not installed, and it fetches this artifact")
    completed = subprocess.run(command, capture_output=True, text=True, env=environment)
    if completed.returncode != 0:
        raise ArtifactUnavailable(f"{artifact.coordinates} could not be fetched with `{' '.join(command[:3])} …`: "
                                  f"{_last_error(completed.stdout + completed.stderr)}")


def fetch(artifact: Artifact) -> Path:
    """Brings ``artifact`` into its cache unless it is there already; returns its path."""
    if artifact.path.is_file():
        return artifact.path
    artifact.path.parent.mkdir(parents=True, exist_ok=True)
    # Built or copied into a folder beside the target, then renamed: a run that is stopped halfway leaves no
    # partial file that a later start would take for the artifact.
    with tempfile.TemporaryDirectory(dir=artifact.path.parent, prefix=".fetch-") as staging:
        if artifact.name == "prism":
            _run(["go", "install", artifact.coordinates], artifact, "go",
                 {**os.environ, "GOBIN": staging, "GOFLAGS": "-mod=mod"})
            built = Path(staging) / "prism"
        else:
            # -U: Maven would otherwise remember a failed look-up for a day and not ask again.
            _run(["mvn", "-B", "-q", "-U", f"{MAVEN_DEPENDENCY_PLUGIN}:copy", f"-Dartifact={artifact.coordinates}",
                  f"-DoutputDirectory={staging}"], artifact, "mvn")
            built = Path(staging) / artifact.path.name
        if not built.is_file():
            raise ArtifactUnavailable(f"{artifact.coordinates}: the fetch ended without writing {built.name}")
        os.replace(built, artifact.path)
    return artifact.path


def needed_for_run(options: PipelineOptions, cross_language_pubsub: bool) -> list[Artifact]:
    """The cached artifacts ``options``' runner needs that the options do not point at themselves."""
    # Beam takes a runner's class name in any case, with or without "Runner" ("flink", "PrismRunner").
    runner = runner_name(options.view_as(StandardOptions).runner).lower().removesuffix("runner")
    needed = []
    if runner == "prism" and not options.view_as(PrismRunnerOptions).prism_location:
        needed.append(prism())
    if runner == "flink" and not options.view_as(FlinkRunnerOptions).flink_job_server_jar:
        needed.append(flink_job_server(options.view_as(FlinkRunnerOptions).flink_version))
    if cross_language_pubsub:
        needed.append(pubsub_expansion_service())
    return needed


def missing_for_run(options: PipelineOptions, reads_pubsub: bool, pubsub_source: str,
                    expansion_service: str | None) -> str | None:
    """One line naming the first artifact the run needs and does not have, or None. Points the options at the
    cached Prism binary and Flink job server jar, so that Beam never tries to download them."""
    for option, given in (("--prism_location", options.view_as(PrismRunnerOptions).prism_location),
                          ("--flink_job_server_jar", options.view_as(FlinkRunnerOptions).flink_job_server_jar)):
        if given and "://" not in given and not os.path.isfile(given):
            return f"{option}: no file at {given}"
    runner = options.view_as(StandardOptions).runner
    cross_language = (reads_pubsub and not expansion_service
                      and pubsub_source_for(runner, pubsub_source) == "cross_language")
    for artifact in needed_for_run(options, cross_language):
        if problem := artifact.missing():
            return problem
        if artifact.name == "prism":
            options.view_as(PrismRunnerOptions).prism_location = str(artifact.path)
        elif artifact.name == "flink":
            options.view_as(FlinkRunnerOptions).flink_job_server_jar = str(artifact.path)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=FETCH_COMMAND, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", choices=(*NAMES, "all"), help="what to fetch")
    parser.add_argument("--cache_dir", type=Path, default=None,
                        help=f"cache folder (default {default_cache_root()}, Beam's own, where its runners look)")
    parser.add_argument("--flink_version", default=DEFAULT_FLINK_VERSION,
                        choices=FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS,
                        help="Flink release of the job server (Beam's --flink_version)")
    args = parser.parse_args(argv)
    wanted = NAMES if "all" in args.names else tuple(dict.fromkeys(args.names))
    artifacts = {"prism": lambda: prism(args.cache_dir),
                 "flink": lambda: flink_job_server(args.flink_version, args.cache_dir),
                 "pubsub-expansion": lambda: pubsub_expansion_service(args.cache_dir)}
    failed = 0
    for name in wanted:
        artifact = artifacts[name]()
        try:
            print(f"{name}: {fetch(artifact)}")
        except ArtifactUnavailable as unavailable:
            print(f"{FETCH_COMMAND}: {unavailable}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
