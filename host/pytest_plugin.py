"""edgeperf's pytest plugin: performance regression tests for a team's own models.

    pytest --edgeperf-board raspberry-pi-4 --edgeperf-board serial-generic

    def test_kws_fast_enough(edgeperf_run):
        r = edgeperf_run(model="kws.tflite", scenario="SingleStream")
        assert r.summary.valid and r.summary.samples.percentiles["90.00"] < 12_000_000  # ns

``edgeperf_device`` is a connected ``edgeperf.Device``, parametrized over the boards given
(test ids ``[raspberry-pi-4]``...), one agent per board for the whole session.
``edgeperf_run(...)`` is ``edgeperf_device.run(...)`` with the test's own output directory and
the session's preset. A board that cannot be reached skips its tests with the reason, or
fails them under ``--edgeperf-strict``; a test of a device without any board given is
skipped ("no --edgeperf-board given"), or fails under ``--edgeperf-strict``.

Registered through the ``pytest11`` entry point, so every pytest run in an environment with
edgeperf loads it: nothing here imports edgeperf's run machinery, connects or parametrizes
anything unless a board is given, and no fixture is autouse.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from edgeperf.api import Device

_NO_BOARD = "no --edgeperf-board given"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgeperf", "edgeperf: performance tests on boards")
    group.addoption("--edgeperf-board", action="append", default=[], metavar="NAME",
                    dest="edgeperf_board",
                    help="run the tests that use edgeperf_device on this board: a profile "
                         "name as 'edgeperf boards' lists, a .toml, ssh://... or "
                         "serial://... (repeat for more boards; replaces the ini's "
                         "edgeperf_boards)")
    group.addoption("--edgeperf-strict", action="store_true", default=False,
                    dest="edgeperf_strict",
                    help="a board that cannot be reached (or no board given) fails its "
                         "tests instead of skipping them")
    group.addoption("--edgeperf-out", metavar="DIR", default=None, dest="edgeperf_out",
                    help="where edgeperf_run writes its runs: DIR/<test id>/ (default: the "
                         "test's tmp_path)")
    group.addoption("--edgeperf-preset", metavar="NAME", default="quick",
                    dest="edgeperf_preset",
                    help="the settings preset of edgeperf_run when a test gives none "
                         "(mlperf, mobile, quick, smoke; default quick)")
    parser.addini("edgeperf_boards", type="linelist", default=[],
                  help="boards for edgeperf_device when --edgeperf-board is not given")


def _boards(config: pytest.Config) -> list[str]:
    """The boards asked for, each once, in order: the command line's, else the ini's."""
    given = config.getoption("edgeperf_board") or config.getini("edgeperf_boards")
    return list(dict.fromkeys(b.strip() for b in given if b.strip()))


def _board_id(board: str) -> str:
    """A test id for a board: its profile name; a .toml path's file name without .toml."""
    if board.endswith(".toml") and "://" not in board:
        return Path(board).stem
    return board


def pytest_report_header(config: pytest.Config) -> str | None:
    boards = _boards(config)
    if not boards:
        return None
    strict = ", strict" if config.getoption("edgeperf_strict") else ""
    return (f"edgeperf: boards {', '.join(boards)} (preset "
            f"{config.getoption('edgeperf_preset')}{strict})")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_DEVICES] = _Devices(config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    devices = session.config.stash.get(_DEVICES, None)
    if devices is not None:
        devices.close_all()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "edgeperf_device" not in metafunc.fixturenames:
        return
    boards = _boards(metafunc.config)
    if boards:
        metafunc.parametrize("edgeperf_device", boards, ids=[_board_id(b) for b in boards],
                             indirect=True, scope="session")


class _Devices:
    """One connection a board for the session; a board that failed to connect keeps its
    error, so that its other tests skip (or fail) with it without trying again."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._open: dict[str, Device | str] = {}  # board -> Device, or why it cannot be had

    def get(self, board: str) -> Device:
        if board not in self._open:
            self._open[board] = self._connect(board)
        got = self._open[board]
        if isinstance(got, str):
            _unavailable(self.config, got)
        return got  # type: ignore[return-value]

    def _connect(self, board: str) -> Device | str:
        import edgeperf  # here, not at load time: pytest runs without boards never pay it

        try:
            return edgeperf.connect(board)
        # UsageError (no such board), LinkError, RunError..., or the OS refusing: the reason.
        # Anything else is a bug and shows as one.
        except (edgeperf.EdgeperfError, OSError) as exc:
            why = str(exc) or type(exc).__name__
            return f"edgeperf board {board} cannot be reached: {why}"

    def close_all(self) -> None:
        for got in self._open.values():
            if not isinstance(got, str):
                try:
                    got.close()
                except Exception:  # a board gone at the end must not hide the results
                    pass
        self._open.clear()


_DEVICES = pytest.StashKey[_Devices]()


def _unavailable(config: pytest.Config, reason: str) -> None:
    """Skip the test with the reason, or fail it under --edgeperf-strict."""
    if config.getoption("edgeperf_strict"):
        pytest.fail(f"{reason} (--edgeperf-strict)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def edgeperf_device(request: pytest.FixtureRequest) -> Device:
    """A connected edgeperf.Device on one of the boards given (--edgeperf-board or the ini's
    edgeperf_boards): the test runs once a board, the connection lasts the session."""
    board = getattr(request, "param", None)
    if board is None:
        _unavailable(request.config, _NO_BOARD)
    return request.config.stash[_DEVICES].get(board)


def _sanitize(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", nodeid).strip("_") or "test"


@pytest.fixture
def edgeperf_run(edgeperf_device: Device, request: pytest.FixtureRequest
                 ) -> Callable[..., Any]:
    """``edgeperf_run(model=None, task=None, scenario="SingleStream", **kw)``: one run on
    ``edgeperf_device`` (``Device.run``'s keywords), returning its RunResult (its ``summary``
    scored). Its files go to the test's tmp_path (or --edgeperf-out/<test id>/), one folder
    a call; the preset is --edgeperf-preset's unless the call gives one (or ``settings``)."""
    config = request.config
    out = config.getoption("edgeperf_out")
    if out:
        base = Path(out) / _sanitize(request.node.nodeid)
    else:
        base = request.getfixturevalue("tmp_path") / "edgeperf"
    calls = 0

    def run(model: str | None = None, task: str | None = None,
            scenario: str | list[str] | None = "SingleStream", **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        label = re.sub(r"[^A-Za-z0-9._-]+", "-", task or model or "run").strip("-")
        kw.setdefault("out_dir", base / f"{calls}-{label}")
        if edgeperf_device.is_mcu:  # MLPerf Tiny's procedures: no scenario, no preset
            return edgeperf_device.run(model, task=task, **kw)
        if "settings" not in kw:
            kw.setdefault("preset", config.getoption("edgeperf_preset"))
        result = edgeperf_device.run(model, task=task, scenario=scenario, **kw)
        for r in result if isinstance(result, list) else [result]:
            request.node.user_properties.append(("edgeperf_out_dir", str(r.out_dir)))
        return result

    return run
