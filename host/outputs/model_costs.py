"""What the model cost on the device, as TFLite's benchmark_model reports it: init time,
first inference, warm-up latency, and memory. Every figure is the device's own (timed and
read there) and none is a scored latency: the scored queries start after the warm-up.

The record (result.json ``model_costs``) keeps the device's integers (ns, KiB); the block
appended to mlperf_log_summary.txt after LoadGen's text (and printed after a run) gives
them in ms and MiB.
"""

from __future__ import annotations

from typing import Any

HEADING = "Model costs on the device (edgeperf; not scored)"
RULE = "=" * 48


def costs_record(reply_costs: dict[str, Any] | None, details: dict[str, Any] | None
                 ) -> dict[str, Any] | None:
    """The run reply's ``model_costs`` with the backend that paid them."""
    if not reply_costs:
        return None
    d = details or {}
    rec = dict(reply_costs)
    rec["backend"] = {k: d.get(k) for k in ("backend", "runtime", "runtime_version",
                                            "providers", "xnnpack", "delegate", "num_threads")
                      if d.get(k) is not None}
    return rec


def _ms(ns: Any) -> str:
    return "-" if ns is None else f"{int(ns) / 1e6:.3f}"


def _mib(kib: Any) -> str:
    return "-" if kib is None else f"{int(kib) / 1024:.1f}"


def lines(costs: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs, in the order benchmark_model prints them."""
    b = costs.get("backend") or {}
    what = b.get("backend", "?")
    runtime = " ".join(str(b[k]) for k in ("runtime", "runtime_version") if b.get(k))
    extra = []
    if b.get("providers"):
        extra.append(", ".join(b["providers"]))
    if b.get("xnnpack") is False:
        extra.append("no XNNPACK")
    if b.get("delegate"):
        extra.append(f"delegate {b['delegate'].get('path')}")
    label = f"{what} ({runtime}{'; ' + '; '.join(extra) if extra else ''})" if runtime else what
    w = costs.get("warmup") or {}
    m = costs.get("memory") or {}
    out = [("Backend", label), ("Init time (ms)", _ms(costs.get("init_ns"))),
           ("First inference (ms)", _ms(costs.get("first_inference_ns"))),
           ("Warm-up queries", str(w.get("queries", 0)))]
    if w.get("queries"):
        out += [("Warm-up mean (ms)", _ms(w.get("mean_ns"))),
                ("Warm-up max (ms)", _ms(w.get("max_ns")))]
    scope = "" if m.get("run_scope", "window") == "window" else " (process peak)"
    out += [("RSS before load (MiB)", _mib(m.get("before_load_kib"))),
            ("RSS after init (MiB)", _mib(m.get("after_init_kib"))),
            ("Peak RSS during init (MiB)", _mib(m.get("peak_init_kib"))),
            ("RSS at run start (MiB)", _mib(m.get("run_start_kib"))),
            (f"Peak RSS during run (MiB){scope}", _mib(m.get("peak_run_kib")))]
    return out


def format_block(costs: dict[str, Any] | None) -> str:
    """The summary's appendix: LoadGen's ``key : value`` layout under its own heading."""
    if not costs:
        return ""
    body = "".join(f"{k} : {v}\n" for k, v in lines(costs))
    return f"\n{RULE}\n{HEADING}\n{RULE}\n{body}"


def one_line(costs: dict[str, Any] | None) -> str:
    """For the command line's progress: init, first inference, warm-up, memory."""
    if not costs:
        return ""
    w = costs.get("warmup") or {}
    m = costs.get("memory") or {}
    text = (f"init {_ms(costs.get('init_ns'))} ms, first inference "
            f"{_ms(costs.get('first_inference_ns'))} ms")
    if w.get("queries"):
        text += f", warm-up {_ms(w.get('mean_ns'))} ms mean ({_ms(w.get('max_ns'))} max)"
    return text + (f"; RSS {_mib(m.get('before_load_kib'))} -> {_mib(m.get('after_init_kib'))}"
                   f" MiB at init, peak {_mib(m.get('peak_run_kib'))} MiB in the run")
