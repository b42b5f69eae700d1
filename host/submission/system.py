"""systems/SYSTEM.json and a scenario's measurements.json: what the runs record about the
device and the model, then the user's own TOML (``[system]`` and ``[measurements]`` tables of
field = value), then defaults that are true of a CPU-only edge board (README: Submissions).

A field the checker needs non-empty that neither the runs nor the TOML give is refused,
naming the field and the line that sets it. ``is_network`` is never written (MLCommons'
checker takes any value of it, even "false", for network mode: survey §3).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from edgeperf.errors import UsageError
from edgeperf.submission.rules import Rules

STATUSES = ("available", "preview", "rdi")
# True of every edgeperf board that runs its model on the CPU (the tflite and synthetic
# backends): no accelerator, one node, and networking that is not part of the benchmark.
CPU_EDGE_DEFAULTS = {
    "number_of_nodes": "1", "host_processors_per_node": "1",
    "accelerators_per_node": "0", "accelerator_model_name": "N/A",
    "accelerator_memory_capacity": "N/A", "accelerator_host_interconnect": "N/A",
    "accelerator_memory_configuration": "N/A", "accelerator_interconnect": "N/A",
    "host_networking": "N/A (edge device: the benchmark uses no network)",
    "host_networking_topology": "N/A", "host_network_card_count": "N/A",
    "system_type": "edge",
}
# the device facts a system's runs must agree on
FINGERPRINT_KEYS = ("cpu_model", "cpu_count", "machine", "system", "hostname", "runtime")
TINY_FIELDS = ("Board Name", "Processor(s) Name", "Processor(s) Frequencies",
               "Processor memory type and capacity", "Accelerator", "Accelerator(s) Frequencies",
               "Accelerator memory type and capacity", "Hardware Notes", "Inference Framework",
               "Software Libraries", "Software Notes")


def read_user_toml(path: str | Path | None) -> dict[str, dict[str, str]]:
    """The ``[system]`` and ``[measurements]`` tables of a user's TOML, values as strings."""
    if path is None:
        return {"system": {}, "measurements": {}}
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as e:
        raise UsageError(f"--system-toml {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"--system-toml {path}: {e}") from None
    unknown = set(data) - {"system", "measurements"}
    if unknown:
        raise UsageError(f"--system-toml {path}: unknown table(s) {', '.join(sorted(unknown))}; "
                         f"allowed: [system], [measurements]")
    return {t: {k: _text(v) for k, v in (data.get(t) or {}).items()}
            for t in ("system", "measurements")}


def _text(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def _runtime(rec: dict[str, Any]) -> str:
    d = (rec.get("model") or {}).get("details") or {}
    if d.get("runtime"):
        return f"{d['runtime']} {d.get('runtime_version') or ''}".strip()
    return str((rec.get("model") or {}).get("backend") or "")


def fingerprint(rec: dict[str, Any]) -> dict[str, str]:
    """The device a run was made on, as its result.json records it."""
    dev = rec.get("device") or {}
    fp = {k: str(dev.get(k, "")) for k in FINGERPRINT_KEYS if k != "runtime"}
    fp["runtime"] = _runtime(rec)
    return fp


def same_device(system: str, known: dict[str, str], new: dict[str, str], source: str) -> None:
    diff = [f"{k}: {known.get(k)!r} vs {new.get(k)!r}" for k in FINGERPRINT_KEYS
            if known.get(k) != new.get(k)]
    if diff:
        raise UsageError(f"{source} was not made on system {system!r}'s device ("
                         f"{'; '.join(diff)}); add it under another --system name")


def inference_system(rules: Rules, *, division: str, submitter: str, system: str,
                     rec: dict[str, Any], user: dict[str, str], power: bool,
                     toml_path: str | Path | None) -> dict[str, str]:
    """systems/SYSTEM.json's fields, in rules.system_required_fields' order."""
    dev = rec.get("device") or {}
    from_run = {
        "system_name": system,
        "host_processor_model_name": str(dev.get("cpu_model") or ""),
        "host_processor_core_count": str(dev.get("cpu_count") or ""),
        "operating_system": str(dev.get("system") or ""),
        "framework": _runtime(rec),
        "other_software_stack": ", ".join(p for p in (
            f"edgeperf {rec.get('edgeperf_version', '')}".strip(),
            f"edgeperf-agent {dev.get('agent_version')}" if dev.get("agent_version") else "",
            f"Python {dev['python']}" if dev.get("python") else "",
            f"numpy {dev['numpy']}" if dev.get("numpy") else "") if p),
    }
    fixed = {"division": division, "submitter": submitter}
    for k, v in fixed.items():
        if k in user and user[k].lower() != v.lower():
            raise UsageError(f"--system-toml {toml_path}: {k} = {user[k]!r}, but the tree's "
                             f"{k} is {v!r}; remove the line (the tree sets it)")
    fields = list(rules.system_required_fields) + (list(rules.system_power_fields) if power
                                                     else [])
    out: dict[str, str] = {}
    for f in fields:
        out[f] = fixed.get(f) or user.get(f) or from_run.get(f) or CPU_EDGE_DEFAULTS.get(f, "")
    extra = {k: v for k, v in user.items() if k not in out and k != "is_network"}
    out.update(extra)
    out["status"] = out["status"].lower()
    missing = [f for f in rules.system_meaningful_fields if not out.get(f)]
    if missing:
        raise UsageError(
            f"systems/{system}.json: {', '.join(missing)} must not be empty and the runs do "
            f"not record {'it' if len(missing) == 1 else 'them'}; set "
            f"{'it' if len(missing) == 1 else 'each'} in the [system] table of --system-toml "
            f"FILE (e.g. {missing[0]} = \"...\"; status is one of {', '.join(STATUSES)})")
    _check_values(out, system)
    return out


def _check_values(out: dict[str, str], system: str) -> None:
    if out["status"] not in STATUSES:
        raise UsageError(f"systems/{system}.json: status {out['status']!r} is not one of "
                         f"{', '.join(STATUSES)}; fix status in --system-toml's [system]")
    for f in ("number_of_nodes", "accelerators_per_node"):
        if not out[f].isdigit():
            raise UsageError(f"systems/{system}.json: {f} {out[f]!r} must be a whole number "
                             f"(MLCommons' checker multiplies the two); fix it in "
                             f"--system-toml's [system]")


def tiny_system(*, division: str, submitter: str, system: str, rec: dict[str, Any],
                user: dict[str, str]) -> dict[str, str]:
    """systems/SYSTEM.json as MLPerf Tiny's checker reads it (``Status``; no system_type,
    which its checker refuses)."""
    board = rec.get("board") or {}
    dut = (rec.get("procedure") or {}).get("dut") or {}
    from_run = {"Board Name": str(rec.get("sut_name") or board.get("name") or ""),
                "Software Notes": f"edgeperf {rec.get('edgeperf_version', '')}, DUT "
                                  f"{dut.get('name', '')} {dut.get('model', '')}".strip()}
    status = (user.get("Status") or user.get("status") or "").lower()
    if status not in STATUSES:
        raise UsageError(f"systems/{system}.json: Status {status or '(empty)'!r} must be one "
                         f"of {', '.join(STATUSES)}; set Status = \"available\" (or preview, "
                         f"rdi) in the [system] table of --system-toml FILE")
    out = {"submitter": submitter, "division": division, "system_name": system,
           "Status": status}
    for f in TINY_FIELDS:
        out[f] = user.get(f) or from_run.get(f, "")
    out.update({k: v for k, v in user.items()
                if k not in out and k not in ("status", "system_type")})
    return out


def measurements(rules: Rules, rec: dict[str, Any], user: dict[str, str]) -> dict[str, str]:
    """measurements.json: derived from the model the run loaded, overridable by the TOML."""
    model = rec.get("model") or {}
    details = model.get("details") or {}
    dtypes = sorted({str(i.get("dtype")) for i in details.get("inputs") or [] if i.get("dtype")})
    variant = str((rec.get("task") or {}).get("variant") or "")
    weights = "int8" if variant == "int8" or dtypes == ["int8"] else (variant or "fp32")
    derived = {"input_data_types": ",".join(dtypes) or weights, "retraining": "no",
               "starting_weights_filename": str(model.get("name") or ""),
               "weight_data_types": weights,
               "weight_transformations": "quantization" if weights == "int8" else "none"}
    out = {f: user.get(f) or derived.get(f, "") for f in rules.measurements_required_fields}
    missing = [f for f in out if not out[f]]
    if missing:
        raise UsageError(f"measurements.json: {', '.join(missing)} cannot be derived from the "
                         f"run; set it in the [measurements] table of --system-toml FILE")
    return out


__all__ = ["CPU_EDGE_DEFAULTS", "FINGERPRINT_KEYS", "STATUSES", "fingerprint",
           "inference_system", "measurements", "read_user_toml", "same_device", "tiny_system"]
