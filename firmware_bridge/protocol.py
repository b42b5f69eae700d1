"""MLPerf Tiny's (EEMBC's) UART protocol: one definition for the host driver and the emulated DUT.

What the firmware side does is fixed by MLCommons Tiny's ``benchmark/api``
(internally_implemented.cpp, submitter_implemented.h) and what the host does by its runner
(``benchmark/runner``): a command is ASCII ending with ``%``; every reply is lines ending
``\\r\\n``, the last one ``m-ready``; an error is an ``e-[...]`` line (then ``m-ready``).

Boot: ``m-timestamp-mode-performance|energy``, in performance mode the first timestamp
(``m-lap-us-<n>``), ``m-init-done``, ``m-ready``. ``name`` -> ``m-name-dut-[...]``;
``profile`` -> ``m-profile-[...]``, ``m-model-[ic01]``; ``db load N`` -> ``m-[Expecting N
bytes]``; ``db <hex>`` lines until ``m-load-done``; ``infer N W`` -> ``m-warmup-start-W``,
``m-warmup-done``, ``m-infer-start-N``, ``m-lap-us-<t0>``, ``m-lap-us-<t1>``,
``m-infer-done``, ``m-results-[...]``. In energy mode the timestamps are edges on the DUT's
timestamp line instead of lap lines, and the DUT sits behind an interface board: the host
sends ``dut <cmd>%``, the board answers ``m-dut-passthrough(<cmd>)``, ``m-ready``, then the
DUT's own lines, each prefixed ``[dut]: `` up to ``[dut]: m-ready``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TERMINATOR = "%"
READY = "m-ready"
INIT_DONE = "m-init-done"
LOAD_DONE = "m-load-done"
WARMUP_DONE = "m-warmup-done"
INFER_DONE = "m-infer-done"
MODE_PREFIX = "m-timestamp-mode-"
MODES = ("performance", "energy")
MODELS = ("kws01", "vww01", "ic01", "ad01")
DUT_PREFIX = "[dut]: "
INTERFACE_NAME = "tinyML Enhanced Interface Board"  # the interface board's answer to name%
FW_VERSION = "ULPMark for tinyML Firmware V0.0.1"  # EE_FW_VERSION

# The runner's timing rules (serial_device.py, device_under_test.py): each reply line within
# 5 s, 30 s while an ``infer`` runs; 31 payload bytes a ``db`` line, 26 with a power manager
# (the interface board's shorter line buffer).
LINE_TIMEOUT_S = 5.0
INFER_TIMEOUT_S = 30.0
DB_PAYLOAD = 31
DB_PAYLOAD_ENERGY = 26
CMD_SIZE = 80  # EE_CMD_SIZE: the firmware's command buffer
LAP_WRAP = 2 ** 32  # m-lap-us is an unsigned long microsecond counter on a 32-bit MCU

# the baud rates the reference boards use (runner devices_*.yaml)
BAUD = {"performance": 115200, "accuracy": 115200, "energy": 9600}
BAUD_AD01 = {"performance": 921600, "accuracy": 921600, "energy": 9600}


@dataclass(frozen=True)
class TinyIO:
    """How a board exchanges one sample for a model id, as Tiny's reference for it does
    (submitter_implemented.cpp): the db bytes, the m-results line, the UART."""
    input_kind: str  # "int8-offset" (uint8 = int8 + 128) | "float32" (LE, quantized on board)
    result_kind: str  # "vector" (the dequantized outputs) | "mse" (one reconstruction error)
    decimals: int  # m-results values as "%0.<decimals>f"
    baud: int  # performance mode's UART

    @property
    def results_format(self) -> str:
        return f"%0.{self.decimals}f"


# ad01: Tiny prints "%0.3f", but edgeperf's ad-synthetic scores are about 0.001 (0.0004 to
# 0.027): 3 decimals leave 22 distinct values of its 600 and an AUC of 0.8683 where the
# float32 scores give 0.9486; 6 decimals (500 distinct, AUC 0.94863) are the fewest that keep
# it to 4 places. Both the reference firmware and the emulated DUT print 6.
TINY_IO = {"ic01": TinyIO("int8-offset", "vector", 3, BAUD["performance"]),
           "ad01": TinyIO("float32", "mse", 6, BAUD_AD01["performance"])}


class ProtocolError(ValueError):
    """A line that claims to be a protocol line but cannot be read as one."""


# ---------------------------------------------------------------- commands (host -> DUT)


def frame(command: str) -> bytes:
    if TERMINATOR in command:
        raise ProtocolError(f"a command cannot contain {TERMINATOR!r}: {command!r}")
    return (command + TERMINATOR).encode("ascii")


def passthrough(command: str) -> str:
    """The interface board's form of a DUT command."""
    return f"dut {command}"


def infer_command(n: int, warmups: int) -> str:
    # the runner always sends the warmups: the firmware's default is 10
    if n <= 0 or warmups < 0:
        raise ProtocolError(f"infer needs N > 0 and W >= 0, got {n} {warmups}")
    return f"infer {n} {warmups}"


def to_hex(data: bytes) -> str:
    """The ``db`` encoding: two lowercase hex digits a byte (what the runner sends)."""
    return data.hex()


def db_lines(data: bytes, payload: int = DB_PAYLOAD) -> list[str]:
    """The ``db`` commands that load ``data``, ``payload`` bytes a line (after ``db load``)."""
    return [f"db {to_hex(data[i:i + payload])}" for i in range(0, len(data), payload)]


def encode_int8(values: bytes) -> bytes:
    """An int8 input tensor as the board receives it: each value + 128 as a uint8, as MLPerf
    Tiny's ic01 reference takes its image (th_load_tensor subtracts 128 again)."""
    return bytes((b + 128) & 0xFF for b in values)


def decode_int8(data: bytes) -> bytes:
    """What th_load_tensor does: the uint8 bytes back to the int8 tensor's bytes."""
    return bytes((b - 128) & 0xFF for b in data)


def from_hex(text: str) -> bytes:
    if len(text) % 2:
        raise ProtocolError("Insufficent number of hex digits")  # the firmware's spelling
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ProtocolError(f"Invalid hex digit in '{text[:16]}'") from None


# ---------------------------------------------------------------- reply lines (DUT -> host)


def boot_lines(mode: str, lap_us: int = 0) -> list[str]:
    if mode not in MODES:
        raise ProtocolError(f"timestamp mode {mode!r} is not one of {MODES}")
    first = [f"m-lap-us-{lap_us}"] if mode == "performance" else []  # th_timestamp_initialize
    return [MODE_PREFIX + mode, *first, INIT_DONE, READY]


def name_line(name: str) -> str:
    return f"m-name-dut-[{name}]"


def profile_lines(model: str) -> list[str]:
    return [f"m-profile-[{FW_VERSION}]", f"m-model-[{model}]"]


def expecting_line(n: int) -> str:
    return f"m-[Expecting {n} bytes]"


def lap_line(us: int) -> str:
    return f"m-lap-us-{us % LAP_WRAP}"


def error_line(message: str) -> str:
    return f"e-[{message}]"


def results_line(values: list[float], fmt: str = "%0.3f") -> str:
    return "m-results-[" + ",".join(fmt % v for v in values) + "]"


def passthrough_line(command: str) -> str:
    return f"m-dut-passthrough({command})"


# ---------------------------------------------------------------- parsing

_PATTERNS = {
    "lap": re.compile(r"^m-lap-us-(\S*)$"),
    "results": re.compile(r"^m-results-\[(.*)\]$"),
    "expecting": re.compile(r"^m-\[Expecting (\S*) bytes\]$"),
    "name": re.compile(r"^m-name-(\w+)-\[([^]]+)\]$"),
    "profile": re.compile(r"^m-profile-\[([^]]+)\]$"),
    "model": re.compile(r"^m-model-\[([^]]+)\]$"),
    "error": re.compile(r"^e-\[(.*)\]$"),
    "warmup_start": re.compile(r"^m-warmup-start-(\d+)$"),
    "infer_start": re.compile(r"^m-infer-start-(\d+)$"),
    "passthrough": re.compile(r"^m-dut-passthrough\((.*)\)$"),
    "buffer": re.compile(r"^m-buffer-([0-9a-fA-F-]+)$"),
}


@dataclass(frozen=True)
class Line:
    """One reply line, classified: ``kind`` and the value it carries (text, int or list)."""

    kind: str
    text: str
    value: object = None


def is_ready(line: str) -> bool:
    """The runner ends a reply at any line containing ``m-ready``; so does the driver."""
    return READY in line


def is_boot(line: str) -> bool:
    return line.startswith(MODE_PREFIX) or line == INIT_DONE


def parse(line: str) -> Line:
    """Classify one line; raises ProtocolError for a protocol line whose value is unreadable
    (``m-lap-us-12x``, ``m-results-[0.1,abc]``)."""
    if line == READY:
        return Line("ready", line)
    if line.startswith(MODE_PREFIX):
        mode = line[len(MODE_PREFIX):]
        if mode not in MODES:
            raise ProtocolError(f"unknown timestamp mode {mode!r} (expected {MODES})")
        return Line("boot", line, mode)
    for kind, text in (("init_done", INIT_DONE), ("load_done", LOAD_DONE),
                       ("warmup_done", WARMUP_DONE), ("infer_done", INFER_DONE)):
        if line == text:
            return Line(kind, line)
    for kind, pattern in _PATTERNS.items():
        m = pattern.match(line)
        if not m:
            continue
        if kind == "lap":
            if not m.group(1).isdigit():
                raise ProtocolError(f"m-lap-us needs a whole number of microseconds, got "
                                    f"{m.group(1)!r}")
            return Line(kind, line, int(m.group(1)))
        if kind == "expecting":
            if not m.group(1).isdigit():
                raise ProtocolError(f"m-[Expecting N bytes] needs a number, got {m.group(1)!r}")
            return Line(kind, line, int(m.group(1)))
        if kind == "results":
            return Line(kind, line, parse_results(m.group(1)))
        if kind in ("warmup_start", "infer_start"):
            return Line(kind, line, int(m.group(1)))
        if kind == "name":
            return Line(kind, line, m.group(2))
        return Line(kind, line, m.group(1))
    return Line("other", line)


def parse_results(body: str) -> list[float]:
    try:  # the runner's reading: float() of each comma-separated field, empty ones skipped
        return [float(x) for x in body.split(",") if x.strip()]
    except ValueError:
        raise ProtocolError(f"m-results-[...] holds a value that is not a number: "
                            f"[{body[:60]}]") from None


def printable(data: bytes) -> bool:
    """Whether bytes look like protocol text (ASCII printable, CR, LF, NUL padding): what a
    line at the wrong baud rate almost never is."""
    return all(b in (9, 10, 13, 0) or 32 <= b < 127 for b in data)
