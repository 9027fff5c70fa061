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
# ffmpeg binary for `vdiff pipe` tests (tests/test_pipe.py skips without it)
command -v ffmpeg >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null) \
  || echo "setup.sh: WARNING: could not install ffmpeg; the ffmpeg pipe tests will be skipped" >&2
# VapourSynth R81 needs Python 3.12: a separate .venv-vs for vspipe (tests/test_vapoursynth.py skips without it)
PY312=""  # a pyenv shim may exist yet refuse to run, so try each candidate
for c in $(ls -d "$(pyenv root 2>/dev/null || echo /nonexistent)"/versions/3.12.*/bin/python 2>/dev/null) \
         "$(command -v python3.12 || true)"; do
  if [ -n "$c" ] && "$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then PY312=$c; break; fi
done
if [ -n "$PY312" ]; then
  { [ -x .venv-vs/bin/python ] || "$PY312" -m venv .venv-vs; } &&
  .venv-vs/bin/python -m pip install -q --upgrade pip &&
  .venv-vs/bin/python -m pip install -q "vapoursynth==81" -e . &&
  .venv-vs/bin/vapoursynth config >/dev/null ||  # lets vspipe find this venv's Python and plugins
  { echo "setup.sh: WARNING: VapourSynth venv failed; its tests will be skipped" >&2; rm -rf .venv-vs; }
else
  echo "setup.sh: no python3.12 found; skipping the VapourSynth venv (.venv-vs)" >&2
fi
# OpenFX plugin bundle + headless test host (tests/test_ofx.py skips when cmake or a C compiler is missing)
if command -v cmake >/dev/null && { command -v cc >/dev/null || command -v gcc >/dev/null; }; then
  cmake -S ofx -B build/ofx -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/ofx -j 2 >/dev/null
else
  echo "setup.sh: cmake or a C compiler missing; the OFX plugin tests will be skipped" >&2
fi
