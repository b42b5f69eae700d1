"""A serial agent that refuses strangers: the shared-key handshake (device_agent/auth.py,
host/links/serial_key.py) over real pseudo-terminals (LineSim) with the real agent zipapp on
the device end, the key files and their modes, what ``edgeperf info`` says of an open agent,
and the unprivileged systemd unit that serves it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from runs import small
from serial_agent import Agent

from edgeperf.boards.profile import SerialParams, load_board
from edgeperf.cli.main import main
from edgeperf.errors import AgentError, LinkError, RunError
from edgeperf.links.bundle import local_agent_path
from edgeperf.links.labgrid import LabgridError, Place, inner_profile
from edgeperf.links.serial import SerialLink
from edgeperf.run.client import AgentClient
from edgeperf.run.execute import EXIT_VALID, RunSpec, execute
from edgeperf.testing.line_sim import LineSim
from edgeperf_agent import auth, wire

FAST = 921600
ROOT = Path(__file__).resolve().parent.parent
LONG_HEX = re.compile(r"[0-9a-fA-F]{32,}")  # a key, a nonce or a MAC: never in a log


@pytest.fixture
def key(tmp_path) -> Path:
    path = tmp_path / "agent.key"
    auth.write_key_file(str(path))
    return path


@pytest.fixture
def line(tmp_path) -> Iterator:
    """start(key_file=None, **Agent options) -> (sim, agent): a line simulator and the real
    agent serving its device end; all of them stopped after the test."""
    started: list[tuple[LineSim, Agent]] = []

    def start(key_file: Path | None = None, **kw) -> tuple[LineSim, Agent]:
        sim = LineSim(FAST, seed=1).start()
        agent = Agent(sim, tmp_path / f"cache{len(started)}", key_file=key_file, **kw)
        started.append((sim, agent))
        return sim, agent

    yield start
    for sim, agent in started:
        agent.stop()
        sim.close()


def url(sim: LineSim, key_file: Path | None = None) -> str:
    return f"serial://{sim.host_path}?baud={FAST}" + (f"&key_file={key_file}" if key_file
                                                       else "")


def raw_hello(client: AgentClient) -> dict:
    """hello as a client that knows nothing of keys sends it (no handshake)."""
    return client.request("hello")[0]


# ---------------------------------------------------------------- the handshake, end to end


def test_key_on_both_ends_runs_and_info_says_authenticated(line, key, tmp_path, capsys):
    sim, agent = line(key)
    board = load_board(url(sim, key))
    assert board.serial == SerialParams(sim.host_path, FAST, key_file=str(key))
    out = tmp_path / "run"
    o = execute(RunSpec(model="synthetic:busy:20", settings=small("SingleStream"), board=board,
                        out_dir=out))
    assert o.exit_code == EXIT_VALID, (o.error, o.invalid_reasons)
    res = json.loads((out / "result.json").read_text())
    assert res["device"]["auth"] == {"required": True, "authenticated": True}  # no nonce, no MAC
    assert res["device"]["pid"] == agent.proc.pid  # the whole hello, once authenticated
    assert res["run"]["checksum_ok"] is True and res["run"]["rows"] >= 80
    assert main(["info", "--board", url(sim, key)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "access     key required (authenticated)" in lines
    err = agent.stop()
    assert "access: key required" in err
    assert err.count("host authenticated (connection ") == 2  # the run's session, info's
    assert "auth refused" not in err and not LONG_HEX.search(err)
    secret = key.read_text().strip().encode()
    assert not [p for p in out.rglob("*") if p.is_file() and secret in p.read_bytes()]


def test_host_without_the_key_is_refused_with_the_fix(line, key, tmp_path):
    sim, agent = line(key)
    link = SerialLink(sim.host_path, FAST)
    try:
        c = AgentClient(link, timeout=20)
        hello = raw_hello(c)  # hello is always answered: what access needs, and the versions
        assert set(hello) == {"op", "agent_version", "protocol", "wire", "auth"}
        assert hello["auth"]["required"] is True and hello["auth"]["authenticated"] is False
        assert auth.is_nonce(hello["auth"]["nonce"])
        for op in ("telemetry", "governor", "sensors", "load_model"):
            with pytest.raises(AgentError) as ei:
                c.request(op)
            assert ei.value.kind == "AuthRequired", op
            assert "this agent requires a key" in str(ei.value)
            assert "?key_file=PATH on the serial URL" in str(ei.value)
        with pytest.raises(AgentError) as ei:
            c.hello()  # the host's own hello: it has no key to answer with
        assert ei.value.kind == "AuthRequired"
        assert str(ei.value).startswith(f"serial {sim.host_path} @ {FAST}: the agent requires "
                                        "a key (AuthRequired) and this host has none for it: "
                                        "give the host the key file: ?key_file=PATH")
    finally:
        link.close()
    with pytest.raises(RunError, match=re.escape(f"serial:{sim.host_path}: serial "
                                                 f"{sim.host_path} @ {FAST}: the agent "
                                                 "requires a key (AuthRequired)")):
        execute(RunSpec(model="synthetic:null", settings=small("SingleStream"),
                        board=load_board(url(sim)), out_dir=tmp_path / "run"))
    assert not (tmp_path / "run" / "querylog.npz").exists()  # nothing ran


def test_wrong_key_is_AuthFailed_and_logged_without_key_or_mac(line, key, tmp_path):
    sim, agent = line(key)
    other = tmp_path / "other.key"
    auth.write_key_file(str(other))
    link = SerialLink(sim.host_path, FAST, key_file=str(other))
    try:
        c = AgentClient(link, timeout=20)
        with pytest.raises(AgentError) as ei:
            c.hello()
        assert ei.value.kind == "AuthFailed"
        assert f"key_file {other} is not the key the device was given" in str(ei.value)
        with pytest.raises(AgentError) as ei:
            c.request("telemetry")  # still not in
        assert ei.value.kind == "AuthRequired"
        # another wrong answer right after a refusal is answered no sooner than 1 s later
        hs = auth.HostHandshake(auth.load_key(str(other)), raw_hello(c)["auth"]["nonce"],
                                link.connection_id)
        for _ in range(2):
            with pytest.raises(AgentError) as ei:
                c.request("auth", **hs.request())
            assert ei.value.kind == "AuthFailed"
            refused_at = time.monotonic()
        with pytest.raises(AgentError) as ei:
            c.request("auth", **hs.request())
        assert time.monotonic() - refused_at >= 0.9  # a lower bound: the agent waited
    finally:
        link.close()
    err = agent.stop()
    assert re.findall(r"auth refused \(connection [0-9a-f]{8}, (\d+) so far\): the host's "
                      r"answer does not match this agent's key", err) == ["1", "2", "3", "4"]
    assert err.count("the next attempt waits 1 s") == 4
    for secret in (key.read_text().strip(), other.read_text().strip()):
        assert secret not in err
    assert not LONG_HEX.search(err)  # no MAC, no nonce either


def test_an_answer_replayed_from_an_earlier_session_is_refused(line, key):
    """A stranger who recorded a good session's auth replays it in a session of its own,
    and after a session reset the host must authenticate again."""
    sim, agent = line(key)
    k = auth.load_key(str(key))
    link = SerialLink(sim.host_path, FAST)
    try:
        c = AgentClient(link, timeout=20)
        first = raw_hello(c)["auth"]
        hs = auth.HostHandshake(k, first["nonce"], link.connection_id)
        recorded = hs.request()
        reply, _ = c.request("auth", **recorded)
        assert reply["authenticated"] is True and hs.agent_proved(reply)
        assert "time_ns" in c.request("telemetry")[0]  # in
        whole = raw_hello(c)  # the same session: the same nonce, and now all of the hello
        assert whole["auth"] == dict(first, authenticated=True) and "hostname" in whole
    finally:
        link.close()
    link = SerialLink(sim.host_path, FAST)  # a new reliable session
    try:
        c = AgentClient(link, timeout=20)
        again = raw_hello(c)["auth"]
        assert again["authenticated"] is False and again["nonce"] != first["nonce"]
        with pytest.raises(AgentError) as ei:
            c.request("telemetry")  # the reset took the authentication with it
        assert ei.value.kind == "AuthRequired"
        with pytest.raises(AgentError) as ei:
            c.request("auth", **recorded)
        assert ei.value.kind == "AuthFailed"
        with pytest.raises(AgentError) as ei:
            c.request("telemetry")
        assert ei.value.kind == "AuthRequired"
    finally:
        link.close()
    err = agent.stop()
    assert err.count("host authenticated") == 1 and err.count("auth refused") == 1


def test_agent_that_cannot_prove_the_key_is_a_link_error(line, key, tmp_path):
    """The host checks the agent's MAC too: an agent with another key (or none) is not the
    device this host's key belongs to."""
    sim, agent = line(None)
    link = SerialLink(sim.host_path, FAST, key_file=str(key))
    try:
        with pytest.raises(LinkError, match="this host holds a key for the board .* but the "
                                            "agent that answered requires none"):
            AgentClient(link, timeout=20).hello()
    finally:
        link.close()
    # an agent answering auth with a MAC of a key that is not the host's
    other = auth.new_key()
    calls = []

    def request(op, **fields):
        calls.append(op)
        return {"authenticated": True, "mac": auth.mac(other, fields["nonce"], "ab" * 32, 7)}, b""

    from edgeperf.links.serial_key import authenticate

    with pytest.raises(LinkError, match=r"fake: the device does not hold this key \(key_file "
                                        r"k\): its answer to the handshake is not the key's"):
        authenticate(request, "fake", {"required": True, "nonce": "ab" * 32},
                     auth.load_key(str(key)), "k", 7)
    assert calls == ["auth"]


def test_open_agent_works_as_before_and_info_says_open(line, key, capsys):
    sim, agent = line(None)
    link = SerialLink(sim.host_path, FAST)
    try:
        c = AgentClient(link, timeout=20)
        assert "time_ns" in c.request("telemetry")[0]  # no hello needed, as always
        assert c.hello()["auth"] == {"required": False}
        with pytest.raises(AgentError) as ei:  # the sysfs root is not the host's to name
            c.request("sensors", root="/")
        assert "the sysfs root is device configuration" in str(ei.value)
        assert "EDGEPERF_SYSFS_ROOT in the agent's environment" in str(ei.value)
    finally:
        link.close()
    assert main(["info", "--board", url(sim)]) == 0
    assert ("access     open (no key: any host on this port can drive it; see edgeperf "
            "serial-key)") in capsys.readouterr().out.splitlines()
    assert "access: open (no key: any host on this port can drive it" in agent.stop()


def test_the_key_from_the_environment(line, key):
    sim, agent = line(None, env={auth.KEY_ENV: str(key)})
    link = SerialLink(sim.host_path, FAST)
    try:
        assert raw_hello(AgentClient(link, timeout=20))["auth"]["required"] is True
    finally:
        link.close()


# ---------------------------------------------------------------- key files


def test_a_key_file_others_may_read_is_refused_on_both_ends(line, key, tmp_path):
    key.chmod(0o644)
    sim, agent = line(key)
    assert agent.proc.wait(timeout=30) == 1
    err = agent.stop()
    assert (f"cannot serve on {sim.device_path}: key file {key} may be read by its group or "
            f"others (mode 0644), so it is refused") in err
    assert f"run 'chmod 600 {key}'" in err and key.read_text().strip() not in err
    with pytest.raises(LinkError, match=re.escape(f"serial {sim.host_path}: key file {key} may "
                                                  "be read by its group or others (mode 0644)")):
        SerialLink(sim.host_path, FAST, key_file=str(key))
    key.chmod(0o600)
    bad = tmp_path / "bad.key"
    bad.write_text("not a key, and never shown\n")
    bad.chmod(0o600)
    with pytest.raises(auth.KeyFileError) as ei:
        auth.load_key(str(bad))
    assert "does not hold a key (64 hex digits" in str(ei.value)
    assert "never shown" not in str(ei.value)
    with pytest.raises(auth.KeyFileError, match="cannot read key file .*No such file"):
        auth.load_key(str(tmp_path / "missing.key"))


def test_key_file_applies_to_serial_only():
    r = subprocess.run([sys.executable, str(local_agent_path()), "serve", "--stdio",
                        "--key-file", "/nonexistent"], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 2
    assert "--key-file applies to --serial: over SSH, SSH itself authenticates" in r.stderr


def test_serial_key_new_writes_0600_and_says_how_to_install(tmp_path, capsys):
    path = tmp_path / "k"
    assert main(["serial-key", "new", str(path)]) == 0
    out = capsys.readouterr().out
    text = path.read_text()
    assert re.fullmatch(r"[0-9a-f]{64}\n", text)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert text.strip() not in out  # the key is in the file, never on the screen
    assert f"install -D -m 600 {path} /etc/edgeperf/agent.key" in out
    assert f"?key_file={path}" in out and "LoadCredential=" in out
    assert len(auth.load_key(str(path))) == 32
    assert main(["serial-key", "new", str(path)]) == 2  # never over an existing key
    assert "already exists; a key is never overwritten" in capsys.readouterr().err
    assert path.read_text() == text


# ---------------------------------------------------------------- the handshake's rules


def frame(op: str, **fields) -> wire.Frame:
    return wire.FrameDecoder().feed(wire.encode(wire.REQUEST, 1, dict(fields, op=op)))[0]


def test_gate_binds_the_answer_to_nonce_and_session_and_delays_after_a_failure():
    key = auth.new_key()
    now = [100.0]
    logged: list[str] = []
    gate = auth.Gate(key, logged.append, clock=lambda: now[0])
    gate.enter(1, 0x1234)
    hello = gate.annotate(frame("hello"), wire.RESPONSE, {"op": "hello"})["auth"]
    assert hello == {"required": True, "nonce": gate.nonce, "authenticated": False}
    assert gate.screen(frame("hello")) is None
    assert gate.screen(frame("telemetry"))[1]["kind"] == "AuthRequired"
    assert gate.screen(frame("auth"))[1]["kind"] == "AuthFailed"  # no nonce, no MAC
    # a MAC over another connection id (another session's) fails, and delays the next
    wrong = auth.HostHandshake(key, hello["nonce"], 0x4321).request()
    assert gate.screen(frame("auth", **wrong))[1]["kind"] == "AuthFailed"
    now[0] = 100.25
    assert gate.hold(frame("auth")) == 0.75 and gate.hold(frame("telemetry")) == 0.0
    now[0] = 101.0
    assert gate.hold(frame("auth")) == 0.0
    hs = auth.HostHandshake(key, hello["nonce"], 0x1234)
    type_, reply, _ = gate.screen(frame("auth", **hs.request()))
    assert type_ == wire.RESPONSE and hs.agent_proved(reply) and gate.authenticated
    assert not auth.HostHandshake(auth.new_key(), hello["nonce"], 0x1234).agent_proved(reply)
    assert gate.screen(frame("telemetry")) is None
    gate.enter(2, 0x5678)  # a new session: a new nonce, not authenticated
    assert not gate.authenticated and gate.nonce != hello["nonce"]
    assert gate.screen(frame("telemetry"))[1]["kind"] == "AuthRequired"
    why = ("the host's answer does not match this agent's key (a host without the key, a "
           "wrong key file, or an answer replayed from another session); the next attempt "
           "waits 1 s")
    assert logged == [f"auth refused (connection 00001234, 1 so far): {why}",
                      f"auth refused (connection 00001234, 2 so far): {why}",
                      "host authenticated (connection 00001234)"]
    # the MAC is the one the protocol states
    import hashlib
    import hmac

    a, h = "11" * 32, "22" * 32
    assert auth.mac(key, a, h, 0x1234) == hmac.new(
        key, b"edgeperf-serial-auth-v1|" + bytes.fromhex(a) + b"|" + bytes.fromhex(h)
        + b"|00001234", hashlib.sha256).hexdigest()
    open_gate = auth.Gate(None, logged.append)
    open_gate.enter(1, 1)
    assert open_gate.screen(frame("telemetry")) is None
    assert open_gate.annotate(frame("hello"), wire.RESPONSE, {})["auth"] == {"required": False}


def test_labgrid_serial_place_takes_the_key_file():
    board = load_board("labgrid://rpi?via=serial&key_file=/etc/edgeperf/host.key")
    assert board.labgrid.key_file == "/etc/edgeperf/host.key"
    place = Place("rpi", "c:1", [("NetworkSerialPort", {"host": "exp", "port": 4001,
                                                         "speed": 921600})])
    inner = inner_profile(board, place, "serial")
    assert inner.serial == SerialParams("rfc2217://exp:4001?ign_set_control", 921600,
                                        key_file="/etc/edgeperf/host.key")
    ssh = Place("rpi", "c:1", [("NetworkService", {"address": "10.0.0.5", "username": "pi"})])
    with pytest.raises(LabgridError, match="key_file is a serial agent's key, but the "
                                                  "board is reached over SSH"):
        inner_profile(board, ssh, "ssh")


# ---------------------------------------------------------------- the unprivileged unit


def test_the_unit_runs_the_agent_unprivileged_and_systemd_accepts_it(tmp_path):
    unit = ROOT / "boards" / "edgeperf-agent-serial.service"
    keys: dict[str, list[str]] = {}
    for ln in unit.read_text().splitlines():
        if ln and not ln.startswith(("#", "[")):
            k, _, v = ln.partition("=")
            keys.setdefault(k, []).append(v)
    want = {"User": ["edgeperf"], "Group": ["edgeperf"], "SupplementaryGroups": ["dialout video"],
            "CacheDirectory": ["edgeperf-agent"], "NoNewPrivileges": ["yes"],
            "ProtectSystem": ["strict"], "ProtectHome": ["yes"], "PrivateTmp": ["yes"],
            "Environment": ["EDGEPERF_AGENT_CACHE=/var/cache/edgeperf-agent"],
            "Nice": ["-5"], "CapabilityBoundingSet": [""]}
    assert {k: keys.get(k) for k in want} == want
    # what would take /sys, /proc or the tty away from the agent is not there
    assert not set(keys) & {"ProtectKernelTunables", "PrivateDevices", "ProtectClock",
                            "DevicePolicy", "DeviceAllow", "ProcSubset"}
    assert keys["ExecStartPre"] == ["-+/usr/bin/systemd-tmpfiles --create "
                                    "--prefix=/sys/devices/system/cpu"]
    # systemd itself reads it: no unknown key, no bad value
    copy = tmp_path / unit.name
    shutil.copy(unit, copy)
    r = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    keyed = tmp_path / "keyed" / unit.name
    keyed.parent.mkdir()
    keyed.write_text(unit.read_text().replace("#LoadCredential=", "LoadCredential=")
                     .replace("#Environment=EDGEPERF_AGENT_KEY", "Environment=EDGEPERF_AGENT_KEY"))
    assert "LoadCredential=agent.key:/etc/edgeperf/agent.key\n" in keyed.read_text()
    r = subprocess.run(["systemd-analyze", "verify", str(keyed)], capture_output=True, text=True)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    # the sysusers file makes the user, in dialout and video, with no login
    fake = tmp_path / "root"
    (fake / "etc" / "sysusers.d").mkdir(parents=True)
    shutil.copy(ROOT / "boards" / "edgeperf-agent.sysusers.conf",
                fake / "etc" / "sysusers.d" / "edgeperf-agent.conf")
    subprocess.run(["systemd-sysusers", f"--root={fake}"], check=True, capture_output=True)
    pw = {f[0]: f for f in (ln.split(":") for ln in (fake / "etc/passwd").read_text().splitlines())}
    gr = {f[0]: f for f in (ln.split(":") for ln in (fake / "etc/group").read_text().splitlines())}
    assert pw["edgeperf"][6] == "/usr/sbin/nologin" and int(pw["edgeperf"][2]) < 1000
    assert pw["edgeperf"][3] == gr["edgeperf"][2]
    assert (gr["dialout"][3], gr["video"][3]) == ("edgeperf", "edgeperf")
