#!/bin/sh
# Run MLCommons' own submission checker (mlcommons/inference tools/submission, rules v6.1) on a
# submission tree:  scripts/official_checker.sh TREE [checker args, e.g. --submitter ORG]
#
# It installs PyYAML into the venv if missing (the checker's one dependency), exports
# tools/submission from the git dir scripts/mlcommons_tools.sh names (MLCOMMONS_INFERENCE_GIT,
# a local mirror, or a fetched copy) into EXPORT_DIR (default
# ${TMPDIR:-/tmp}/edgeperf-official-checker/<commit>), and runs
#   python -m submission_checker.main --input TREE --version v6.1 --csv <EXPORT_DIR>/summary.csv
# from inside EXPORT_DIR (the checker writes its CSV to the working directory).
# Its log goes to stderr; its exit code is the checker's (0: "SUMMARY: submission looks OK").
set -eu
[ $# -ge 1 ] || { echo "usage: $0 TREE [checker args]" >&2; exit 2; }
tree=$(cd "$1" && pwd); shift
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$here/.venv/bin/python}
git_dir=$(bash "$here/scripts/mlcommons_tools.sh")
"$py" -c "import yaml" 2>/dev/null || "$py" -m pip install --quiet PyYAML >&2
commit=$(bash "$here/scripts/mlcommons_tools.sh" --commit)
export_dir=${EXPORT_DIR:-${TMPDIR:-/tmp}/edgeperf-official-checker/$commit}
mkdir -p "$(dirname "$export_dir")"
# checkers started together (the tests start seven) export once: the others wait here, and
# none replaces the directory another one is running from
exec 9>"$export_dir.lock"
flock 9
if [ ! -f "$export_dir/tools/submission/submission_checker/main.py" ]; then
    tmp="$export_dir.tmp.$$"
    mkdir -p "$tmp"
    # file by file: the mirror lacks some large blobs (tools/submission/e2e-rag samples), which
    # the checker never reads and `git archive` would stop at
    git -C "$git_dir" ls-tree -r --name-only "$commit" tools/submission | while read -r f; do
        mkdir -p "$tmp/$(dirname "$f")"
        git -C "$git_dir" show "$commit:$f" > "$tmp/$f" 2>/dev/null || rm -f "$tmp/$f"
    done
    rm -rf "$export_dir" && mv "$tmp" "$export_dir"
fi
flock -u 9
exec 9>&-
cd "$export_dir"
PYTHONPATH="$export_dir/tools/submission" exec "$py" -m submission_checker.main \
    --input "$tree" --version v6.1 --csv "$export_dir/summary.$$.csv" "$@"
