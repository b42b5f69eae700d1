#!/usr/bin/env bash
# A full-length closed submission of ic-digits on the local board, by the shipped rules
# (v6.1: 600 s runs), checked with edgeperf's checker: the README's Submissions block with
# nothing shortened but the two scenarios run side by side. Per scenario (SingleStream,
# Offline) an accuracy run, a 600 s performance run and the two 600 s compliance audits.
# OFFLINE_QPS: Offline's expected rate (default 130000, above ic-digits' ~100k/s here).
#
#   bash scripts/full_submission.sh [OUT_DIR]     (default results/full-submission)
#
# Prints the check's table; exit status is the check's (0: every rule met).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-results/full-submission}"
edgeperf="${EDGEPERF:-$here/.venv/bin/edgeperf}"
mkdir -p "$out"
cd "$out"
rm -rf runs sub
printf '%s\n' '[system]' 'status = "available"' \
    'host_memory_capacity = "host memory (see the device record)"' \
    'host_memory_configuration = "as the host reports it"' \
    'host_storage_capacity = "as the host reports it"' 'host_storage_type = "virtual disk"' \
    'cooling = "as the host provides"' > system.toml
# the two scenarios side by side, one core each on a 2-core host (about 35 minutes)
"$edgeperf" run --task ic-digits --mode submission --scenario SingleStream --preset mlperf \
    --target-latency-ms 0.005 --querylog summary --out runs/ss --quiet > run-ss.txt 2>&1 &
"$edgeperf" run --task ic-digits --mode submission --scenario Offline --preset mlperf \
    --target-qps "${OFFLINE_QPS:-130000}" --querylog summary --out runs/off --quiet \
    > run-off.txt 2>&1 &
wait || true
cat run-ss.txt run-off.txt > run.txt
grep -E "^(===|compliance|Result is)" run.txt || true
"$edgeperf" submission init --org EdgePerf --division closed --system-toml system.toml sub
"$edgeperf" submission add sub runs/ss runs/off --system local --benchmark ic-digits
"$edgeperf" submission check sub --json check.json
