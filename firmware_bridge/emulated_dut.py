"""A pure-Python MLPerf Tiny DUT on a pseudo-terminal, for fast tests and rehearsals.

It speaks the protocol from protocol.py exactly as MLCommons Tiny's ``benchmark/api`` does
(the reference firmware's replies, line for line), runs the ic-digits int8 network with the
project's numpy reference (``edgeperf.models.network.forward``: bit-exact with the .tflite
file and the C firmware) and keeps a virtual microsecond clock: each inference advances it
by ``infer_us`` (a number, or a function of the loaded input), so a throughput figure is
known exactly. The driver opens ``path`` with pyserial as it opens a board's /dev/ttyACM0.

Energy mode: no ``m-lap-us`` lines; each timestamp calls ``on_timestamp`` (the timestamp GPIO
falling, for an emulated power monitor's D7 input) and inferences take real time
(``real_time``), so a meter sees them. ``interface=True`` puts it behind an emulated
interface board (``dut <cmd>`` passthrough, ``[dut]: `` prefixes).

Faults for tests: ``reset_at_infer`` (the k-th ``infer`` reboots after its first timestamp),
``error_on`` (a command word answered with ``e-[...]``), ``no_ready_on`` (a reply without
``m-ready``), ``malformed`` (a reply line replaced), ``garbage`` (output at the wrong baud).
Instrument: ``ahead_max`` is the most bytes the host had written beyond a command before
that command's reply was written (0: it never wrote ahead of a reply).
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable

import numpy as np

from edgeperf.testing.pty_device import PtyDevice, write_all
from edgeperf_firmware import protocol as P

MAX_DB_INPUT_SIZE = 4096
INTERFACE_NAME = P.INTERFACE_NAME


def ic_digits_network():
    """The ic-digits int8 network the task's .tflite file was written from."""
    from edgeperf.tasks.training import IC_DIGITS, build

    return build(IC_DIGITS).int8_net


def ad_synthetic_network():
    """The ad-synthetic int8 network the task's .tflite file was written from."""
    from edgeperf.tasks.training import AD_SYNTHETIC, build

    return build(AD_SYNTHETIC).int8_net


# ---------------------------------------------------------------- ad01, as the C firmware


def quantize_float_to_int8(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Tiny's QuantizeFloatToInt8 as the reference firmware computes it (th_port.c): the
    quotient value / scale in float32, rounded half away from zero (C's round()), plus the
    zero point, clamped to int8."""
    q = np.asarray(x, np.float32) / np.float32(scale)
    q = np.where(q > np.float32(-256), q, np.float32(-256))  # NaN too, as the C's !(q > -256)
    q = np.minimum(q, np.float32(256))
    r = np.trunc(q)
    rem = q - r  # exact
    r = r + (rem >= np.float32(0.5)) - (rem <= np.float32(-0.5))
    return np.clip(r.astype(np.int32) + zero_point, -128, 127).astype(np.int8)


def ad01_score(net, x: np.ndarray) -> np.float32:
    """An ad01 board's anomaly score for one float32 input, bit for bit as the reference
    firmware (and Tiny's AD reference, calculate_result) computes it: the input quantized on
    the board, the network run, each output dequantized in float32, then the squared
    differences to the float input summed in float32 in index order (np.cumsum adds
    sequentially; np.sum would pair) and divided by the element count in float32."""
    from edgeperf.models.network import forward

    xf = np.asarray(x, np.float32).reshape(-1)
    q = quantize_float_to_int8(xf, net.input_q.scale, net.input_q.zero_point)
    y = forward(net, q.reshape(net.input_shape)).reshape(-1)
    out_q = net.int8[-1].out
    deq = (y.astype(np.int32) - out_q.zero_point).astype(np.float32) * np.float32(out_q.scale)
    diff = deq - xf
    total = np.cumsum(diff * diff, dtype=np.float32)[-1]
    return np.float32(total / np.float32(len(xf)))


def ad01_results_line(score: float) -> str:
    """What an ad01 board prints for ``score`` (protocol.TINY_IO's decimals: 6, not Tiny's 3;
    see there)."""
    return P.results_line([float(np.float32(score))], P.TINY_IO["ad01"].results_format)


class EmulatedDut(PtyDevice):
    thread_name = "emulated-dut"

    def __init__(self, model: str = "ic01", *, net=None, mode: str = "performance",
                 interface: bool | None = None, infer_us: int | Callable[[bytes], int] = 1000,
                 name: str = "edgeperf-emulated-dut", real_time: bool | None = None,
                 on_timestamp: Callable[[], None] | None = None) -> None:
        if model not in P.MODELS:
            raise ValueError(f"model {model!r} is not one of {P.MODELS}")
        super().__init__()
        self.model, self.mode, self.name = model, mode, name
        self.net = net
        self.interface = mode == "energy" if interface is None else interface
        self.real_time = mode == "energy" if real_time is None else real_time
        self.infer_us = infer_us
        self.on_timestamp = on_timestamp
        # faults
        self.reset_at_infer: int | None = None
        self.error_on: dict[str, str] = {}
        self.no_ready_on: set[str] = set()
        self.malformed: dict[str, str] = {}  # line prefix -> replacement, e.g. m-lap-us-
        self.garbage = False
        # state
        self.clock_us = 0
        self.buffer = bytearray()
        self.expected = 0
        self.last_results: list[float] = []
        self.infers = 0
        self.commands: list[str] = []
        self.ahead_max = 0
        self.resets = 0

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> EmulatedDut:
        if self.net is None and self.model == "ic01":
            self.net = ic_digits_network()
        if self.net is None and self.model == "ad01":
            self.net = ad_synthetic_network()
        return super().start()

    def reset(self) -> None:
        """The reset button: the boot banner, a fresh buffer (call with the port open: a
        banner written while nobody holds the pty is flushed when pyserial opens it)."""
        self._boot()

    # ---------------------------------------------------------------- output
    def _send(self, lines: list[str]) -> None:
        data = b"".join(self._wrap(line).encode() + b"\r\n" for line in lines)
        if self.garbage:
            data = bytes(b | 0x80 for b in data)
        write_all(self.master, data, self._closing)

    def _wrap(self, line: str) -> str:
        return P.DUT_PREFIX + line if self.interface else line

    def _timestamp(self) -> str | None:
        if self.mode == "energy":
            if self.on_timestamp is not None:
                self.on_timestamp()
            return None
        return P.lap_line(self.clock_us)

    def _boot(self) -> None:
        self.resets += 1
        self.buffer, self.expected, self.clock_us = bytearray(), 0, 0
        lines = [P.MODE_PREFIX + self.mode]
        stamp = self._timestamp()  # th_timestamp_initialize
        lines += ([stamp] if stamp else []) + [P.INIT_DONE, P.READY]
        self._send(lines)

    # ---------------------------------------------------------------- input
    def _loop(self) -> None:
        while not self._closing.is_set():
            try:
                r, _, _ = select.select([self.master], [], [], 0.05)
                if not r:
                    continue
                data = os.read(self.master, 4096)
            except OSError:
                return
            self._inbuf += data
            while P.TERMINATOR.encode() in self._inbuf:
                raw, _, self._inbuf = self._inbuf.partition(P.TERMINATOR.encode())
                self._handle(raw.decode("ascii", "replace").strip())

    def _drain(self) -> None:
        """Read what has arrived without waiting: bytes the host wrote before seeing a reply."""
        try:
            while select.select([self.master], [], [], 0)[0]:
                chunk = os.read(self.master, 4096)
                if not chunk:
                    break
                self._inbuf += chunk
        except OSError:
            return
        self.ahead_max = max(self.ahead_max, len(self._inbuf))

    def _handle(self, command: str) -> None:
        self.commands.append(command)
        if self.interface:
            if command.startswith("dut "):
                inner = command[4:]
                self._drain()
                self._send_raw([P.passthrough_line(inner), P.READY])
                self._reply(inner)
                return
            self._drain()
            self._send_raw([INTERFACE_NAME, P.READY] if command == "name" else [P.READY])
            return
        self._drain()
        self._reply(command)

    def _send_raw(self, lines: list[str]) -> None:
        interface, self.interface = self.interface, False
        try:
            self._send(lines)
        finally:
            self.interface = interface

    # ---------------------------------------------------------------- commands
    def _reply(self, command: str) -> None:
        words = command.split()
        word = words[0] if words else ""
        if word in self.error_on:
            lines = [P.error_line(self.error_on[word])]
        elif word == "infer":
            lines = self._infer(words[1:])
            if lines is None:  # reset mid-infer: the banner is already out
                return
        else:
            lines = self._command(words)
        for prefix, replacement in self.malformed.items():
            lines = [replacement if ln.startswith(prefix) else ln for ln in lines]
        if word not in self.no_ready_on:
            lines.append(P.READY)
        self._send(lines)

    def _command(self, words: list[str]) -> list[str]:
        word = words[0] if words else ""
        if word == "name":
            return [P.name_line(self.name)]
        if word == "profile":
            return P.profile_lines(self.model)
        if word == "timestamp":
            stamp = self._timestamp()
            return [stamp] if stamp else []
        if word == "results":
            return [self._results_line()]
        if word == "help":
            return [P.FW_VERSION, "", "help         : Print this information"]
        if word == "db":
            return self._db(words[1:])
        return [P.error_line(f"Unknown command: {word}")]

    def _db(self, args: list[str]) -> list[str]:
        if not args:
            return [P.error_line("Command 'db' requires a subcommand")]
        if args[0] == "load":
            if len(args) < 2 or not args[1].isdigit() or int(args[1]) == 0:
                return [P.error_line("Command 'db load' must be >0 bytes")]
            n = int(args[1])
            if n > MAX_DB_INPUT_SIZE:
                return [f"Supplied buffer size {n} exceeds maximum of {MAX_DB_INPUT_SIZE}"]
            self.expected, self.buffer = n, bytearray()
            return [P.expecting_line(n)]
        if args[0] == "print":
            b = bytes(self.buffer)
            return ["m-buffer-" + "-".join(f"{x:02x}" for x in b[i:i + 8])
                    for i in range(0, len(b), 8)]
        try:
            data = P.from_hex(args[0])
        except P.ProtocolError as exc:
            return [P.error_line(str(exc))]
        room = self.expected - len(self.buffer)
        self.buffer += data[:room]
        return [P.LOAD_DONE] if len(self.buffer) == self.expected and room > 0 else []

    def _infer(self, args: list[str]) -> list[str] | None:
        try:
            n = int(args[0]) if args else 1
            w = int(args[1]) if len(args) > 1 else 10
        except ValueError:
            return [P.error_line("Inference iterations must be >0")]
        if n <= 0:
            return [P.error_line("Inference iterations must be >0")]
        if w < 0:
            return [P.error_line("Inference warmup must be >=0")]
        self.infers += 1
        try:
            self.last_results = self._run_model()
        except ValueError as exc:
            return [P.error_line(str(exc))]
        per = self.infer_us(bytes(self.buffer)) if callable(self.infer_us) else self.infer_us
        lines = [f"m-warmup-start-{w}"]
        self._spend(w * per)
        lines += [P.WARMUP_DONE, f"m-infer-start-{n}"]
        stamp = self._timestamp()
        lines += [stamp] if stamp else []
        if self.reset_at_infer == self.infers:
            self._send(lines)
            self._boot()
            return None
        self._spend(n * per)
        stamp = self._timestamp()
        lines += ([stamp] if stamp else []) + [P.INFER_DONE, self._results_line()]
        return lines

    def _spend(self, us: int) -> None:
        self.clock_us += us
        if self.real_time and us:
            time.sleep(us / 1e6)

    def _run_model(self) -> list[float]:
        from edgeperf.models.network import forward

        net = self.net
        size = int(np.prod(net.input_shape))
        if self.model == "ad01":  # float32 in, the anomaly score out, as th_port.c
            if len(self.buffer) != 4 * size:
                raise ValueError(f"Input db has {len(self.buffer)} bytes, expected {4 * size}")
            return [float(ad01_score(net, np.frombuffer(bytes(self.buffer), "<f4")))]
        if len(self.buffer) != size:
            raise ValueError(f"Input db has {len(self.buffer)} bytes, expected {size}")
        x = np.frombuffer(P.decode_int8(bytes(self.buffer)), np.int8).reshape(net.input_shape)
        out_q = net.int8[-1].out
        y = out_q.scale * (forward(net, x).astype(np.float64).reshape(-1) - out_q.zero_point)
        return [float(v) for v in y]

    def _results_line(self) -> str:
        io = P.TINY_IO.get(self.model, P.TINY_IO["ic01"])
        return P.results_line(self.last_results, io.results_format)


def serve(model: str = "ic01", mode: str = "performance", infer_us: int = 1000) -> None:
    """For ``edgeperf emulate mcu`` without qemu: print the pty path, serve until Ctrl-C."""
    with EmulatedDut(model, mode=mode, infer_us=infer_us) as dut:
        print(f"edgeperf: emulated MLPerf Tiny DUT ({model}, {mode} mode"
              f"{', behind an interface board' if dut.interface else ''}) on {dut.path} "
              "(Ctrl-C to stop)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
