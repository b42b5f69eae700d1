#!/usr/bin/env python3
"""Probe: build a tiny MLPerf-Inference (v6.1 layout) open-division submission
tree from *genuine* LoadGen logs and run MLCommons' official submission checker
on it.

Reference/experiment script only.  It is NOT part of the edgeperf package and
must not be imported by it.  See docs/notes/submission_checker_survey.md.

What it does
  1. Runs mlperf_loadgen (the wheel installed in the venv, 6.0.17) with a null
     Python SUT for resnet50 (edge image classification), SingleStream and
     Offline, in PerformanceOnly and AccuracyOnly modes.  Each LoadGen run is
     done in its own child process (LoadGen keeps global state) with an
     empty working directory (so no stray audit.config is picked up).
     Settings are loaded through TestSettings.FromConfig(user.conf, "resnet50",
     scenario) so LoadGen's embedded mlperf.conf supplies the official seeds,
     performance_sample_count_override=1024, min_duration=600000 etc.
  2. Lays the logs out as  open/<SUBMITTER>/results/<SYSTEM>/<bench>/<scenario>/
     {performance/run_1, accuracy, measurements.json, user.conf, README.md},
     plus open/<SUBMITTER>/systems/<SYSTEM>.json and open/<SUBMITTER>/src/.
  3. Writes accuracy/accuracy.txt in the reference ImageNet format and runs the
     official tools/submission/truncate_accuracy_log.py (--backup mode) which
     appends "hash=<sha256>" and truncates mlperf_log_accuracy.json.
  4. Runs  python -m submission_checker.main --input TREE --version v6.1
     with PYTHONPATH=<checkout>/tools/submission and reports the exit code.

Duration modes (--duration):
  short   user.conf sets min_duration=1000 ms     -> checker rejects (600 s rule)
  capped  min_duration stays 600000 (mlperf.conf) but max_duration=4000 ms
          stops the run early; LoadGen marks the result INVALID, which the
          v6.1 modular checker does not look at (see survey).
  full    genuine 600 s runs (SingleStream ~1 ms/query null SUT; Offline SUT
          sleeps --offline-sleep-s before answering) -> VALID logs.  ~11 min.

Usage
  .venv/bin/python docs/notes/probe_official_checker.py --out /tmp/subtree_probe \
      --duration capped [--checker-root DIR] [--bench-name resnet50]

--checker-root is a directory containing tools/submission (a work tree of
mlcommons/inference).  Without it the script exports tools/submission from the
bare mirror at /work/.mirror/mlcommons+inference/repo (HEAD) with `git show`.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

MIRROR = "/work/.mirror/mlcommons+inference/repo"
SUBMITTER = "EdgePerfProbe"
SYSTEM = "probe_board_cpu"
DATASET_SIZE = 50000          # resnet "dataset-size" in the checker (v6.1)
PERF_SAMPLE_COUNT = 1024      # resnet "performance-sample-count" (v6.1)


# --------------------------------------------------------------------------
# LoadGen worker (runs in a child process)
# --------------------------------------------------------------------------
def loadgen_worker(args):
    import numpy as np
    import mlperf_loadgen as lg

    scenario = {"SingleStream": lg.TestScenario.SingleStream,
                "Offline": lg.TestScenario.Offline}[args.scenario]
    mode = {"performance": lg.TestMode.PerformanceOnly,
            "accuracy": lg.TestMode.AccuracyOnly}[args.mode]

    settings = lg.TestSettings()
    # conf_type=1 (default): LoadGen first loads its embedded mlperf.conf,
    # then the user.conf given here.
    rc = settings.FromConfig(args.user_conf, args.conf_model, args.scenario)
    if rc != 0:
        print("FromConfig returned", rc, file=sys.stderr)
    settings.scenario = scenario
    settings.mode = mode

    # Fake "labels": one int32 per sample, deterministic.
    labels = (np.arange(DATASET_SIZE, dtype=np.int32) * 7919) % 1000
    ss_sleep = args.ss_latency_us / 1e6 if args.mode == "performance" else 0.0

    def load(samples):
        pass

    def unload(samples):
        pass

    def respond(query_samples):
        resp = []
        bufs = []
        for s in query_samples:
            b = labels[s.index:s.index + 1]
            bufs.append(b)
            addr, _ = b.__array_interface__["data"]
            resp.append(lg.QuerySampleResponse(s.id, addr, b.nbytes))
        lg.QuerySamplesComplete(resp)

    def issue(query_samples):
        if args.scenario == "Offline" and args.offline_sleep_s > 0 \
                and args.mode == "performance":
            def later():
                time.sleep(args.offline_sleep_s)
                respond(query_samples)
            threading.Thread(target=later, daemon=True).start()
            return
        if ss_sleep:
            time.sleep(ss_sleep)
        respond(query_samples)

    def flush():
        pass

    sut = lg.ConstructSUT(issue, flush)
    qsl = lg.ConstructQSL(DATASET_SIZE, PERF_SAMPLE_COUNT, load, unload)
    log_out = lg.LogOutputSettings()
    log_out.outdir = args.log_dir
    log_out.copy_summary_to_stdout = False
    log_settings = lg.LogSettings()
    log_settings.log_output = log_out
    log_settings.enable_trace = False
    lg.StartTestWithLogSettings(sut, qsl, settings, log_settings)
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)


# --------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------
def user_conf_text(duration):
    lines = ["# user.conf used by probe_official_checker.py",
             "*.SingleStream.target_latency = 1",
             "*.Offline.target_qps = 40"]
    if duration == "short":
        lines += ["*.SingleStream.min_duration = 1000",
                  "*.Offline.min_duration = 1000"]
    elif duration == "capped":
        lines += ["*.SingleStream.max_duration = 4000",
                  "*.Offline.max_duration = 4000"]
    return "\n".join(lines) + "\n"


def run_loadgen(scenario, mode, user_conf, out_dir, duration, opts):
    os.makedirs(out_dir, exist_ok=True)
    cwd = tempfile.mkdtemp(prefix="lg_cwd_")
    cmd = [sys.executable, os.path.abspath(__file__), "--_worker",
           "--scenario", scenario, "--mode", mode,
           "--user-conf", user_conf, "--conf-model", opts.conf_model,
           "--log-dir", out_dir,
           "--ss-latency-us", str(opts.ss_latency_us),
           "--offline-sleep-s",
           str(opts.offline_sleep_s if duration == "full" else 0)]
    return subprocess.Popen(cmd, cwd=cwd)


def export_checker(root):
    """Export tools/submission from the bare mirror into root."""
    names = subprocess.check_output(
        ["git", "-C", MIRROR, "ls-tree", "-r", "HEAD", "--name-only",
         "tools/submission"], text=True).split()
    for n in names:
        if "directory_structure_samples" in n:
            continue
        dst = os.path.join(root, n)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "wb") as f:
            subprocess.run(["git", "-C", MIRROR, "show", "HEAD:" + n],
                           stdout=f, check=True)
    return root


def system_json():
    return {
        "division": "open",
        "submitter": SUBMITTER,
        "status": "available",            # available | preview | rdi
        "system_name": "Probe board (null SUT)",
        "system_type": "edge",            # datacenter | edge | both
        "system_type_detail": "embedded",
        "number_of_nodes": "1",
        "host_processor_model_name": "Generic x86_64",
        "host_processors_per_node": "1",
        "host_processor_core_count": "4",
        "host_processor_frequency": "",
        "host_processor_caches": "",
        "host_processor_interconnect": "",
        "host_memory_capacity": "8 GB",
        "host_memory_configuration": "1x8GB",
        "host_storage_capacity": "32 GB",
        "host_storage_type": "eMMC",
        "host_networking": "Ethernet",
        "host_networking_topology": "N/A",
        "host_network_card_count": "1",
        "accelerators_per_node": "0",
        "accelerator_model_name": "N/A",
        "accelerator_frequency": "",
        "accelerator_host_interconnect": "N/A",
        "accelerator_interconnect": "N/A",
        "accelerator_interconnect_topology": "",
        "accelerator_memory_capacity": "N/A",
        "accelerator_memory_configuration": "N/A",
        "accelerator_on-chip_memories": "",
        "cooling": "passive",
        "framework": "null SUT (python)",
        "operating_system": "Linux",
        "other_software_stack": "mlcommons-loadgen 6.0.17",
        "hw_notes": "",
        "sw_notes": "",
        # NOTE: do not write "is_network": "false" -- the checker tests the
        # raw value for truthiness and would then require the 13 network
        # fields; a boolean False crashes the .lower() call.  Omit it.
    }


def measurements_json():
    return {
        "input_data_types": "fp32",
        "retraining": "no",
        "starting_weights_filename": "resnet50_v1.onnx",
        "weight_data_types": "fp32",
        "weight_transformations": "none",
    }


def accuracy_txt():
    # Same line the reference tools/accuracy-imagenet.py prints; matched by
    # ACC_PATTERN["acc"] = ^(?:\{"accuracy|accuracy)[": ]*=?\s*([\d\.]+).*
    good = int(DATASET_SIZE * 0.7646)
    return f"accuracy={100.0 * good / DATASET_SIZE:.3f}%, good={good}, total={DATASET_SIZE}\n"


def build_tree(out, logs, bench, user_conf_path, model_mapping):
    sub = os.path.join(out, "open", SUBMITTER)
    os.makedirs(os.path.join(sub, "systems"), exist_ok=True)
    os.makedirs(os.path.join(sub, "src"), exist_ok=True)
    with open(os.path.join(sub, "src", "README.md"), "w") as f:
        f.write("Source code of the probe SUT: docs/notes/probe_official_checker.py\n")
    with open(os.path.join(sub, "systems", SYSTEM + ".json"), "w") as f:
        json.dump(system_json(), f, indent=2)
    if model_mapping:
        with open(os.path.join(sub, "model_mapping.json"), "w") as f:
            json.dump({bench: "resnet"}, f)
    for scenario in ("SingleStream", "Offline"):
        sdir = os.path.join(sub, "results", SYSTEM, bench, scenario)
        perf = os.path.join(sdir, "performance", "run_1")
        acc = os.path.join(sdir, "accuracy")
        os.makedirs(perf, exist_ok=True)
        os.makedirs(acc, exist_ok=True)
        src_perf = logs[(scenario, "performance")]
        src_acc = logs[(scenario, "accuracy")]
        for n in ("mlperf_log_summary.txt", "mlperf_log_detail.txt",
                  "mlperf_log_accuracy.json"):
            shutil.copy2(os.path.join(src_perf, n), perf)
            shutil.copy2(os.path.join(src_acc, n), acc)
        with open(os.path.join(acc, "accuracy.txt"), "w") as f:
            f.write(accuracy_txt())
        shutil.copy2(user_conf_path, os.path.join(sdir, "user.conf"))
        with open(os.path.join(sdir, "README.md"), "w") as f:
            f.write(f"# {bench} {scenario}\n\nRun with a null SUT by the probe script.\n")
        with open(os.path.join(sdir, "measurements.json"), "w") as f:
            json.dump(measurements_json(), f, indent=2)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--scenario")
    p.add_argument("--mode")
    p.add_argument("--user-conf")
    p.add_argument("--log-dir")
    p.add_argument("--conf-model", default="resnet50",
                   help="model name given to FromConfig (mlperf.conf keys)")
    p.add_argument("--ss-latency-us", type=float, default=1000.0)
    p.add_argument("--offline-sleep-s", type=float, default=605.0)
    p.add_argument("--out", default="/tmp/subtree_probe")
    p.add_argument("--duration", choices=["short", "capped", "full"],
                   default="capped")
    p.add_argument("--bench-name", default="resnet50",
                   help="benchmark directory name (e.g. resnet50, or a custom "
                        "name together with --model-mapping)")
    p.add_argument("--model-mapping", action="store_true",
                   help="write open/<sub>/model_mapping.json {bench: resnet}")
    p.add_argument("--checker-root", default=None)
    p.add_argument("--logs-from", default=None,
                   help="reuse LoadGen logs from a previous run's _logs dir")
    p.add_argument("--no-truncate", action="store_true")
    p.add_argument("--no-check", action="store_true")
    args = p.parse_args()

    if args._worker:
        loadgen_worker(args)
        return 0

    out = os.path.abspath(args.out)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    work = out + "_work"
    if os.path.exists(work):
        shutil.rmtree(work)
    os.makedirs(work)
    user_conf = os.path.join(work, "user.conf")
    with open(user_conf, "w") as f:
        f.write(user_conf_text(args.duration))

    logs = {}
    if args.logs_from:
        for sc in ("SingleStream", "Offline"):
            for m in ("performance", "accuracy"):
                logs[(sc, m)] = os.path.join(args.logs_from, sc + "_" + m)
    else:
        procs = []
        for sc in ("SingleStream", "Offline"):
            for m in ("performance", "accuracy"):
                d = os.path.join(work, "_logs", sc + "_" + m)
                logs[(sc, m)] = d
                procs.append(((sc, m),
                              run_loadgen(sc, m, user_conf, d, args.duration, args)))
        for key, pr in procs:
            rc = pr.wait()
            print(f"loadgen {key[0]}/{key[1]} exit {rc}")
            if rc != 0:
                return 1

    tree = os.path.join(out, "submission")
    build_tree(tree, logs, args.bench_name, user_conf, args.model_mapping)

    checker_root = args.checker_root or export_checker(os.path.join(work, "inference"))
    tools = os.path.join(checker_root, "tools", "submission")

    if not args.no_truncate:
        cmd = [sys.executable, os.path.join(tools, "truncate_accuracy_log.py"),
               "--input", tree, "--submitter", SUBMITTER,
               "--backup", os.path.join(work, "acc_backup")]
        print("$", " ".join(cmd))
        subprocess.run(cmd, check=True)

    if args.no_check:
        return 0
    env = dict(os.environ, PYTHONPATH=tools)
    csv = os.path.join(out, "summary.csv")
    cmd = [sys.executable, "-m", "submission_checker.main", "--input", tree,
           "--version", "v6.1", "--submitter", SUBMITTER, "--csv", csv]
    print("$ PYTHONPATH={} {}".format(tools, " ".join(cmd)))
    r = subprocess.run(cmd, env=env, cwd=work)
    print("checker exit code:", r.returncode)
    if os.path.exists(csv):
        print(open(csv).read())
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
