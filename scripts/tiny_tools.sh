#!/usr/bin/env bash
# Print the path of a git directory (with --commit: the commit itself) holding mlcommons/tiny at
# the commit edgeperf's MLPerf Tiny submission work was checked against (its
# tools/submission/submission_checker.py, v1.4; rules/v6.1.toml's "TC:"), getting one if there
# is none. tests/test_submission_tiny.py runs that checker from it, unmodified (it imports
# pandas: scripts/test.sh installs it).
#
# In order: $MLCOMMONS_TINY_GIT; a local mirror (/work/.mirror/mlcommons+tiny/repo) holding the
# commit; .cache/mlcommons-tiny, fetched once from GitHub (only that commit, only the files of
# tools/submission).
set -euo pipefail
COMMIT=1afd2c9820f795965a6134facd0b4dfae41ef23f
URL=https://github.com/mlcommons/tiny.git
here=$(cd "$(dirname "$0")/.." && pwd)
[ "${1:-}" = "--commit" ] && { echo "$COMMIT"; exit 0; }
# git -C works on a bare mirror and on the cache's work tree alike (--git-dir does not)
has() { git -C "$1" cat-file -e "$COMMIT:tools/submission/submission_checker.py" 2>/dev/null; }
for dir in "${MLCOMMONS_TINY_GIT:-}" /work/.mirror/mlcommons+tiny/repo; do
    if [ -n "$dir" ] && [ -d "$dir" ] && has "$dir"; then
        echo "$dir"
        exit 0
    fi
done
cache="$here/.cache/mlcommons-tiny"
if ! { [ -d "$cache" ] && has "$cache"; }; then
    echo "fetching mlcommons/tiny $COMMIT (tools/submission) into $cache" >&2
    rm -rf "$cache.tmp"
    git init -q "$cache.tmp"
    git -C "$cache.tmp" remote add origin "$URL"
    git -C "$cache.tmp" sparse-checkout set --no-cone /tools/submission/
    # one commit, no blobs but those the sparse checkout needs (fetched in one batch)
    if ! git -C "$cache.tmp" fetch -q --depth 1 --filter=blob:none origin "$COMMIT" || \
       ! git -C "$cache.tmp" -c advice.detachedHead=false checkout -q "$COMMIT"; then
        echo "cannot fetch $URL ($COMMIT): the Tiny submission tests run MLCommons' own" \
             "checker; connect this machine, or set MLCOMMONS_TINY_GIT to a clone holding it" >&2
        exit 1
    fi
    rm -rf "$cache" && mv "$cache.tmp" "$cache"
fi
echo "$cache"
