#!/usr/bin/env bash
# Install edgeperf in .venv and run a real benchmark on the local board:
# SingleStream and Offline on the built-in .tflite model, 'quick' preset.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_host
make_venv .venv -e '.[litert]'
exec .venv/bin/edgeperf run --board local --model builtin:mlp \
  --scenario SingleStream,Offline --preset quick --out results/demo "$@"
