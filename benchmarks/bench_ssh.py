"""The SSH link must not show up in latencies, and a second run must ship nothing.

1. busy:100 SingleStream, the same settings and seed, over the local link and over SSH to a
   real sshd in a network namespace (tests/sshd.py), alternated; the median of done - issue
   of each, and the difference. Goal: |SSH - local| <= 0.5 us.
2. The same `edgeperf run` command twice against a fresh device cache: wall time of the first
   (agent, model and samples shipped) and of the second (nothing shipped).

    /tmp/v1/bin/python benchmarks/bench_ssh.py [--queries N] [--rounds R]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sshd import SshDevice  # noqa: E402

from edgeperf.boards.profile import BoardProfile, load_board  # noqa: E402
from edgeperf.run.execute import RunSpec, execute  # noqa: E402
from edgeperf.settings import preset  # noqa: E402


def median_latency_ns(board: BoardProfile | str, queries: int, out: Path) -> tuple[float, int]:
    s = dataclasses.replace(preset("smoke", "SingleStream"), min_query_count=queries,
                            max_query_count=queries, min_duration_ms=0, max_duration_ms=0,
                            warmup_queries=100, sample_index_rng_seed=7, qsl_rng_seed=7,
                            schedule_rng_seed=7)
    o = execute(RunSpec(model="synthetic:busy:100", settings=s, board=board, out_dir=out))
    assert o.exit_code == 0, o.error or o.invalid_reasons
    with np.load(out / "querylog.npz") as q:
        lat = q["done_ns"] - q["issue_ns"]
    return float(np.median(lat)), len(lat)


def timed_cli(args: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "edgeperf.cli", *args], cwd=ROOT,
                       capture_output=True, text=True)
    took = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"edgeperf run failed ({r.returncode}):\n{r.stderr}")
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=20000, help="queries per busy:100 run")
    ap.add_argument("--rounds", type=int, default=3, help="local/SSH pairs, alternated")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgeperf-bench-ssh-"))
    os.environ["HOME"] = str(work / "home")  # the user's ~/.ssh is not read
    (work / "home").mkdir()
    os.environ.pop("SSH_AUTH_SOCK", None)
    dev = SshDevice(work / "sshd").start()
    try:
        prof = work / "dev.toml"
        prof.write_text(dev.profile_toml(cache_dir=str(work / "device-cache")))
        ssh = load_board(str(prof))
        local = BoardProfile(name="local", link_type="local")
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        print(f"# edgeperf SSH link benchmark, {when}")
        print(f"# {platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
              f"load {os.getloadavg()[0]:.2f}; device: sshd {dev.mode} at {dev.addr}:{dev.port}")
        # warm both paths once (deploy, imports) so that only the steady state is compared
        median_latency_ns(local, 2000, work / "warm-local")
        median_latency_ns(ssh, 2000, work / "warm-ssh")
        rows = []
        for r in range(args.rounds):
            m_local, n_local = median_latency_ns(local, args.queries, work / f"local{r}")
            m_ssh, n_ssh = median_latency_ns(ssh, args.queries, work / f"ssh{r}")
            rows.append((m_local, m_ssh))
            print(f"round {r + 1}: local median {m_local:.0f} ns ({n_local} queries), "
                  f"SSH median {m_ssh:.0f} ns ({n_ssh} queries), "
                  f"SSH - local {m_ssh - m_local:+.0f} ns")
        loc = float(np.median([a for a, _ in rows]))
        sh = float(np.median([b for _, b in rows]))
        diff = sh - loc
        verdict = "PASS" if abs(diff) <= 500 else "MISS"
        print(f"busy:100 median over {args.rounds} rounds: local {loc:.0f} ns, SSH {sh:.0f} ns, "
              f"difference {diff:+.0f} ns (goal |diff| <= 500 ns: {verdict})")

        fresh = work / "fresh.toml"
        fresh.write_text(dev.profile_toml(cache_dir=str(work / "fresh-cache")))
        cmd = ["run", "--board", str(fresh), "--model", "builtin:mlp", "--scenario",
               "SingleStream", "--preset", "smoke", "--quiet"]
        first = timed_cli(cmd + ["--out", str(work / "first")])
        second = timed_cli(cmd + ["--out", str(work / "second")])
        r1 = json.loads((work / "first" / "result.json").read_text())
        r2 = json.loads((work / "second" / "result.json").read_text())
        print(f"edgeperf run {' '.join(cmd[1:])}")
        for name, took, res in (("first run ", first, r1), ("second run", second, r2)):
            print(f"  {name} {took:.2f} s wall (connect + probe + ship + check "
                  f"{res['deploy']['seconds']:.2f} s), shipped {res['transfers']}")
        return 0 if verdict == "PASS" else 1
    finally:
        dev.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
