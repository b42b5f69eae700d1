#!/usr/bin/env bash
# Install edgeperf with its test needs in .venv, a second environment with tflite-runtime
# 2.14 and numpy<2 (what Raspberry Pi OS has) in .venv-tflite, then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
make_venv .venv -e '.[litert,dev]'
make_venv .venv-tflite 'tflite-runtime==2.14.0' 'numpy<2'
export EDGEPERF_TFLITE_PYTHON="$PWD/.venv-tflite/bin/python"
exec .venv/bin/python -m pytest -n 2 -q "$@"
