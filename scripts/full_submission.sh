#!/usr/bin/env bash
# A full-length closed submission of ic-digits on the local board, by the shipped rules
# (v6.1: 600 s runs), checked with edgeperf's checker: the README's Submissions block with
# nothing shortened. About 40 minutes: per scenario (SingleStream, Offline) an accuracy run,
# a 600 s performance run and the two 600 s compliance audits.
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
"$edgeperf" run --task ic-digits --mode submission --scenario SingleStream --scenario Offline \
    --preset mlperf --target-latency-ms 0.005 --querylog summary \
    --out runs --quiet > run.txt 2>&1 || echo "edgeperf run exited $? (see $out/run.txt)"
grep -E "^(===|compliance|Result is)" run.txt || true
"$edgeperf" submission init --org EdgePerf --division closed --system-toml system.toml sub
"$edgeperf" submission add sub runs --system local --benchmark ic-digits
"$edgeperf" submission check sub --json check.json
