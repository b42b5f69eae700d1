"""The accuracy rules of one result: accuracy.txt's metric against the target, the accuracy run
covering the whole dataset, and mlperf_log_accuracy.json truncated as MLCommons truncates it,
its sha256 on accuracy.txt's ``hash=`` line.

A truncated log cannot give back its hash: the hash is checked against the untruncated original
when one is at hand (``--originals DIR``, laid out as the tree, as MLCommons' truncation tool's
``--backup`` writes it; or the run directory the tree builder recorded, if it still exists).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from edgeperf.outputs.accuracy_log import parse_accuracy_json
from edgeperf.submission.check_perf import DetailLog, loadgen_errors, read_detail
from edgeperf.submission.check_report import Report
from edgeperf.submission.truncate import HASH_LINE, file_sha256

ACCURACY_JSON = "mlperf_log_accuracy.json"
ACCURACY_FILES = ("mlperf_log_detail.txt", "mlperf_log_summary.txt", ACCURACY_JSON,
                  "accuracy.txt")


def check_accuracy(rep: Report, acc: Path, bench: Any, rules: Any, division: str,
                   originals: list[Path]) -> str:
    """Every accuracy rule on ``<scenario>/accuracy``; the accuracy as the table shows it."""
    for name in ACCURACY_FILES:
        if not (acc / name).is_file():
            rep.error(acc / name, "required-file", "missing; the accuracy run's files are "
                                                   f"{', '.join(ACCURACY_FILES)}")
    log = read_detail(rep, acc / "mlperf_log_detail.txt") \
        if (acc / "mlperf_log_detail.txt").is_file() else None
    if log is not None:
        loadgen_errors(rep, log)
        _dataset_size(rep, log, bench)
    txt = acc / "accuracy.txt"
    if not txt.is_file():
        return "-"
    lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
    shown = _metric(rep, txt, lines, bench, division)
    hashes = [m.group(1) for m in map(HASH_LINE.match, lines) if m]
    js = acc / ACCURACY_JSON
    if not hashes:
        rep.error(txt, "accuracy-hash", "no 'hash=<sha256>' line; truncate the accuracy log "
                                        "with edgeperf submission add (or MLCommons' "
                                        "truncate_accuracy_log.py), which appends it")
    elif js.is_file():
        _truncation(rep, js, hashes[0], rules, bench, originals)
    return shown


def _metric(rep: Report, txt: Path, lines: list[str], bench: Any, division: str) -> str:
    pattern = re.compile(bench.accuracy_pattern)
    values = []
    for line in lines:
        m = pattern.match(line)
        if m:
            try:
                values.append(float(m.group(1)))
            except (IndexError, ValueError):
                pass
    if not values:
        msg = (f"no line matches the {bench.metric} pattern {bench.accuracy_pattern!r}; "
               f"write the accuracy script's output here")
        (rep.error if division == "closed" else rep.warn)(txt, "accuracy-metric", msg)
        return "-"
    value = values[0]
    if value < bench.target:
        msg = (f"{bench.metric} {value:g} is below the target {bench.target:g}")
        if division == "closed":
            rep.error(txt, "accuracy-target", msg + "; closed needs the target met: fix the "
                                                    "model or move the result to open")
        else:
            rep.warn(txt, "accuracy-target", msg + " (recorded; open does not need it)")
    return f"{bench.metric} {value:g}"


def _dataset_size(rep: Report, log: DetailLog, bench: Any) -> None:
    key = "effective_accuracy_sample_count"
    n = log.get(key)
    if n is None:
        key, n = "qsl_reported_total_count", log.get("qsl_reported_total_count")
    if n != bench.dataset_size:
        rep.error(log.path, "dataset-size", f"{key} is {n}, the {bench.dataset} dataset has "
                                            f"{bench.dataset_size} samples; the accuracy run "
                                            f"must cover all of them")


def is_truncated_shape(data: bytes, rules: Any) -> bool:
    keep, marker = rules.truncate_keep_bytes, rules.truncate_marker.encode()
    return len(data) == 2 * keep + len(marker) and data[keep:keep + len(marker)] == marker


def _truncation(rep: Report, js: Path, want: str, rules: Any, bench: Any,
                originals: list[Path]) -> None:
    size = js.stat().st_size
    if size > rules.accuracy_log_max_bytes:
        rep.error(js, "accuracy-log-size", f"{size} bytes, over {rules.accuracy_log_max_bytes}"
                                           f": not truncated; truncate it (edgeperf "
                                           f"submission add does)")
    data = js.read_bytes()
    if len(data) < rules.truncate_keep_bytes:  # too small to truncate: the hash is its own
        if file_sha256(js) != want:
            rep.error(js, "accuracy-hash", f"sha256 {file_sha256(js)} differs from "
                                           f"accuracy.txt's hash={want}; the log was edited "
                                           f"after it was hashed: copy the run's log again")
        _coverage(rep, js, js, bench)
        return
    if not is_truncated_shape(data, rules):
        if file_sha256(js) == want:  # untruncated and hashed (the size rule spoke above)
            _coverage(rep, js, js, bench)
            return
        rep.error(js, "accuracy-truncation",
                  f"neither LoadGen's untruncated log with sha256 = hash= nor a truncated one "
                  f"(first {rules.truncate_keep_bytes} bytes, {rules.truncate_marker!r}, last "
                  f"{rules.truncate_keep_bytes}); truncate the run's original log again")
        return
    original = next((o for o in originals if o.is_file()), None)
    if original is None:
        rep.warn(js, "accuracy-hash", "truncated: its hash= cannot be recomputed without the "
                                      "original (pass --originals DIR)")
        return
    got = file_sha256(original)
    if got != want:
        rep.error(js, "accuracy-hash", f"the original {original} has sha256 {got}, accuracy.txt "
                                       f"says hash={want}; truncate the original log again")
        return
    orig = original.read_bytes()
    keep = rules.truncate_keep_bytes
    if orig[:keep] != data[:keep] or orig[-keep:] != data[-keep:]:
        rep.error(js, "accuracy-truncation", f"the truncated log is not the original {original}"
                                             f"'s first and last {keep} bytes; truncate again")
    _coverage(rep, js, original, bench)


def _coverage(rep: Report, js: Path, full: Path, bench: Any) -> None:
    """The untruncated log answers every sample of the dataset once."""
    try:
        idx = {e.qsl_idx for e in parse_accuracy_json(full)}
    except (ValueError, OSError) as exc:
        rep.error(js, "accuracy-log", f"{full} is not LoadGen's accuracy log: {exc}")
        return
    if idx != set(range(bench.dataset_size)):
        rep.error(js, "dataset-size", f"the accuracy log answers {len(idx)} distinct samples, "
                                      f"the dataset has {bench.dataset_size}; run accuracy "
                                      f"mode over the whole dataset")
