#!/usr/bin/env bash
# Runs gatewaystream end to end on the bundled sample traffic, on this machine:
# creates .venv and installs the project (first run only), starts the Pub/Sub emulator and the local
# collector on 127.0.0.1, publishes samples/*.jsonl, runs the pipeline on the DirectRunner until every
# sample event is accounted for, prints the collector's report, and stops everything it started.
# Options: --source pubsub|kinesis (kinesis: a local kinesalite server instead of the emulator),
# --runner direct|prism (prism: Beam's Prism runner, built with Go on first use; with --source kinesis),
# --timeout SECS, --work-dir DIR (default ./local-run), --samples DIR, --serve (keep the collector up after the run
# and print the URL of its report page, until Ctrl-C; the page is also written to local-run/report.html).
set -euo pipefail
cd "$(dirname "$0")"

need() { command -v "$1" >/dev/null 2>&1 || { echo "run_local.sh: $1 not found: $2" >&2; exit 1; }; }
need python3 "install Python 3.10 or newer"
case " $* " in
  *" --source kinesis "*|*" --source=kinesis "*)
    need node "the local Kinesis server (kinesalite, installed from npm on first use) needs Node.js"
    need npm "kinesalite is installed from npm on first use" ;;
  *)
    need gcloud "install the Google Cloud CLI with its Pub/Sub emulator (google-cloud-cli-pubsub-emulator)"
    need java "the Pub/Sub emulator needs a Java runtime (default-jre-headless)" ;;
esac
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "run_local.sh: Python 3.10+ needed" >&2; exit 1; }

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import pipeline, apache_beam' 2>/dev/null; then
  echo "run_local.sh: creating .venv and installing gatewaystream (a few minutes the first time) …"
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip 2>/dev/null
  .venv/bin/python -m pip install --quiet -e . 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c 'import pipeline, apache_beam' || { echo "run_local.sh: installation failed" >&2; exit 1; }
fi

if .venv/bin/python -c 'import Cython' 2>/dev/null; then  # recompile modules edited since the install (setup.py)
  mkdir -p build
  .venv/bin/python setup.py -q build_ext --inplace >build/compile.log 2>&1 \
    || { echo "run_local.sh: compiling the per-event modules failed; see build/compile.log" >&2; exit 1; }
fi

case " $* " in
  *" --runner prism "*|*" --runner=prism "*)
    need go "Prism is built from the Go module proxy on first use (python -m pipeline.runner_artifacts prism)"
    .venv/bin/python -m pipeline.runner_artifacts prism >/dev/null ;;
esac

exec .venv/bin/python -m devtools.localrun "$@"
