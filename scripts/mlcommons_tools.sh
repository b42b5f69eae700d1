#!/usr/bin/env bash
# Print the path of a git directory (with --commit: the commit itself) holding mlcommons/inference at the commit edgeperf's
# submission work was checked against (its tools/submission: the v6.1 submission checker and
# truncate_accuracy_log.py), getting one if there is none. Tests and
# scripts/official_checker.sh run MLCommons' own tools from it, unmodified.
#
# In order: $MLCOMMONS_INFERENCE_GIT; a local mirror (/work/.mirror/mlcommons+inference/repo)
# holding the commit; .cache/mlcommons-inference, fetched once from GitHub (only that commit,
# only the files of tools/submission and compliance).
set -euo pipefail
COMMIT=b66003e10e2db4b8c36a448b0545ec90fcc6e9e9
URL=https://github.com/mlcommons/inference.git
here=$(cd "$(dirname "$0")/.." && pwd)
[ "${1:-}" = "--commit" ] && { echo "$COMMIT"; exit 0; }
has() { git -C "$1" cat-file -e "$COMMIT^{commit}" 2>/dev/null; }
for dir in "${MLCOMMONS_INFERENCE_GIT:-}" /work/.mirror/mlcommons+inference/repo; do
    if [ -n "$dir" ] && [ -d "$dir" ] && has "$dir"; then
        echo "$dir"
        exit 0
    fi
done
cache="$here/.cache/mlcommons-inference"
if ! { [ -d "$cache" ] && has "$cache" && \
       git -C "$cache" cat-file -e "$COMMIT:tools/submission/submission_checker/main.py"; }; then
    echo "fetching mlcommons/inference $COMMIT (tools/submission) into $cache" >&2
    rm -rf "$cache.tmp"
    git init -q "$cache.tmp"
    git -C "$cache.tmp" remote add origin "$URL"
    git -C "$cache.tmp" sparse-checkout set --no-cone /tools/submission/ /compliance/
    # one commit, no blobs but those the sparse checkout needs (fetched in one batch)
    if ! git -C "$cache.tmp" fetch -q --depth 1 --filter=blob:none origin "$COMMIT" || \
       ! git -C "$cache.tmp" -c advice.detachedHead=false checkout -q "$COMMIT"; then
        echo "cannot fetch $URL ($COMMIT): the submission tests run MLCommons' own tools;" \
             "connect this machine, or set MLCOMMONS_INFERENCE_GIT to a clone holding it" >&2
        exit 1
    fi
    rm -rf "$cache" && mv "$cache.tmp" "$cache"
fi
echo "$cache"
