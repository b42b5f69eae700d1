"""Reading the store: filters, one run, its latencies, and the runs ``compare`` is given.

A filter is ``key=value[,key=value]`` with keys board, model (its name or as given), task
(NAME, or NAME:VARIANT), scenario, campaign, result (VALID, INVALID) and since (a date,
``2026-12-01`` or ``2026-12-01T08:00``, UTC, or an age: ``3d``, ``12h``, ``30m``).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from edgeperf.errors import UsageError
from edgeperf.store import schema
from edgeperf.store.db import Store
from edgeperf.store.record import decode_latencies

FILTER_KEYS = ("board", "model", "task", "scenario", "campaign", "result", "since")
PAIR_KEY = ("board", "model", "scenario")  # how a campaign's runs meet another's
_AGE = re.compile(r"(\d+(?:\.\d+)?)([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_filter(text: str) -> dict[str, str]:
    """``board=rpi4,model=kws.tflite`` -> {"board": "rpi4", "model": "kws.tflite"}."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if not eq or not value.strip() or key not in FILTER_KEYS:
            raise UsageError(f"{text!r} is neither a run id nor a filter: write key=value"
                             f"[,key=value] with keys {', '.join(FILTER_KEYS)}, e.g. "
                             "board=local,model=synthetic:busy:100")
        out[key] = value.strip()
    if "since" in out:
        out["since"] = parse_since(out["since"])
    return out


def parse_since(text: str) -> str:
    """A date, a date and time (UTC) or an age (``3d``, ``12h``, ``30m``) -> the ISO-8601
    text recorded_at is compared with."""
    m = _AGE.fullmatch(text.strip())
    if m:
        at = datetime.now(timezone.utc) - timedelta(**{_UNITS[m[2]]: float(m[1])})
    else:
        try:
            at = datetime.fromisoformat(text.strip().rstrip("Z"))
        except ValueError:
            raise UsageError(f"since {text!r}: give a date (2026-12-01), a date and time "
                             "(2026-12-01T08:00, UTC) or an age (3d, 12h, 30m)") from None
        at = at.astimezone(timezone.utc) if at.tzinfo else at.replace(tzinfo=timezone.utc)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def where(filters: dict[str, str]) -> tuple[str, list[Any]]:
    """The WHERE clause (or "") and its parameters."""
    terms, params = [], []
    for key, value in filters.items():
        if key == "model":
            terms.append("(model = ? OR model_spec = ?)")
            params += [value, value]
        elif key == "task":
            terms.append("(task = ? OR task LIKE ? ESCAPE '!')")
            params += [value, re.sub(r"([!%_])", r"!\1", value) + ":%"]
        elif key == "campaign":
            terms.append("campaign_id = ?")
            params.append(value)
        elif key == "since":
            terms.append("recorded_at >= ?")
            params.append(value)
        elif key == "result":
            terms.append("result = ?")
            params.append(value.upper())
        else:
            terms.append(f"{key} = ?")
            params.append(value)
    return (" WHERE " + " AND ".join(terms)) if terms else "", params


def list_runs(st: Store, filters: dict[str, str] | None = None, limit: int | None = None,
              columns: list[str] | None = None) -> list[dict[str, Any]]:
    """Runs matching ``filters``, oldest first (``limit``: the newest that many)."""
    sql, params = where(filters or {})
    cols = ", ".join(columns or schema.COLUMN_NAMES)
    if limit:
        rows = st.query(f"SELECT {cols} FROM runs{sql} ORDER BY id DESC LIMIT ?",
                        [*params, int(limit)])
        return rows[::-1]
    return st.query(f"SELECT {cols} FROM runs{sql} ORDER BY id", params)


def decoded(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its JSON columns parsed."""
    return {k: json.loads(v) if k in schema.JSON_COLUMNS and isinstance(v, str) else v
            for k, v in row.items()}


def get_run(st: Store, run_id: int) -> dict[str, Any]:
    rows = st.query(f"SELECT {', '.join(schema.COLUMN_NAMES)} FROM runs WHERE id = ?",
                    (int(run_id),))
    if not rows:
        raise UsageError(f"no run {run_id} in results store {st.where}; 'edgeperf results "
                         "list' shows the runs there")
    return decoded(rows[0])


def get_latencies(st: Store, run_id: int) -> tuple[np.ndarray, int] | None:
    """(the latencies the store kept, how many the run had), or None."""
    rows = st.query("SELECT count, kept, encoding, data FROM run_latencies WHERE run_id = ?",
                    (int(run_id),))
    if not rows:
        return None
    r = rows[0]
    if r["encoding"] != schema.LATENCY_ENCODING:
        raise UsageError(f"run {run_id}'s latencies are stored as {r['encoding']!r}, which "
                         "this edgeperf cannot read: upgrade edgeperf")
    return decode_latencies(r["data"]), int(r["count"])


def latency_counts(st: Store, run_id: int) -> tuple[int, int] | None:
    """(kept, count) of a run's stored latencies, without reading them."""
    rows = st.query("SELECT kept, count FROM run_latencies WHERE run_id = ?", (int(run_id),))
    return (int(rows[0]["kept"]), int(rows[0]["count"])) if rows else None


def select_runs(st: Store, spec: str) -> list[dict[str, Any]]:
    """``compare``'s A or B: a run id; a filter's latest run; or, with campaign=, the
    latest run of each board/model/scenario of the campaign."""
    if spec.strip().isdigit():
        return [get_run(st, int(spec))]
    filters = parse_filter(spec)
    rows = [decoded(r) for r in list_runs(st, filters)]
    rows = [r for r in rows if r["kind"] == "loadgen"] or rows
    if not rows:
        raise UsageError(f"no run in results store {st.where} matches {spec}; 'edgeperf "
                         "results list' shows the runs there")
    if "campaign" not in filters:
        return [rows[-1]]
    latest = {tuple(r[k] for k in PAIR_KEY): r for r in rows}
    return list(latest.values())


def pairs(a_rows: list[dict[str, Any]], b_rows: list[dict[str, Any]]
          ) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], list[str]]:
    """A's and B's runs matched by board/model/scenario (one each: the two, whatever they
    are); and what had no partner, as words."""
    if len(a_rows) == 1 and len(b_rows) == 1:
        return [(a_rows[0], b_rows[0])], []
    key = lambda r: tuple(r[k] for k in PAIR_KEY)  # noqa: E731
    b_by = {key(r): r for r in b_rows}
    matched = [(a, b_by[key(a)]) for a in a_rows if key(a) in b_by]
    a_keys = {key(a) for a in a_rows}
    lonely = [f"run {r['id']} ({' '.join(str(v) for v in key(r))}) of {side} has no partner"
              for side, rows, other in (("A", a_rows, set(b_by)), ("B", b_rows, a_keys))
              for r in rows if key(r) not in other]
    return matched, lonely
