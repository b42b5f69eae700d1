"""mlperf_log_accuracy.json exactly as LoadGen writes it, and read back."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class AccuracyEntry:
    seq_id: int
    qsl_idx: int
    data: bytes  # the raw output bytes of the sample


def format_accuracy_json(entries: Iterable[AccuracyEntry | tuple[int, int, bytes]]) -> str:
    rows = []
    for e in entries:
        seq_id, qsl_idx, data = (e.seq_id, e.qsl_idx, e.data) if isinstance(e, AccuracyEntry) else e
        rows.append(f'{{ "seq_id" : {int(seq_id)}, "qsl_idx" : {int(qsl_idx)}, '
                    f'"data" : "{bytes(data).hex().upper()}" }}')
    return "[\n" + ",\n".join(rows) + ("\n" if rows else "") + "]\n"


def write_accuracy_json(path: str | os.PathLike[str],
                        entries: Iterable[AccuracyEntry | tuple[int, int, bytes]]) -> None:
    """mlperf_log_accuracy.json exactly as LoadGen writes it (data: uppercase hex)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(format_accuracy_json(entries))


def parse_accuracy_json(path: str | os.PathLike[str]) -> list[AccuracyEntry]:
    """The entries of an mlperf_log_accuracy.json (LoadGen's or ours), in file order."""
    try:
        with open(path, encoding="utf-8") as f:
            rows = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON: {e}") from None
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON array of accuracy entries")
    entries = []
    for n, row in enumerate(rows):
        try:
            entries.append(AccuracyEntry(int(row["seq_id"]), int(row["qsl_idx"]),
                                         bytes.fromhex(row["data"])))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: entry {n} is not {{seq_id, qsl_idx, data (hex)}}: "
                             f"{e}") from None
    return entries
