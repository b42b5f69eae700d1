"""What ``edgeperf score`` reads, turned into a QueryLog and scored as a live run is.

Three kinds of file:

``querylog.npz``
    A run's raw QueryLog (outputs/querylog_file.py: issue and done times, ``sample_idx``,
    ``start_ns``, ``samples_per_row``, ``qsl_index``; the plain arrays of earlier files too).
    Scored exactly as the run was (scoring.inputs): the same settings give the same summary
    numbers as the run's mlperf_log_summary.txt.
    When the file, or the result.json next to it, records the run's scenario, a different
    ``--scenario`` is refused.

CSV with a header (any text file whose first line, after ``#`` comments, names columns)
    One row per query (per sample for Offline), integer nanoseconds on one clock:

    ``done_ns``                    completion time (required)
    ``issue_ns`` / ``scheduled_ns`` when the query was issued; for Server its scheduled
                                   arrival (latency counts from it: ``scheduled_ns`` is read
                                   first when both are there, ``issue_ns`` otherwise)
    ``start_ns``                   the run's start (optional; the same value on every row that
                                   has one, blank allowed after the first); without it the
                                   first issue is the start
    Other columns are ignored. Rows are in issue order.

Bare latencies (``.npy``, or a text file of one integer of nanoseconds a line)
    Enough for SingleStream and MultiStream only, whose queries go back to back: each query
    is taken as issued when the previous one completed (so the min-duration verdict counts
    the latencies' sum). MultiStream's samples per query come from the settings (the preset,
    a conf file or ``--samples-per-query``; LoadGen's 8 by default). Server and Offline are
    scored on timestamps that only a real run has (the arrival schedule, the duration of the
    one query), so bare latencies are refused for them.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeperf import errors
from edgeperf.outputs.querylog_file import QueryLogArrays, QueryLogFileError, read_querylog
from edgeperf.run.querylog import QueryLogData
from edgeperf.run.spec import EXIT_ERROR, EXIT_USAGE
from edgeperf.scoring.inputs import score_input, score_with_settings
from edgeperf.scoring.loadgen import Summary
from edgeperf.settings import TestSettings, effective_settings

ISSUE_COLUMNS = ("scheduled_ns", "issue_ns")  # Server reads them in this order, others reversed


class ScoreFileError(errors.UsageError):
    """A file that cannot be scored; ``exit_code`` 2 when it is the wrong kind for the
    scenario asked for, 1 when it is unreadable or malformed."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Scored:
    summary: Summary
    settings: TestSettings  # as requested (MultiStream: the file's samples per query)
    effective: TestSettings


def needs_text(scenario: str) -> str:
    """What a Server or Offline score needs, in words."""
    cols = "scheduled_ns (or issue_ns) and done_ns" if scenario == "Server" else \
        "issue_ns and done_ns"
    return (f"pass the run's querylog.npz, or a CSV whose header names its columns: {cols}, "
            "in ns (optionally start_ns, the run's start)")


def read(path: Path, scenario: str, samples_per_query: int) -> QueryLogData:
    """The file as a QueryLog. ``samples_per_query`` is MultiStream's for files that do not
    say (CSV, bare latencies); a querylog.npz says it itself."""
    if not path.exists():
        raise ScoreFileError(f"{path} does not exist")
    if path.is_dir():
        raise ScoreFileError(f"{path} is a directory; pass its querylog.npz")
    if path.suffix == ".npz":
        return _read_npz(path, scenario)
    if path.suffix == ".npy":
        lat = np.load(path, allow_pickle=False)
        return _back_to_back(path, np.asarray(lat).reshape(-1), scenario, samples_per_query)
    lines = _numbered_lines(path)
    if not lines:
        raise ScoreFileError(f"{path} holds no latencies")
    if any(c.isalpha() for c in lines[0][1]):  # a header: a CSV of timestamps
        return _read_csv(path, scenario, samples_per_query)
    vals = []
    for n, line in lines:
        try:
            vals.append(int(line))
        except ValueError:
            raise ScoreFileError(f"{path}:{n}: {line!r} is not an integer number of "
                                 "nanoseconds (a CSV needs a header naming its columns)") from None
    return _back_to_back(path, np.array(vals, dtype=np.int64), scenario, samples_per_query)


def _numbered_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ScoreFileError(f"cannot read {path}: {exc}") from None
    return [(n, s) for n, line in enumerate(text.splitlines(), 1)
            if (s := line.strip()) and not s.startswith("#")]


def _recorded_scenario(path: Path, z: QueryLogArrays) -> str | None:
    """The scenario the QueryLog was recorded in: the file's own ``scenario`` entry, else
    the result.json written with it in the same run directory."""
    if "scenario" in z:
        return str(z["scenario"])
    rec_path = path.parent / "result.json"
    if not rec_path.exists():
        return None
    try:
        rec = json.loads(rec_path.read_text())
    except (OSError, ValueError):
        return None
    if (rec.get("files") or {}).get("querylog") != path.name:
        return None  # that record describes another file
    return ((rec.get("settings") or {}).get("requested") or {}).get("scenario")


def _read_npz(path: Path, scenario: str) -> QueryLogData:
    try:
        z = read_querylog(path)
    except QueryLogFileError as exc:
        raise ScoreFileError(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise ScoreFileError(f"cannot read {path}: {exc}") from None
    recorded = _recorded_scenario(path, z)
    if recorded and recorded != scenario:
        raise ScoreFileError(f"{path} was recorded in a {recorded} run, but --scenario is "
                             f"{scenario}: pass --scenario {recorded}", EXIT_USAGE)
    issue = np.asarray(z["issue_ns"]).reshape(-1)
    done = np.asarray(z["done_ns"]).reshape(-1)
    spr = int(z["samples_per_row"]) if "samples_per_row" in z else 1
    sample = (np.asarray(z["sample_idx"]).reshape(-1) if "sample_idx" in z
              else np.zeros(len(done) * spr, np.uint32))
    start = int(z["start_ns"]) if "start_ns" in z else 0
    qsl = np.asarray(z["qsl_index"], np.int64) if "qsl_index" in z else None
    if len(issue) != len(done):
        raise ScoreFileError(f"{path}: {len(issue)} issue times but {len(done)} completions")
    q = QueryLogData(_ints(path, issue, "issue_ns"), _ints(path, done, "done_ns"),
                     sample.astype(np.uint32), spr, start, qsl)
    _check_rows(path, q)
    if not q.start_ns:
        q.start_ns = int(q.issue_ns[0])  # as for a live run whose start never arrived
    return q


def _ints(path: Path, a: np.ndarray, what: str) -> np.ndarray:
    if a.dtype.kind not in "iu":
        raise ScoreFileError(f"{path}: {what} must be integers (ns), got {a.dtype}")
    return a.astype(np.int64)


def _check_rows(path: Path, q: QueryLogData) -> None:
    if q.rows == 0:
        raise ScoreFileError(f"{path} holds no queries")
    if (q.done_ns < q.issue_ns).any():
        row = int(np.argmax(q.done_ns < q.issue_ns))
        raise ScoreFileError(f"{path}: query {row} completes before it was issued")


def _back_to_back(path: Path, lat: np.ndarray, scenario: str, spr: int) -> QueryLogData:
    if scenario in ("Server", "Offline"):
        raise ScoreFileError(f"{path} holds bare latencies; {scenario} is scored on real "
                             f"timestamps, which latencies alone do not give: "
                             f"{needs_text(scenario)}", EXIT_USAGE)
    lat = _ints(path, lat, "latencies")
    if len(lat) == 0:
        raise ScoreFileError(f"{path} holds no latencies")
    if (lat < 0).any():
        raise ScoreFileError(f"{path}: negative latencies")
    issue = np.concatenate([[0], np.cumsum(lat[:-1])]).astype(np.int64)
    spr = spr if scenario == "MultiStream" else 1
    return QueryLogData(issue, issue + lat, np.zeros(len(lat) * spr, np.uint32), spr, 0)


def _read_csv(path: Path, scenario: str, spr: int) -> QueryLogData:
    with open(path, newline="") as f:
        rows = [(n, r) for n, r in enumerate(csv.reader(f), 1)
                if r and "".join(r).strip() and not r[0].lstrip().startswith("#")]
    head_line, header = rows[0]
    names = [h.strip().lower() for h in header]
    index = {name: i for i, name in enumerate(names)}
    order = ISSUE_COLUMNS if scenario == "Server" else ISSUE_COLUMNS[::-1]
    issue_col = next((c for c in order if c in index), None)
    shown = ", ".join(names)
    if "done_ns" not in index:
        raise ScoreFileError(f"{path}: no done_ns column (the columns are {shown}); "
                             f"{needs_text(scenario)}")
    if issue_col is None:
        raise ScoreFileError(f"{path}: no issue_ns or scheduled_ns column (the columns are "
                             f"{shown}); {needs_text(scenario)}")
    issue, done = [], []
    start: int | None = None
    for n, r in rows[1:]:
        cell = {name: r[i].strip() if i < len(r) else "" for name, i in index.items()}.get
        try:
            t_issue, t_done = int(cell(issue_col)), int(cell("done_ns"))
        except ValueError:
            raise ScoreFileError(f"{path}:{n}: {issue_col} and done_ns must be integers of "
                                 f"nanoseconds, got {cell(issue_col)!r}, "
                                 f"{cell('done_ns')!r}") from None
        if t_done < t_issue:
            raise ScoreFileError(f"{path}:{n}: done_ns is before {issue_col}")
        if issue and t_issue < issue[-1]:
            raise ScoreFileError(f"{path}:{n}: {issue_col} goes back in time (rows must be in "
                                 "issue order)")
        if "start_ns" in index and cell("start_ns"):
            try:
                value = int(cell("start_ns"))
            except ValueError:
                raise ScoreFileError(f"{path}:{n}: start_ns {cell('start_ns')!r} is not an "
                                     "integer") from None
            if start is not None and value != start:
                raise ScoreFileError(f"{path}:{n}: start_ns {value} differs from the first "
                                     f"row's {start} (a run has one start)")
            start = value
        issue.append(t_issue)
        done.append(t_done)
    if not issue:
        raise ScoreFileError(f"{path} has a header (line {head_line}) but no rows")
    if start is not None and start > issue[0]:
        raise ScoreFileError(f"{path}: start_ns {start} is after the first {issue_col} "
                             f"{issue[0]}")
    spr = spr if scenario == "MultiStream" else 1
    return QueryLogData(np.array(issue, np.int64), np.array(done, np.int64),
                        np.zeros(len(issue) * spr, np.uint32), spr,
                        issue[0] if start is None else start)


def score_file(path: str | Path, settings: TestSettings, *,
               samples_per_query: int | None = None) -> Scored:
    """Score a file with ``settings`` (the requested settings, as for a run).
    ``samples_per_query`` is the value given on the command line, if any: a querylog.npz
    that says otherwise is refused."""
    path = Path(path)
    s = settings
    scen = s.scenario
    spr = int(effective_settings(s).samples_per_query or 1) if scen == "MultiStream" else 1
    q = read(path, scen, spr)
    if scen == "MultiStream" and q.samples_per_row != spr:
        if samples_per_query is not None:
            raise ScoreFileError(f"{path} holds {q.samples_per_row} samples per query, but "
                                 f"--samples-per-query is {samples_per_query}", EXIT_USAGE)
        s = dataclasses.replace(s, samples_per_query=q.samples_per_row)
    eff = effective_settings(s)
    summary = score_with_settings(score_input(scen, q), s, eff)  # as a live run scores
    return Scored(summary, s, eff)
