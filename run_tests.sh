#!/usr/bin/env bash
# Sets up .venv (first run only) and runs the whole test suite: unit tests, Beam transform tests, and the
# integration tests that start the Pub/Sub emulator and the local collector on 127.0.0.1.
# Extra arguments go to pytest, e.g. ./run_tests.sh -m "not integration" or ./run_tests.sh tests/test_decode.py
set -euo pipefail
cd "$(dirname "$0")"

command -v python3 >/dev/null || { echo "run_tests.sh: python3 not found (3.10+ needed)" >&2; exit 1; }
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import pipeline, apache_beam, pytest, hypothesis, moto, gcp_storage_emulator, aiohttp, moesifwsgi, flask' 2>/dev/null; then
  echo "run_tests.sh: creating .venv and installing gatewaystream with its test extras …"
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip 2>/dev/null
  .venv/bin/python -m pip install --quiet -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c 'import pipeline, apache_beam, pytest' || { echo "run_tests.sh: installation failed" >&2; exit 1; }
fi

# Python imports a compiled module (.so, see setup.py) before the .py beside it: recompile what changed since.
# A failed compile stops here: the tests would otherwise run a stale .so, or pure Python where C is shipped.
mkdir -p build
.venv/bin/python setup.py -q build_ext --inplace >build/compile.log 2>&1 \
  || { echo "run_tests.sh: compiling the per-event modules failed (setup.py); the compiler said:" >&2
       grep -E "error|Error" build/compile.log | head -20 >&2; exit 1; }

# Prism, Beam's portable runner, for tests/test_prism.py: built once with Go (about 2.5 min), then cached.
if command -v go >/dev/null; then
  .venv/bin/python -m pipeline.runner_artifacts prism >/dev/null || echo "run_tests.sh: Prism could not be built" >&2
fi

# Chromium, for tests/test_report_page.py (the collector's report page in a real browser): Debian's package,
# installed when this runs as root or with password-less sudo; otherwise that test says why it skipped.
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then
  if [ "$(id -u)" = 0 ]; then as_root=(); elif sudo -n true 2>/dev/null; then as_root=(sudo -n); else as_root=(none); fi
  if [ "${as_root[0]:-}" != none ]; then
    echo "run_tests.sh: installing Debian's chromium for the report page test …"
    { DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q chromium >/dev/null 2>&1 \
        || { "${as_root[@]}" apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q chromium >/dev/null 2>&1; }; } \
      || echo "run_tests.sh: chromium could not be installed" >&2
  fi
fi

exec .venv/bin/python -m pytest "$@"
