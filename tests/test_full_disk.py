"""A results directory on a full disk: a real local run on a small tmpfs, filled on purpose.

The fill point is set by a ballast file that leaves a chosen number of bytes free. The run
uses synthetic:sleep:2000 (2 ms a query): the agent sends a QueryLog stretch every 500 ms,
so a stretch holds at most ~250 queries (5 KB) and the spill (8 KiB of settings slot, then
20 bytes a query) grows in known steps.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from edgeperf.cli.main import main
from edgeperf.outputs.querylog_file import read_querylog
from edgeperf.run.querylog import read_spill, read_spill_file

QUERIES = 1000
RUN = ["run", "--board", "local", "--model", "synthetic:sleep:2000", "--scenario",
       "SingleStream", "--preset", "smoke", "--min-queries", str(QUERIES), "--max-queries",
       str(QUERIES), "--min-duration", "0", "--quiet"]


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs; ``leave(n)`` fills it with a ballast file so that n bytes are free."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        # the test command runs as root (it apt-installs its packages): a failure, not a skip
        pytest.fail(f"cannot mount a tmpfs for the full-disk tests ({r.stderr.strip()}): run "
                    "the tests as root or with CAP_SYS_ADMIN, as scripts/test.sh does")

    def leave(free: int) -> None:
        st = os.statvfs(mnt)
        have = st.f_bavail * st.f_frsize
        assert free % 4096 == 0 and have > free
        (mnt / "ballast").write_bytes(b"\0" * (have - free))
        st = os.statvfs(mnt)
        assert st.f_bavail * st.f_frsize == free

    try:
        yield mnt, leave
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _no_leftovers(out: Path) -> None:
    names = [p.name for p in out.iterdir()]
    assert not [n for n in names if n.startswith(".edgeperf-writing") or n.endswith(".tmp")]


def _rebuild(spill: Path, roomy: Path, capsys) -> tuple[int, dict, str]:
    roomy.mkdir()
    moved = roomy / "querylog.spill"
    moved.write_bytes(spill.read_bytes())
    code = main(["score", str(moved)])
    out = capsys.readouterr().out
    return code, json.loads((roomy / "result.json").read_text()), out


def test_disk_fills_while_the_spill_is_written(small_disk, tmp_path, capsys):
    mnt, leave = small_disk
    leave(20 * 1024)  # the settings slot and a few stretches, not 1000 queries
    out = mnt / "run"
    code = main([*RUN, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"the results directory {out} is full (" in err and "free of 1.0 MiB" in err
    assert "no space left on the device" in err
    assert "earlier, during the run, the spill" in err
    spill = out / "querylog.spill"
    kept = read_spill_file(spill)
    assert kept.note is None  # cut back to its last complete record
    assert 0 < kept.q.rows < QUERIES
    assert kept.meta is not None and kept.meta["rows_measured"] == QUERIES
    assert (f"{spill} holds {kept.q.rows} of the {QUERIES} queries measured (the other "
            f"{QUERIES - kept.q.rows} were lost when the disk filled)") in err
    assert f"rebuild the outputs: edgeperf score {spill}" in err
    assert not (out / "result.json").exists()
    _no_leftovers(out)

    code, rec, text = _rebuild(spill, tmp_path / "roomy", capsys)
    assert code == 3  # INVALID: the spill holds only part of the run, and says so
    assert rec["run"]["rows"] == kept.q.rows and not rec["valid"]
    assert f"it holds {kept.q.rows} of the {QUERIES} queries" in rec["errors"][0]
    with read_querylog(tmp_path / "roomy" / "querylog.npz") as z:
        assert len(z["done_ns"]) == kept.q.rows
    assert f"rebuilt {kept.q.rows} queries" in text
    assert (tmp_path / "roomy" / "mlperf_log_detail.txt").exists()


def test_disk_fills_while_the_outputs_are_written(small_disk, tmp_path, capsys):
    mnt, leave = small_disk
    out = mnt / "run"
    out.mkdir()
    (out / "notes.txt").write_text("the lab's own notes\n")  # already there: left alone
    leave(40 * 1024)  # the whole spill (~28 KB), not the trace and logs after it
    code = main([*RUN, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"the results directory {out} is full (" in err
    assert "earlier, during the run" not in err
    spill = out / "querylog.spill"
    assert read_spill(spill).rows == QUERIES
    assert f"{spill} holds {QUERIES} of the {QUERIES} queries measured." in err
    assert (out / "notes.txt").read_text() == "the lab's own notes\n"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "querylog.spill"]

    code, rec, _ = _rebuild(spill, tmp_path / "roomy", capsys)
    assert code == 0 and rec["valid"] and rec["run"]["rows"] == QUERIES
    assert rec["summary"]["query_count"] == QUERIES
    assert rec["settings"]["requested"]["min_query_count"] == QUERIES
    assert rec["model"]["spec"] == "synthetic:sleep:2000"


def test_torn_last_record_is_ignored_with_a_note(tmp_path, capsys):
    from edgeperf.run.querylog import QueryLogCollector

    import numpy as np

    col = QueryLogCollector(tmp_path / "querylog.spill")
    rows = 10
    body = (np.arange(rows, dtype="<i8").tobytes() + (np.arange(rows) + 5).astype("<i8")
            .tobytes() + np.arange(rows, dtype="<u4").tobytes())
    col.add(0, rows, 1, body)
    col.add(rows, rows, 1, body)
    col.close()
    spill = tmp_path / "querylog.spill"
    with open(spill, "r+b") as f:
        f.truncate(spill.stat().st_size - 7)  # the host died mid-write
    kept = read_spill_file(spill)
    assert kept.q.rows == rows and "its last record is torn" in kept.note
    assert main(["score", str(spill), "--scenario", "SingleStream"]) in (0, 3)
    captured = capsys.readouterr()
    assert "note: " in captured.err and "ignored, the 10 rows before it are read" in captured.err
    assert "rebuilt 10 queries" in captured.out
