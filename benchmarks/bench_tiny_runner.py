"""The MLCommons Tiny runner itself against the qemu reference board, beside edgeperf's own
procedure on the same board: their median throughputs and accuracies, side by side.

    python benchmarks/bench_tiny_runner.py RUNNER [--venv DIR] [--out DIR] [--ad01]

RUNNER is the mlcommons/tiny repository (a git directory, bare or not, e.g. the search tool's
mirror /work/.mirror/mlcommons+tiny/repo) or an exported ``benchmark/runner`` folder. This is
a benchmark, not a CI test: the runner is not on PyPI and CI has no network.

What it does:

1. exports ``benchmark/runner`` from the repository's HEAD into a temporary folder (file by
   file with ``git cat-file``: a partial mirror may lack the streaming test's .wav blobs,
   which ``git archive`` then fails on; they are not needed here), unmodified;
2. makes the runner's own Python environment (``--venv``, default
   ~/.cache/edgeperf/tiny-runner-venv: pyserial, PyYAML, pyusb, numpy, scikit-learn,
   matplotlib, what its imports need; never the project's environment);
3. writes the runner's dataset folder ``ic01/`` from the ic-digits task (``y_labels.csv``:
   ``file,num_classes,class``, no header; one .bin a sample, the uint8 bytes the firmware
   takes, as edgeperf's ``task_inputs`` makes them) and a device yaml naming the qemu board
   as the L4R5ZI reference DUT (0483:374B, 115200 baud);
4. boots the reference firmware on qemu (``-icount shift=6,align=on``: the device clock is
   exact instruction counts, paced to the host's so the runner's host-time rules see a real
   board's timing) and runs edgeperf's performance procedure on it (``run_procedure``),
   then the unmodified runner's ``main.py --mode=p`` with a test script whose ``infer N W``
   is edgeperf's N and warm-ups (its stock ``infer 20 5`` is 1 s of inference on this
   board, under Tiny's 10 s a window and the runner's own 10 s for the loop), then both in
   accuracy mode (every sample once, ``infer 1 0``, the runner's stock tests_accuracy.yaml);
5. prints both medians, per-window throughputs and accuracies with their ratios;
6. with ``--ad01``, also the anomaly-detection firmware (``build(task="ad-synthetic")``): the
   runner's dataset folder ``ad01/`` (``y_labels.csv``: ``file,2,class,bytes_to_send,stride``
   with 512 and 512, so each .bin, the clip's 128 float32 values, is one segment, as the
   runner cuts its AD clips), a device yaml at the AD reference's 921600 baud, the runner's
   stock accuracy script for ad01 and edgeperf's accuracy procedure on the same board, and
   their AUCs (the runner's roc_auc_score over its results.json, and edgeperf's).

The launcher (written beside the export, run by the runner's venv) changes two things in the
runner's process before it runs ``main.py`` as ``__main__``, and nothing in its files:

* ``serial.tools.list_ports.comports`` returns the qemu board's pty as one port with
  VID:PID 0483:374B (a pty has no USB identity, so pyserial lists none, and the runner's
  DeviceManager only takes ports whose VID:PID its device yaml names);
* ``usb.core.find`` returns no devices if pyusb has no libusb backend (the runner scans USB
  for a Joulescope at start-up; here there is none either way); with a backend it is the
  real call.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RUNNER_PATH = "benchmark/runner"
VENV_DEFAULT = Path.home() / ".cache" / "edgeperf" / "tiny-runner-venv"
RUNNER_PACKAGES = ("pyserial", "pyyaml", "pyusb", "numpy", "scikit-learn", "matplotlib")
VID, PID = 0x0483, 0x374B  # the L4R5ZI reference DUT in the runner's devices_kws_ic_vww.yaml
BAUD = 115200
# MLPerf Tiny's submission checker's regexes (the issue's), read from the runner's results.txt
RE_THROUGHPUT = re.compile(r".* Median throughput is\s+([\d\.]+) inf\./sec\..*")
RE_TOP1 = re.compile(r".* Top[- ]1%?\s?[:=] ([\d\.]+).*")
RE_AUC = re.compile(r".* AUC\s?[:=] ([\d\.]+).*")

LAUNCHER = '''\
"""Runs the MLCommons Tiny runner's main.py unmodified, with the qemu board's pty presented
as a USB serial port (argv: runner_dir port vid pid -- main.py's arguments)."""
import os, runpy, sys

runner_dir, port, vid, pid = sys.argv[1], sys.argv[2], int(sys.argv[3], 16), int(sys.argv[4], 16)
args = sys.argv[sys.argv.index("--") + 1:]

import serial.tools.list_ports
from serial.tools.list_ports_common import ListPortInfo


def comports(include_links=False):
    info = ListPortInfo(port, skip_link_detection=True)
    info.vid, info.pid = vid, pid
    info.description = info.product = "qemu mps2-an385 UART0 (edgeperf reference firmware)"
    info.hwid = f"USB VID:PID={vid:04X}:{pid:04X}"
    return [info]


serial.tools.list_ports.comports = comports

import usb.core

_find = usb.core.find


def find(*a, **k):
    try:
        return _find(*a, **k)
    except usb.core.NoBackendError:
        return iter([]) if k.get("find_all") else None


usb.core.find = find

sys.path.insert(0, runner_dir)
sys.argv = [os.path.join(runner_dir, "main.py"), *args]
runpy.run_path(sys.argv[0], run_name="__main__")
'''


# ---------------------------------------------------------------- the runner and its venv


def export_runner(source: Path, dest: Path) -> tuple[Path, str]:
    """(the runner folder, a description of where it came from)."""
    if (source / "main.py").is_file() and (source / "device_under_test.py").is_file():
        return source, f"folder {source}"
    if not ((source / "HEAD").is_file() or (source / ".git").exists()):
        raise SystemExit(f"{source} is neither a runner folder (main.py, device_under_test.py) "
                         "nor a git repository of mlcommons/tiny; pass the mirror, e.g. "
                         "/work/.mirror/mlcommons+tiny/repo, or a benchmark/runner folder")
    git = ["git", "-C", str(source)]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode:
        raise SystemExit(f"{source}: git rev-parse HEAD failed: {head.stderr.strip()}")
    commit = head.stdout.strip()
    tree = subprocess.run([*git, "ls-tree", "-r", "HEAD", "--", RUNNER_PATH],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    if not tree:
        raise SystemExit(f"{source}: HEAD ({commit[:12]}) has no {RUNNER_PATH}")
    missing = []
    for row in tree:
        meta, path = row.split("\t", 1)
        _mode, kind, blob = meta.split()
        if kind != "blob":
            continue
        data = subprocess.run([*git, "cat-file", "blob", blob], capture_output=True)
        if data.returncode:
            missing.append(path)
            continue
        out = dest / path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data.stdout)
    needed = [m for m in missing if m.endswith(".py") or m.endswith(".yaml")]
    if needed:
        raise SystemExit(f"{source}: the mirror lacks the runner's {', '.join(needed)}")
    note = f"mlcommons/tiny {commit[:12]} ({RUNNER_PATH}, unmodified)"
    if missing:
        note += f"; not in the mirror, not needed: {', '.join(missing)}"
    return dest / RUNNER_PATH, note


def runner_python(venv: Path) -> Path:
    py = venv / "bin" / "python"
    probe = "import serial, yaml, usb.core, numpy, sklearn, matplotlib; yaml.CLoader"
    if py.exists() and subprocess.run([str(py), "-c", probe], capture_output=True).returncode == 0:
        return py
    print(f"making the runner's environment in {venv} ({', '.join(RUNNER_PACKAGES)})",
          file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *RUNNER_PACKAGES], check=True)
    return py


# ---------------------------------------------------------------- dataset and yamls


def write_dataset(root: Path, samples, model: str = "ic01") -> Path:
    """The runner's dataset folder for ``model``; an ad01 row also says bytes_to_send and
    stride (one segment a file: the sample's float32 bytes)."""
    folder = root / model
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "y_labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        for s in samples:
            (folder / s.file).write_bytes(s.data)
            extra = [len(s.data), len(s.data)] if model == "ad01" else []
            w.writerow([s.file, s.classes, s.label, *extra])
    return root


def write_devices(root: Path, baud: int = BAUD) -> Path:
    devices = root / f"devices_qemu_{baud}.yaml"
    devices.write_text(
        "- name: l4r5zi\n  type: dut\n  baud:\n    energy: 9600\n"
        f"    performance: {baud}\n    accuracy: {baud}\n  usb:\n    0x{VID:04X}: 0x{PID:04X}\n")
    return devices


def write_yamls(root: Path, n: int, warmups: int) -> tuple[Path, Path]:
    devices = write_devices(root)
    perf = root / "tests_performance_qemu.yaml"
    perf.write_text("ic01:\n  name: image_classification\n  model: ic01\n"
                    "  truth_file: y_labels.csv\n  script:\n    - loop 5:\n"
                    f"      - download\n      - infer {n} {warmups}\n")
    return devices, perf


def run_runner(py: Path, launcher: Path, runner: Path, port: str, work: Path, mode: str,
               devices: Path, tests: Path, datasets: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    cmd = [str(py), str(launcher), str(runner), port, f"{VID:04x}", f"{PID:04x}", "--",
           f"--dataset_path={datasets}", f"--test_script={tests}", f"--device_list={devices}",
           f"--mode={mode}"]
    t0 = time.monotonic()
    r = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=1800)
    wall = time.monotonic() - t0
    (work / "runner_stdout.txt").write_text(r.stdout + r.stderr)
    sessions = sorted((work / "sessions").glob("*/results.txt"))
    if r.returncode or not sessions:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-25:])
        raise SystemExit(f"the runner ({mode}) failed with status {r.returncode}:\n{tail}")
    session = sessions[-1].parent
    text = (session / "results.txt").read_text()
    out: dict = {"session": str(session), "wall_s": wall, "results_txt": text, "errors": [
        ln for ln in text.splitlines() if "ERROR" in ln]}
    for line in text.splitlines():
        for key, rx in (("median", RE_THROUGHPUT), ("top1", RE_TOP1), ("auc", RE_AUC)):
            m = rx.match(line)
            if m:
                out[key] = float(m.group(1))
    records = json.loads((session / "results.json").read_text())
    out["windows"] = [{"file": rec["file"], "n": rec["infer"]["iterations"],
                       "elapsed_us": rec["infer"]["elapsed_time"],
                       "throughput": rec["infer"]["throughput"]}
                      for rec in records if "throughput" in rec.get("infer", {})]
    if out["windows"]:  # the median before results.txt rounds it to 3 decimals
        out["median_exact"] = statistics.median(w["throughput"] for w in out["windows"])
    scored = [rec for rec in records if rec.get("infer", {}).get("results")
              and "throughput" not in rec["infer"]]
    if scored and all(len(r["infer"]["results"]) == 1 for r in scored):  # ad01's scores
        out["scores"] = [r["infer"]["results"][0] for r in scored]
        out["labels"] = [int(r["class"]) for r in scored]
        out["scored"] = len(scored)
    elif scored:  # Top-1 before results.txt rounds it to 1 decimal (its rule: argmax == class)
        hits = sum(max(range(len(r["infer"]["results"])), key=r["infer"]["results"].__getitem__)
                   == int(r["class"]) for r in scored)
        out["top1_exact"], out["scored"] = 100.0 * hits / len(scored), len(scored)
    return out


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runner", nargs="?", help="the mlcommons/tiny git repository (bare mirror "
                    "or clone) or a benchmark/runner folder")
    ap.add_argument("--venv", type=Path, default=VENV_DEFAULT,
                    help=f"the runner's own Python environment (default {VENV_DEFAULT})")
    ap.add_argument("--out", type=Path, help="keep the sessions and edgeperf's runs here")
    ap.add_argument("--ad01", action="store_true", help="also the ad01 (ad-synthetic) firmware "
                    "in accuracy mode: the runner's AUC beside edgeperf's")
    args = ap.parse_args(argv)
    if not args.runner:
        print("bench_tiny_runner: pass the MLCommons Tiny runner: the mlcommons/tiny "
              "repository (e.g. /work/.mirror/mlcommons+tiny/repo) or its benchmark/runner "
              "folder; it is not on PyPI, so nothing here can fetch it", file=sys.stderr)
        return 2
    source = Path(args.runner).expanduser().resolve()
    if not source.exists():
        print(f"bench_tiny_runner: {source} does not exist; pass the mlcommons/tiny "
              "repository or its benchmark/runner folder", file=sys.stderr)
        return 2

    from edgeperf.tasks.registry import load_task
    from edgeperf_firmware.build import build
    from edgeperf_firmware.qemu import QemuBoard
    from edgeperf_firmware.run import run_procedure, task_inputs

    tmp = Path(tempfile.mkdtemp(prefix="edgeperf-tiny-runner-"))
    out = args.out.resolve() if args.out else tmp / "out"
    out.mkdir(parents=True, exist_ok=True)
    try:
        runner, origin = export_runner(source, tmp / "export")
        py = runner_python(args.venv)
        launcher = tmp / "launch_runner.py"
        launcher.write_text(LAUNCHER)
        task = load_task("ic-digits")
        samples, _ = task_inputs(task)
        datasets = write_dataset(tmp / "datasets", samples)
        fw = build("performance")
        stock_acc = runner / "tests_accuracy.yaml"

        with QemuBoard(fw.elf, realtime=True) as board:
            print(f"qemu board {board.port}; runner: {origin}", file=sys.stderr)
            t0 = time.monotonic()
            ep_perf = run_procedure(board.port, BAUD, "performance", task,
                                    out / "edgeperf_performance")
            ep_perf_wall = time.monotonic() - t0
            ns = [w.n for w in ep_perf.windows]
            n, warmups = max(ns), ep_perf.windows[0].warmups
            devices, perf_yaml = write_yamls(tmp, n, warmups)
            rp = run_runner(py, launcher, runner, board.port, out / "runner_performance", "p",
                            devices, perf_yaml, datasets)
            ra = run_runner(py, launcher, runner, board.port, out / "runner_accuracy", "a",
                            devices, stock_acc, datasets)
            t0 = time.monotonic()
            ep_acc = run_procedure(board.port, BAUD, "accuracy", task, out / "edgeperf_accuracy")
            ep_acc_wall = time.monotonic() - t0
        ad = ad01_accuracy(py, launcher, runner, tmp, out) if args.ad01 else None
    finally:
        if not args.out:
            shutil.rmtree(tmp, ignore_errors=True)

    ep_top1 = 100.0 * ep_acc.value
    ep_auc = ep_acc.auc
    rows = [("median throughput (inf./sec.), results.txt", rp.get("median"), ep_perf.value),
            ("median throughput (inf./sec.), results.json", rp.get("median_exact"),
             ep_perf.value),
            ("Top-1 (%), results.txt", ra.get("top1"), ep_top1),
            (f"Top-1 (%), results.json ({ra.get('scored')} files)", ra.get("top1_exact"),
             ep_top1),
            ("AUC (one-vs-rest)", ra.get("auc"), ep_auc)]
    print(f"# MLCommons Tiny runner vs edgeperf on qemu mps2-an385 (reference firmware, ic01, "
          f"icount shift=6, align=on), {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"runner: {origin}; firmware {fw.elf.parent.name}")
    print(f"runner test script: loop 5: download, infer {n} {warmups} (edgeperf's N per "
          f"window: {ns})")
    print()
    print("| figure | MLCommons runner | edgeperf | runner / edgeperf |")
    print("|---|---|---|---|")
    for name, a, b in rows:
        ratio = f"{a / b:.6f}" if a is not None and b else "-"
        fa = "-" if a is None else f"{a:.4f}"
        fb = "-" if b is None else f"{b:.4f}"
        print(f"| {name} | {fa} | {fb} | {ratio} |")
    print()
    print("| window | file | runner N | runner us | runner inf./sec. | edgeperf N | edgeperf us"
          " | edgeperf inf./sec. | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i, (a, w) in enumerate(zip(rp["windows"], ep_perf.windows, strict=False), 1):
        print(f"| {i} | {a['file']} | {a['n']} | {a['elapsed_us']} | {a['throughput']:.4f} | "
              f"{w.n} | {w.t1_us - w.t0_us} | {w.throughput:.4f} | "
              f"{a['throughput'] / w.throughput:.6f} |")
    print()
    print(f"runner results.txt errors: {rp['errors'] + ra['errors'] or 'none'}")
    print(f"edgeperf: performance {ep_perf.result} {ep_perf.reasons or ''}, accuracy "
          f"{ep_acc.result} ({ep_acc.count} samples, passed={ep_acc.passed})")
    print(f"host time: runner p {rp['wall_s']:.1f} s, a {ra['wall_s']:.1f} s; edgeperf p "
          f"{ep_perf_wall:.1f} s, a {ep_acc_wall:.1f} s")
    if ad:
        print_ad01(ad)
    if args.out:
        print(f"sessions and runs kept in {out}")
    return 0


def ad01_accuracy(py: Path, launcher: Path, runner: Path, tmp: Path, out: Path) -> dict:
    """The runner's stock ad01 accuracy script and edgeperf's accuracy procedure on the ad01
    firmware (one qemu board, not paced: accuracy has no host-time rule)."""
    from edgeperf.tasks.metrics import auc
    from edgeperf.tasks.registry import load_task
    from edgeperf_firmware.build import build
    from edgeperf_firmware.protocol import BAUD_AD01
    from edgeperf_firmware.qemu import QemuBoard
    from edgeperf_firmware.run import run_procedure, task_inputs

    baud = BAUD_AD01["accuracy"]
    task = load_task("ad-synthetic")
    samples, _ = task_inputs(task)
    datasets = write_dataset(tmp / "datasets", samples, "ad01")
    devices = write_devices(tmp, baud)
    fw = build("performance", "ad-synthetic")
    with QemuBoard(fw.elf) as board:
        ra = run_runner(py, launcher, runner, board.port, out / "runner_accuracy_ad01", "a",
                        devices, runner / "tests_accuracy.yaml", datasets)
        t0 = time.monotonic()
        ep = run_procedure(board.port, baud, "accuracy", task, out / "edgeperf_accuracy_ad01")
        wall = time.monotonic() - t0
    ra["auc_exact"] = auc(ra["scores"], ra["labels"]) if ra.get("scores") else None
    ra["same_scores"] = ra.get("scores") == [o[0] for o in ep.outputs]
    return {"runner": ra, "edgeperf": ep, "edgeperf_wall_s": wall, "firmware": fw}


def print_ad01(ad: dict) -> None:
    ra, ep = ad["runner"], ad["edgeperf"]
    print()
    print(f"# ad01 (ad-synthetic) accuracy, firmware {ad['firmware'].elf.parent.name}, "
          "icount shift=6")
    print("| figure | MLCommons runner | edgeperf |")
    print("|---|---|---|")
    print(f"| AUC, results.txt (3 decimals) | {ra.get('auc')} | {ep.auc:.3f} |")
    exact = ra.get("auc_exact")
    print(f"| AUC, exact ({ra.get('scored')} files / {ep.count} samples) | "
          f"{'-' if exact is None else f'{exact:.10f}'} | {ep.auc:.10f} |")
    print(f"same 600 scores from the board: {ra['same_scores']}; runner results.txt errors: "
          f"{ra['errors'] or 'none'}; host time: runner {ra['wall_s']:.1f} s, edgeperf "
          f"{ad['edgeperf_wall_s']:.1f} s")


if __name__ == "__main__":
    raise SystemExit(main())
