"""Build the reference firmware (reference_firmware/) for qemu's mps2-an385 with Debian's
gcc-arm-none-eabi, its network generated from the project's model (gen_weights.py).

One gcc call compiles and links everything (about a second). A build lands in
``reference_firmware/build/<mode>-<key>/`` (git-ignored), ``key`` hashing the sources, the
generated model.c, the flags and the compiler's version, so an unchanged firmware is not
rebuilt and concurrent builds (two test workers) take a lock and share one result; a new
build removes the mode's builds of older sources.

``python -m edgeperf_firmware.build [--mode performance|energy|both]`` prints the ELF paths.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgeperf import errors
from edgeperf_firmware.gen_weights import generate

ROOT = Path(__file__).resolve().parent / "reference_firmware"
SOURCES = ("startup.c", "board.c", "th_io.c", "ee.c", "th_port.c", "nn.c", "libc.c")
MODES = ("performance", "energy")
CC = "arm-none-eabi-gcc"
CFLAGS = ("-mcpu=cortex-m3", "-mthumb", "-O2", "-std=c11", "-ffreestanding",
          "-ffunction-sections", "-fdata-sections", "-Wall", "-Wextra", "-Werror", "-g")
LDFLAGS = ("-nostdlib", "-Wl,--gc-sections", "-lgcc")
INSTALL = ("run scripts/test.sh, which installs them, or: apt-get install gcc-arm-none-eabi "
           "libnewlib-arm-none-eabi qemu-system-arm")


class FirmwareBuildError(errors.EdgeperfError, RuntimeError):
    """The firmware cannot be built here; the message names what is missing or failed."""


@dataclass(frozen=True)
class Firmware:
    elf: Path
    mode: str  # performance | energy
    task: str
    model_id: str
    tflite_sha256: str
    size: dict[str, int]  # text, data, bss (bytes), as arm-none-eabi-size counts them


def compiler() -> str:
    path = shutil.which(CC)
    if path is None:
        raise FirmwareBuildError(f"{CC} is not installed, so the reference firmware cannot be "
                                 f"built; {INSTALL}")
    return path


@contextmanager
def _locked(path: Path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _size(elf: Path, cc: str) -> dict[str, int]:
    tool = cc[: -len("gcc")] + "size"
    out = subprocess.run([tool, "-B", str(elf)], capture_output=True, text=True, check=True)
    text, data, bss = (int(v) for v in out.stdout.splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def build(mode: str = "performance", task: str = "ic-digits",
          out_dir: Path | None = None) -> Firmware:
    """The firmware ELF for ``mode``, built now or found already built."""
    if mode not in MODES:
        raise FirmwareBuildError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    cc = compiler()
    gen = generate(task)
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    defines = (f"-DEE_CFG_ENERGY_MODE={1 if mode == 'energy' else 0}",)
    h = hashlib.sha256()
    for part in (version, " ".join(CFLAGS + LDFLAGS + defines), gen.source):
        h.update(part.encode() + b"\0")
    for name in (*SOURCES, *(p.name for p in sorted((ROOT / "src").glob("*.h"))), "link.ld"):
        path = ROOT / "src" / name if name != "link.ld" else ROOT / name
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    key = h.hexdigest()[:16]
    base = out_dir or ROOT / "build"
    directory = base / f"{mode}-{task}-{key}"
    elf = directory / "firmware.elf"
    with _locked(base / ".lock"):
        if not (directory / "build.json").exists():
            tmp = directory.with_name(directory.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            (tmp / "model.c").write_text(gen.source)
            cmd = [cc, *CFLAGS, *defines, f"-I{ROOT / 'src'}",
                   *(str(ROOT / "src" / s) for s in SOURCES), str(tmp / "model.c"),
                   "-T", str(ROOT / "link.ld"), *LDFLAGS, f"-Wl,-Map={tmp / 'firmware.map'}",
                   "-o", str(tmp / "firmware.elf")]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                raise FirmwareBuildError(f"{CC} failed building the {mode} firmware:\n"
                                         f"{r.stderr.strip()}")
            size = _size(tmp / "firmware.elf", cc)
            meta = {"mode": mode, "task": task, "model_id": gen.model_id, "key": key,
                    "tflite_sha256": gen.tflite_sha256, "size": size,
                    "compiler": version.splitlines()[0], "command": cmd}
            (tmp / "build.json").write_text(json.dumps(meta, indent=1) + "\n")
            shutil.rmtree(directory, ignore_errors=True)
            os.replace(tmp, directory)
            for old in base.glob(f"{mode}-{task}-*"):  # builds of sources since changed
                if old != directory and ".tmp" not in old.name:
                    shutil.rmtree(old, ignore_errors=True)
    meta = json.loads((directory / "build.json").read_text())
    return Firmware(elf, mode, task, meta["model_id"], meta["tflite_sha256"], meta["size"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgeperf_firmware.build", description=__doc__
                                 .split("\n\n")[0])
    ap.add_argument("--mode", choices=(*MODES, "both"), default="both")
    ap.add_argument("--task", default="ic-digits")
    args = ap.parse_args(argv)
    try:
        for mode in MODES if args.mode == "both" else (args.mode,):
            fw = build(mode, args.task)
            size = ", ".join(f"{k} {v}" for k, v in fw.size.items())
            print(f"{fw.elf}  ({mode}, {fw.model_id}, {size} bytes)")
    except (FirmwareBuildError, errors.EdgeperfError) as exc:
        print(f"edgeperf_firmware.build: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
