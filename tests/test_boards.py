"""Board profiles: the shipped ones load, and every mistake is named with its file and key."""

from __future__ import annotations

import pytest

from edgeperf.boards.profile import (
    BoardError,
    BoardProfile,
    board_from_url,
    list_boards,
    load_board,
    parse_board,
    with_overrides,
)

SHIPPED = ["android-termux", "local", "raspberry-pi-4", "raspberry-pi-5", "ssh-generic"]


def test_shipped_profiles_load():
    boards = list_boards()
    assert SHIPPED == [n for n in boards if n in SHIPPED] and set(SHIPPED) <= set(boards)
    termux = load_board("android-termux")
    assert (termux.link_type, termux.port, termux.python, termux.host) == (
        "ssh", 8022, "python", "phone")
    pi = load_board("raspberry-pi-4")
    assert (pi.host, pi.python, pi.cool_down_below_c, pi.keepalive) == (
        "raspberrypi.local", "python3", 55.0, 15.0)
    assert pi.governor is None and pi.cpu_affinity == []
    generic = load_board("ssh-generic")
    assert generic.host == "edgeperf-device" and generic.port is None


def test_full_ssh_profile():
    b = parse_board('''
[board]
name = "lab-pi"
[link]
type = "ssh"
host = "pi4"
port = 2222
user = "bench"
identity = "~/.ssh/lab"
known_hosts = "~/.ssh/lab_known_hosts"
proxy_jump = "me@gateway"
python = "~/venv/bin/python"
cache_dir = "/var/tmp/edgeperf"
connect_timeout = 4
command_timeout = 30.5
keepalive = 0
[device]
cpu_affinity = [2, 3]
cool_down_below_c = 50
cool_down_max_wait_s = 120
governor = "performance"
''', "lab-pi.toml")
    assert (b.name, b.host, b.port, b.user, b.identity, b.known_hosts, b.proxy_jump) == (
        "lab-pi", "pi4", 2222, "bench", "~/.ssh/lab", "~/.ssh/lab_known_hosts", "me@gateway")
    assert (b.connect_timeout, b.command_timeout, b.keepalive) == (4.0, 30.5, 0.0)
    assert (b.cpu_affinity, b.cool_down_below_c, b.cool_down_max_wait_s, b.governor) == (
        [2, 3], 50.0, 120.0, "performance")
    d = b.to_dict()
    assert d["ssh"]["host"] == "pi4" and d["ssh"]["port"] == 2222
    assert d["tuning"] == {"cool_down_below_c": 50.0, "cool_down_max_wait_s": 120.0,
                           "governor": "performance"}


@pytest.mark.parametrize("text,needle", [
    ('[link]\ntype = "ssh"\nhost = "pi"\npassword = "raspberry"\n',
     "x.toml: link.password is not supported: edgeperf logs in with keys only"),
    ('[link]\ntype = "ssh"\n', "x.toml: link.host is required for an ssh link"),
    ('[link]\ntype = "ssh"\nhost = ""\n', "x.toml: link.host is required"),
    ('[link]\ntype = "ssh"\nhost = "pi"\nport = 0\n',
     "x.toml: link.port must be a TCP port number from 1 to 65535, got 0"),
    ('[link]\ntype = "ssh"\nhost = "pi"\nport = "22"\n', "link.port must be a TCP port"),
    ('[link]\ntype = "ssh"\nhost = "pi"\nconnect_timeout = -1\n',
     "x.toml: link.connect_timeout must be seconds of at least 0.1, got -1"),
    ('[link]\ntype = "ssh"\nhost = "pi"\nkeepalive = true\n', "link.keepalive must be seconds"),
    ('[link]\ntype = "ssh"\nhost = "pi"\nidentity = 3\n',
     "x.toml: link.identity must be a non-empty string, got 3"),
    ('[link]\ntype = "local"\nhost = "pi"\n',
     "x.toml: link.host applies to type = \"ssh\" links only; this board's link.type is "
     "'local'"),
    ('[link]\ntype = "bluetooth"\n',
     "x.toml: link.type is 'bluetooth'; allowed: local, ssh, serial"),
    ('[link]\ntype = "ssh"\nhost = "pi"\nhostname = "x"\n',
     "x.toml: unknown key 'link.hostname'; allowed in [link]: baud, cache_dir, command_timeout,"),
    ('[link]\ntype = "ssh"\nhost = "pi"\n[device]\ncool_down_below_c = 300\n',
     "x.toml: device.cool_down_below_c must be degrees Celsius from 0 to 150, got 300"),
    ('[link]\ntype = "ssh"\nhost = "pi"\n[device]\ncool_down_max_wait_s = -5\n',
     "device.cool_down_max_wait_s must be seconds of at least 0, got -5"),
    ('[link]\ntype = "ssh"\nhost = "pi"\n[device]\ngovernor = "Perf ormance"\n',
     "x.toml: device.governor must be a cpufreq governor name"),
    ('[link]\ntype = "ssh"\nhost = "pi"\n[device]\nfan = 1\n',
     "unknown key 'device.fan'; allowed in [device]: cool_down_below_c, cool_down_max_wait_s, "
     "cpu_affinity, governor"),
])
def test_profile_errors_name_file_key_and_allowed(text, needle):
    with pytest.raises(BoardError) as exc:
        parse_board(text, "x.toml")
    assert needle in str(exc.value)


def test_ssh_url_boards():
    b = load_board("ssh://pi@192.168.1.20:8022")
    assert (b.name, b.link_type, b.user, b.host, b.port) == (
        "ssh://pi@192.168.1.20:8022", "ssh", "pi", "192.168.1.20", 8022)
    b = board_from_url("ssh://[fe80::1%25eth0]")
    assert (b.user, b.host, b.port) == (None, "fe80::1%25eth0", None)
    with pytest.raises(BoardError, match="holds a password; edgeperf logs in with keys only"):
        load_board("ssh://pi:raspberry@pi4")
    with pytest.raises(BoardError, match="not an SSH board URL; write ssh://"):
        load_board("ssh://pi4/some/path")
    with pytest.raises(BoardError, match="the port must be a number from 1 to 65535"):
        load_board("ssh://pi4:99999")


def test_overrides():
    b = load_board("raspberry-pi-4")
    o = with_overrides(b, identity="/k", known_hosts="/kh", python="/py")
    assert (o.identity, o.known_hosts, o.python, o.host) == ("/k", "/kh", "/py", b.host)
    assert with_overrides(b) is b
    local = BoardProfile(name="local", link_type="local")
    with pytest.raises(BoardError, match="--identity applies to SSH boards; board local has a "
                                         "local link"):
        with_overrides(local, identity="/k")
    assert with_overrides(local, python="/py").python == "/py"
