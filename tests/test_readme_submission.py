"""The README's Submissions section, followed as a newcomer would: its shell block, run line by
line in an empty directory, with only ``--preset mlperf`` (600 s runs) swapped for the short
runs the section itself suggests for a first try (and an Offline rate above the model's, so
that a 0.3 s query sized from a warm-up on a busy machine still outlasts its min duration).
The check then refuses the short durations
and, with a rules copy whose min_duration_ms is lowered, nothing but audits whose own verify
files say TEST FAIL (two short timings on a busy machine: whether they pass is not asserted).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

from edgeperf.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
FIRST_TRY = "--preset smoke --min-duration 0.3"
FAST_OFFLINE = "--target-qps 500000"  # replaces the block's own rate (a machine's may exceed it)


def _commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Submissions\n"):]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the Submissions section has no shell block"
    lines, cmd = [], ""
    for ln in block[1].splitlines():
        if ln.lstrip().startswith("#") or not ln.strip():
            continue
        cmd += ln.rstrip("\\").strip() + " "
        if not ln.endswith("\\"):
            lines.append(cmd.strip())
            cmd = ""
    return lines


def test_the_sections_commands_give_a_checked_tree(tmp_path, monkeypatch, capsys) -> None:
    cmds = _commands()
    assert [c.split()[0] for c in cmds] == ["edgeperf", "printf", "edgeperf", "edgeperf",
                                            "edgeperf"]
    assert "--preset mlperf" in cmds[0]
    monkeypatch.chdir(tmp_path)
    codes = []
    for c in cmds:
        c = re.sub(r"--target-qps \S+", FAST_OFFLINE, c.replace("--preset mlperf", FIRST_TRY))
        if c.startswith("edgeperf "):
            codes.append(main(shlex.split(c)[1:] + (["--quiet"] if " run " in c else [])))
        else:
            subprocess.run(["bash", "-c", c], check=True)
    assert codes[0] in (0, 3) and codes[1:3] == [0, 0]
    assert codes[3] == 3  # the short runs: refused
    data = json.loads((tmp_path / "check.json").read_text())
    rules = {e["rule"] for e in data["errors"]}
    assert {"min-duration-setting", "min-duration-measured"} <= rules
    assert rules <= {"min-duration-setting", "min-duration-measured", "compliance-TEST01",
                     "compliance-TEST04"} | {e["rule"] for e in data["errors"]
                                              if "/TEST0" in e["file"]}
    assert len(data["results"]) == 2

    shipped = (ROOT / "host/submission/rules/v6.1.toml").read_text()
    (tmp_path / "my-rules.toml").write_text(shipped.replace("min_duration_ms = 600000",
                                                            "min_duration_ms = 1"))
    capsys.readouterr()
    code = main(["submission", "check", "sub", "--rules-file", "my-rules.toml", "--json",
                 "again.json"])
    again = json.loads((tmp_path / "again.json").read_text())
    failed = set()
    for f in (tmp_path / "sub").rglob("verify_*.txt"):
        lines = [ln.strip() for ln in f.read_text().splitlines()]
        ok = "TEST PASS" in lines if f.name == "verify_accuracy.txt" else \
            any("TEST PASS" in ln for ln in lines)
        if not ok:
            failed.add(f.relative_to(tmp_path / "sub").as_posix())
    not_audits = [e for e in again["errors"] if "/TEST0" not in e["file"]]
    assert not_audits == [], capsys.readouterr().out
    assert failed <= {e["file"] for e in again["errors"]}
    assert code == (3 if again["errors"] else 0)
