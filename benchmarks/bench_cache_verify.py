"""Cost of re-hashing a cached model before it is used (issue 15), against a bare hashlib loop.

The agent checks a cached file's SHA-256 when the host announces a push of it (the probe that
precedes every load) and when it loads one it has not just hashed; the figure is the time of
``Store.verified`` on a model of ``--mb`` MB that this process has not hashed yet, read from
the page cache (a cold read adds the storage's read time, which any load pays anyway). The
baselines: the same file hashed by a bare ``hashlib`` loop in 1 MiB blocks, and the bytes
hashed in memory (the hash alone, no reads). The check is made at the probe and at load_model,
both requests of their own, before any run: it is never inside a timed region.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time

import _common

from device_agent.store import Store  # the working tree's agent (benchmarks/_common.py)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=10.0, help="size of the model, MB (10)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    size = int(args.mb * 1_000_000)
    _common.print_header(f"bench_cache_verify: re-hash of a {args.mb:g} MB cached model, "
                         f"{args.repeats} repeats")
    data = os.urandom(size)
    sha = hashlib.sha256(data).hexdigest()
    with tempfile.TemporaryDirectory(prefix="edgeperf-bench-cache-") as root:
        store = Store(root)
        path = store.path("models", sha, ".tflite")
        with open(path, "wb") as f:
            f.write(data)
        t_verify, t_loop, t_mem = [], [], []
        for rep in range(args.repeats):
            store._fresh.clear()  # as an agent that has not hashed it yet (a new process)
            t0 = time.perf_counter()
            assert store.verified("models", sha, ".tflite") == path
            t_verify.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            assert h.hexdigest() == sha
            t_loop.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            hashlib.sha256(data).hexdigest()
            t_mem.append(time.perf_counter() - t0)
            print(f"rep {rep + 1}: Store.verified {t_verify[-1] * 1e3:.2f} ms, bare hashlib "
                  f"loop {t_loop[-1] * 1e3:.2f} ms, in memory {t_mem[-1] * 1e3:.2f} ms",
                  flush=True)
        t0 = time.perf_counter()
        assert store.verified("models", sha, ".tflite") == path  # hashed just now: not again
        t_fresh = time.perf_counter() - t0
    v, loop, mem = (_common.median(t) for t in (t_verify, t_loop, t_mem))
    mb = size / 1e6
    rows = [
        _common.Row("cache", f"re-hash of a {args.mb:g} MB cached model (Store.verified)", v,
                    "s", [("bare hashlib loop, same file", loop), ("hashlib in memory", mem)],
                    note=f"{mb / v:.0f} MB/s against {mb / loop:.0f} MB/s for the bare loop; "
                         f"a load right after the probe finds it hashed and pays "
                         f"{t_fresh * 1e6:.0f} us (one stat)"),
        _common.Row("cache", "re-hash throughput (Store.verified)", mb / v, "MB/s",
                    [("bare hashlib loop, same file", mb / loop)]),
    ]
    _common.finish(rows, args.json)


if __name__ == "__main__":
    main()
