#!/usr/bin/env bash
# Installs everything the test suite needs, from scratch, into .venv (and .venv-vs for VapourSynth).
# Idempotent: rerunning reuses what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
# --- extra test requirements (VapourSynth venv, ffmpeg binary, compilers) go below this line ---
