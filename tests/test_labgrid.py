"""labgrid places as boards (host/links/labgrid.py) against a real lab on loopback: a
labgrid-coordinator, a labgrid-exporter serving a pty with ser2net and exporting the test
sshd as a NetworkService, and a power switch that labgrid's simplerest driver drives
(tests/labgrid_lab.py). Runs through each place, releases on every way out, clear errors,
campaigns over places, the hard reset between retries, and pyserial beside pyserial-labgrid."""

from __future__ import annotations

import atexit
import base64
import hashlib
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from labgrid_lab import BAUD, PASSWORD, Lab, free_port

import edgeperf
from edgeperf.boards.profile import BoardError, load_board, parse_board
from edgeperf.campaigns import run_campaign
from edgeperf.campaigns.plan import load_plan
from edgeperf.cli.main import main
from edgeperf.links import labgrid as lg
from edgeperf.links.base import LinkError
from edgeperf.links.serial import SerialLink
from edgeperf.run.client import AgentClient
from edgeperf.testing.line_sim import LineSim
from serial_agent import Agent

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="session")
def lab(ssh_device, tmp_path_factory):
    """One lab a test worker (its own coordinator port and place names)."""
    lab = Lab(tmp_path_factory.mktemp("labgrid"), ssh_device, prefix=f"ep{os.getpid()}")
    atexit.register(lab.stop)  # also when the session dies before teardown
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()


def url(lab: Lab, kind: str, **query: str) -> str:
    q = "&".join(f"{k}={v}" for k, v in {"coordinator": lab.address, **query}.items())
    return f"labgrid://{lab.place(kind)}?{q}"


def ssh_flags(lab: Lab) -> list[str]:
    return ["--identity", str(lab.ssh.client_key), "--known-hosts", str(lab.ssh.known_hosts),
            "--python", sys.executable]


def ssh_query(lab: Lab) -> dict[str, str]:
    return {"identity": str(lab.ssh.client_key), "known_hosts": str(lab.ssh.known_hosts),
            "python": sys.executable}


SHORT = ["--model", "synthetic:busy:20", "--scenario", "SingleStream", "--preset", "smoke",
         "--target-latency-ms", "0.02", "--quiet"]


# ---------------------------------------------------------------- runs through each place
def test_run_through_the_ssh_place(lab, tmp_path, capsys):
    out = tmp_path / "run"
    board = url(lab, "ssh")
    code = main(["run", "--board", board, *ssh_flags(lab), *SHORT, "--out", str(out)])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert "Result is : VALID" in cap.out
    res = json.loads((out / "result.json").read_text())
    assert res["board"]["name"] == board
    assert res["board"]["labgrid"] == {"place": lab.place("ssh"), "coordinator": lab.address,
                                       "via": None, "key_file": None}
    assert res["deploy"]["cache_dir"]  # reached over SSH: the agent was deployed
    assert lab.holder(lab.place("ssh")) is None  # released
    # the NetworkService's password is neither used nor shown, anywhere
    texts = [cap.out, cap.err] + [p.read_text(errors="replace") for p in out.iterdir()
                                  if p.suffix in (".json", ".txt")]
    assert not [t for t in texts if PASSWORD in t]


def test_run_through_the_serial_place(lab, tmp_path, capsys):
    out = tmp_path / "run"
    board = url(lab, "serial")
    code = main(["run", "--board", board, *SHORT, "--out", str(out)])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    res = json.loads((out / "result.json").read_text())
    assert res["result"] == "VALID" and res["board"]["name"] == board
    assert res["run"]["checksum_ok"] is True
    assert res["transfers"]["line"]["segments_sent"] > 0  # the reliable serial layer ran
    assert lab.holder(lab.place("serial")) is None


def test_connect_holds_the_place_until_closed(lab):
    with edgeperf.connect(url(lab, "serial")) as dev:
        assert lab.holder(lab.place("serial")) == lg.owner()
        assert dev.link.startswith("serial rfc2217://127.0.0.1:")
        assert dev.link.endswith(f"@ {BAUD} (labgrid place {lab.place('serial')})")
        assert dev.info()["pid"] == lab.agents[0].proc.pid
    assert lab.holder(lab.place("serial")) is None


def test_coordinator_from_lg_coordinator(lab, monkeypatch):
    monkeypatch.setenv("LG_COORDINATOR", lab.address)
    with edgeperf.connect(f"labgrid://{lab.place('ssh')}?via=ssh", **ssh_kw(lab)) as dev:
        assert dev.link.startswith(f"ssh {lab.ssh.user}@{lab.ssh.addr}:{lab.ssh.port}")
    assert lab.holder(lab.place("ssh")) is None


def ssh_kw(lab: Lab) -> dict[str, str]:
    return {"identity": str(lab.ssh.client_key), "known_hosts": str(lab.ssh.known_hosts),
            "python": sys.executable}


# ---------------------------------------------------------------- released on every way out
def test_failed_run_releases_the_place(lab, tmp_path):
    with edgeperf.connect(url(lab, "serial")) as dev:
        with pytest.raises(edgeperf.EdgeperfError, match="missing.tflite"):
            dev.run(model=str(tmp_path / "missing.tflite"), scenario="SingleStream")
    assert lab.holder(lab.place("serial")) is None
    with pytest.raises(RuntimeError, match="boom"):
        with edgeperf.connect(url(lab, "serial")):
            raise RuntimeError("boom")
    assert lab.holder(lab.place("serial")) is None


def test_unknown_host_key_is_refused_names_the_fix_and_releases(lab, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(LinkError) as e:
        edgeperf.connect(url(lab, "ssh"), identity=str(lab.ssh.client_key),
                         known_hosts=str(empty))
    msg = str(e.value)
    assert "not in known_hosts" in msg
    assert (f"edgeperf trust ssh://{lab.ssh.user}@{lab.ssh.addr}:{lab.ssh.port} "
            f"--known-hosts {empty}") in msg
    # the NetworkService's password is named as unused, never shown
    assert "carries a password, which edgeperf never uses" in msg and PASSWORD not in msg
    assert lab.holder(lab.place("ssh")) is None


def test_no_serial_resource_for_via_serial(lab):
    with pytest.raises(LinkError, match=r"has no NetworkSerialPort \(for via=serial\) "
                                        r"\(it has: NetworkService\)"):
        edgeperf.connect(url(lab, "ssh", via="serial"))
    assert lab.holder(lab.place("ssh")) is None


def _spawn_run(board: str, out: Path, *flags: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "edgeperf.cli", "run", "--board", board, *flags,
            "--model", "synthetic:busy:1000", "--scenario", "SingleStream", "--preset", "smoke",
            "--min-duration", "120", "--max-duration", "300", "--min-queries", "1000000",
            "--target-latency-ms", "1", "--out", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_mid_run(proc: subprocess.Popen, out: Path, timeout: float = 180) -> None:
    """Until the run is under way: its QueryLog has started to arrive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if (out / "querylog.spill").exists():
            return
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"the run did not start in {timeout:.0f} s: {proc.communicate()}")


@pytest.mark.parametrize("sig,kind", [(signal.SIGINT, "serial"), (signal.SIGTERM, "ssh")])
def test_interrupted_run_releases_the_place(lab, tmp_path, sig, kind):
    out = tmp_path / "run"
    flags = ssh_flags(lab) if kind == "ssh" else []
    proc = _spawn_run(url(lab, kind), out, *flags)
    try:
        _wait_mid_run(proc, out)
        assert lab.holder(lab.place(kind)) == lg.owner()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if kind == "serial":  # its agent is still in the 120 s scenario: reset the board
            lab.agents[0].kill()
            lab.agents[0].start()
    assert proc.returncode == (1 if sig == signal.SIGINT else 128 + signal.SIGTERM), err
    if sig == signal.SIGINT:
        assert "interrupted" in err
    assert lab.holder(lab.place(kind)) is None


# ---------------------------------------------------------------- errors that say the fix
def test_place_held_by_someone_else(lab, capsys):
    place = lab.place("serial")
    lab.client("acquire", place=place, user="alice", check=True)
    try:
        with pytest.raises(LinkError) as e:
            edgeperf.connect(url(lab, "serial"))
        msg = str(e.value)
        assert f"labgrid place {place} is held by " in msg and "/alice (HOST/USER)" in msg
        assert f"'labgrid-client -p {place} release'" in msg and "who" in msg
        assert lab.holder(place).endswith("/alice")  # still alice's: never taken from her
        assert main(["run", "--board", url(lab, "serial"), *SHORT]) == 1
        assert "/alice" in capsys.readouterr().err
    finally:
        lab.client("release", place=place, user="alice", check=True)


def test_unknown_place_and_no_coordinator(lab):
    with pytest.raises(LinkError, match=r"labgrid place 'no-such-place' does not exist on the "
                                        rf"coordinator at {lab.address}; 'labgrid-client"):
        edgeperf.connect(f"labgrid://no-such-place?coordinator={lab.address}")
    nobody = f"127.0.0.1:{free_port()}"
    with pytest.raises(LinkError, match=f"no labgrid coordinator answers at {nobody}; start "
                                        "labgrid-coordinator there, or name the right one"):
        edgeperf.connect(f"labgrid://{lab.place('ssh')}?coordinator={nobody}")


def test_labgrid_not_installed_names_the_extra(monkeypatch):
    real = lg.importlib.util.find_spec
    monkeypatch.setattr(lg.importlib.util, "find_spec",
                        lambda name, *a: None if name == "labgrid" else real(name, *a))
    with pytest.raises(LinkError, match=r"labgrid is not installed here; run pip install "
                                        r"'edgeperf\[labgrid\]'"):
        edgeperf.connect("labgrid://anything?coordinator=127.0.0.1:1")


def test_board_urls_and_profiles():
    p = load_board("labgrid://rpi4-1?via=serial&coordinator=lab:20408")
    assert (p.link_type, p.labgrid.place, p.labgrid.via, p.labgrid.coordinator) == \
        ("labgrid", "rpi4-1", "serial", "lab:20408")
    p = load_board("labgrid://rpi4-1?identity=~/.ssh/lab&known_hosts=/k&python=/py")
    assert (p.identity, p.known_hosts, p.python, p.labgrid.coordinator) == \
        ("~/.ssh/lab", "/k", "/py", None)
    for bad, needle in [("labgrid://", "write labgrid://PLACE"),
                        ("labgrid://p?baud=9600", "unknown parameter 'baud'"),
                        ("labgrid://p?via=usb", "via is 'usb'; allowed: ssh, serial"),
                        ("labgrid://p/x", "write labgrid://PLACE")]:
        with pytest.raises(BoardError, match=needle):
            load_board(bad)
    with pytest.raises(BoardError, match=r"a labgrid place is --board labgrid://PLACE"):
        parse_board('[link]\ntype = "labgrid"\n', "lab.toml")
    plan = load_plan({"campaign": {"name": "c"}, "models": ["synthetic:null"],
                      "scenarios": ["Offline"],
                      "boards": [{"name": "labgrid://rpi4-1?via=serial"},
                                 {"name": "labgrid://rpi4-2"}]})
    assert [(b.label, b.spec) for b in plan.boards] == [
        ("rpi4-1", "labgrid://rpi4-1?via=serial"), ("rpi4-2", "labgrid://rpi4-2")]


# ---------------------------------------------------------------- campaigns over places
def test_campaign_over_places(lab, tmp_path):
    plan = {"campaign": {"name": "lab", "retries": 0},
            "models": ["synthetic:busy:20"], "scenarios": ["SingleStream"],
            "settings": {"min_query_count": 100, "min_duration_ms": 0,
                         "target_latency_ns": 20_000},
            "boards": [{"name": url(lab, "serial")},
                       {"name": url(lab, "ssh", **ssh_query(lab))}]}
    r = run_campaign(plan, out=tmp_path / "camp")
    assert r.exit_code == 0, r.cells
    assert sorted(r.boards) == sorted([lab.place("serial"), lab.place("ssh")])
    assert {c["status"] for c in r.cells.values()} == {"done"}
    assert {c["result"] for c in r.cells.values()} == {"VALID"}
    assert all("(labgrid place " in b["link"] for b in r.boards.values())
    for kind in ("serial", "ssh"):
        assert lab.holder(lab.place(kind)) is None


# ---------------------------------------------------------------- hard reset
def test_hard_reset_power_cycles_a_place_with_a_power_port(lab):
    assert lg.hard_reset(url(lab, "ssh")) is None  # no power resource
    assert lg.hard_reset("local") is None  # not a labgrid board
    del lab.power.log[:]
    done = lg.hard_reset(url(lab, "power"))
    assert done == f"power-cycled labgrid place {lab.place('power')} (NetworkPowerPort simplerest)"
    assert lab.power.log == ["off", "on"]  # through labgrid's own simplerest driver
    assert lab.holder(lab.place("power")) is None


def test_campaign_retry_hard_resets_the_board(lab, tmp_path):
    """The board resets itself as the first attempt starts (its agent is killed and a new one
    comes up: the host notices the new session at once); before the retry the runner
    power-cycles it through labgrid, whose simplerest driver switches it off (that agent
    dies) and on (a third agent starts), and the retry runs on that one."""
    events: list[tuple[str, str]] = []
    killed: list[int] = []

    def progress(event, data):
        if event == "device" and data["event"] == "run" and not killed:
            killed.append(lab.agents[1].proc.pid)
            lab.agents[1].kill()
            lab.agents[1].start()
            killed.append(lab.agents[1].proc.pid)
        elif event != "device":
            events.append((event, data["text"]))

    plan = {"campaign": {"name": "reset", "retries": 1},
            "models": ["synthetic:busy:20"], "scenarios": ["SingleStream"],
            "settings": {"min_query_count": 100, "min_duration_ms": 0,
                         "target_latency_ns": 20_000},
            "boards": [{"name": url(lab, "power")}]}
    del lab.power.log[:]
    r = run_campaign(plan, out=tmp_path / "camp", progress=progress)
    assert killed, events
    (cell,) = r.cells.values()
    assert (cell["status"], cell["result"], cell["attempts"]) == ("done", "VALID", 2), events
    assert ("reset", f"hard reset: power-cycled labgrid place {lab.place('power')} "
                     "(NetworkPowerPort simplerest)") in events
    assert [e for e, _ in events].index("reset") < [e for e, _ in events].index("cell-done")
    assert lab.power.log == ["off", "on"]
    assert lab.agents[1].proc.pid not in killed  # the power cycle brought a new agent up
    assert lab.holder(lab.place("power")) is None


# ---------------------------------------------------------------- pyserial and pyserial-labgrid
def _owns_its_files(dist: importlib.metadata.Distribution) -> bool:
    """Every serial/ file the distribution's RECORD names is on disk with that hash."""
    for f in dist.files or []:
        if not (str(f).startswith("serial/") and f.hash):
            continue
        path = Path(dist.locate_file(f))
        if not path.is_file():
            return False
        digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest())
        if digest.rstrip(b"=").decode() != f.hash.value:
            return False
    return True


def test_pyserial_and_pyserial_labgrid_side_by_side(lab, tmp_path):
    import serial
    import serial.rfc2217

    # both distributions are installed and claim the one serial/ folder; its files are
    # whole one distribution's (whichever pip installed last), never a mixture
    dists = {name: importlib.metadata.distribution(name)
             for name in ("pyserial", "pyserial-labgrid")}
    for d in dists.values():
        assert "serial/__init__.py" in {str(f) for f in d.files}
        assert Path(d.locate_file("serial/__init__.py")) == Path(serial.__file__)
    owners = [name for name, d in dists.items() if _owns_its_files(d)]
    assert len(owners) == 1, owners
    assert serial.VERSION.startswith("3.5")  # edgeperf's pyserial>=3.5 holds either way
    check = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True,
                           text=True)
    assert not [ln for ln in check.stdout.splitlines() if "serial" in ln or "labgrid" in ln]

    # a device path: SerialLink as before (exclusive open of a pty)
    with LineSim(BAUD, seed=3) as sim:
        agent = Agent(sim, tmp_path / "cache")
        try:
            link = SerialLink(sim.host_path, BAUD)
            try:
                assert link.ser.exclusive is True
                assert AgentClient(link).hello()["pid"] == agent.proc.pid
            finally:
                link.close()
        finally:
            agent.stop()

    # an RFC 2217 URL with ign_set_control, against the exporter's ser2net on a pty
    place = lab.place("serial")
    lab.client("acquire", place=place, check=True)
    try:
        env = lab.client("env", place=place, check=True).stdout
        port = int(env.split("port:")[1].split()[0])
        ser = serial.serial_for_url(f"rfc2217://127.0.0.1:{port}?ign_set_control", BAUD,
                                    timeout=1)
        try:
            assert isinstance(ser, serial.rfc2217.Serial) and ser.is_open
            assert ser._ignore_set_control_answer is True
        finally:
            ser.close()
    finally:
        lab.client("release", place=place, check=True)


def test_an_rfc2217_port_is_read_by_the_chunk_not_the_byte(lab):
    """pyserial's RFC 2217 read() with timeout 0 gives one byte a call: polled every 2 ms,
    that was 500 bytes/s, and every reply outran its retransmit timer."""
    place = lab.place("serial")
    lab.client("acquire", place=place, check=True)
    try:
        env = lab.client("env", place=place, check=True).stdout
        port = int(env.split("port:")[1].split()[0])
        link = SerialLink(f"rfc2217://127.0.0.1:{port}?ign_set_control", BAUD)
        reads: list[int] = []
        read = link.ser.read

        def counted(n: int = 1) -> bytes:
            data = read(n)
            if data:
                reads.append(len(data))
            return data

        link.ser.read = counted
        try:
            client = AgentClient(link)
            client.hello()
            for _ in range(3):
                client.telemetry()
            client.bye()
        finally:
            link.close()
    finally:
        lab.client("release", place=place, check=True)
    assert sum(reads) > 1000
    assert sum(reads) / len(reads) > 16, (sum(reads), len(reads))  # bytes a read
