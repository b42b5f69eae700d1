"""edgeperf's firmware bridge: microcontroller boards that speak MLPerf Tiny's (EEMBC's) UART
protocol, driven from the host (imported as ``edgeperf_firmware``).

``run_procedure(port, baud, mode, task, out_dir, meter=None, report=None)`` runs MLPerf Tiny's
performance, accuracy or energy procedure on a board and writes Tiny's own files
(results.txt, log.txt, results.json) beside edgeperf's record (bridge.json). ``Dut`` and
``InterfaceDut`` are the drivers; ``EmulatedDut`` is a board on a pty for tests.
"""

from edgeperf_firmware.dut import (
    Dut,
    DutBaudError,
    DutCommandError,
    DutError,
    DutNoReady,
    DutProtocolError,
    DutReset,
    DutTimeout,
    InterfaceDut,
)
from edgeperf_firmware.procedures import ProcedureResult, Window
from edgeperf_firmware.run import run_procedure

__all__ = ["Dut", "DutBaudError", "DutCommandError", "DutError", "DutNoReady",
           "DutProtocolError", "DutReset", "DutTimeout", "InterfaceDut", "ProcedureResult",
           "Window", "run_procedure"]
