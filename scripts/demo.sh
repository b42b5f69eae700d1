#!/usr/bin/env bash
# Install edgeperf in .venv and run a real benchmark on the local board:
# SingleStream and Offline on the built-in .tflite model, 'quick' preset. The expected
# latency (1 us) is below what the model takes: LoadGen pre-generates the queries for twice
# the min duration at it and issues no others, so a longer one than the model's would end
# the run early (INVALID, "Decrease the expected latency").
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_host
make_venv .venv -e '.[litert]'
exec .venv/bin/edgeperf run --board local --model builtin:mlp \
  --scenario SingleStream,Offline --preset quick --target-latency-ms 0.001 --out results/demo "$@"
