"""ssh:// URLs, ~/.ssh/config resolution, and known_hosts handling (no server needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import paramiko
import pytest

from edgeperf.links.ssh import known_hosts
from edgeperf.boards.profile import parse_ssh_url
from edgeperf.links.ssh.config import parse_jump, resolve


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr("getpass.getuser", lambda: "me")
    (tmp_path / ".ssh").mkdir()
    return tmp_path


@pytest.mark.parametrize("url,want", [
    ("ssh://pi4", (None, "pi4", None)),
    ("ssh://pi@pi4", ("pi", "pi4", None)),
    ("ssh://u0_a123@10.0.0.7:8022", ("u0_a123", "10.0.0.7", 8022)),
    ("ssh://root@[::1]:2200/", ("root", "::1", 2200)),
    ("ssh://[fd00::5]", (None, "fd00::5", None)),
])
def test_parse_ssh_url(url, want):
    assert parse_ssh_url(url) == want


@pytest.mark.parametrize("url", ["pi4", "http://pi4", "ssh://", "ssh://pi4/x", "ssh://pi4?x=1",
                                 "ssh://pi 4", "ssh://pi4:abc", "ssh://pi4:0"])
def test_parse_ssh_url_rejects(url):
    with pytest.raises(ValueError):
        parse_ssh_url(url)


def test_parse_jump():
    assert parse_jump("gw") == [(None, "gw", None)]
    assert parse_jump("me@gw:2222, ssh://you@inner") == [("me", "gw", 2222),
                                                         ("you", "inner", None)]
    with pytest.raises(ValueError, match="empty hop"):
        parse_jump("gw,,x")


def test_defaults_without_config(home):
    t = resolve("10.0.0.5", board="pi")
    assert (t.hostname, t.port, t.user, t.proxy_jump) == ("10.0.0.5", 22, "me", [])
    assert t.identity_files == [str(home / ".ssh" / n) for n in ("id_ed25519", "id_ecdsa",
                                                                  "id_rsa")]
    assert not t.explicit_identity
    assert t.known_hosts == [str(home / ".ssh" / "known_hosts")]
    assert t.global_known_hosts == ["/etc/ssh/ssh_known_hosts"]
    assert (t.connect_timeout, t.command_timeout, t.keepalive) == (10.0, 60.0, 15.0)
    assert t.key_name == "10.0.0.5" and t.describe() == "me@10.0.0.5:22"
    assert t.trust_hint() == "edgeperf trust pi"


def test_config_alias_proxyjump_and_overrides(home):
    (home / ".ssh" / "config").write_text("""
Host lab-pi
  HostName 10.9.0.42
  User pi
  Port 2200
  IdentityFile ~/.ssh/lab_%h
  UserKnownHostsFile ~/.ssh/lab_known
  ProxyJump gw
  ConnectTimeout 4
  ServerAliveInterval 5
  IdentitiesOnly yes
Host gw
  HostName gateway.lab
  User jumper
Host bad
  ProxyCommand nc %h %p
""")
    t = resolve("lab-pi", board="lab")
    assert (t.hostname, t.port, t.user) == ("10.9.0.42", 2200, "pi")
    assert t.identity_files == [str(home / ".ssh" / "lab_10.9.0.42")] and t.explicit_identity
    assert t.identities_only
    assert t.known_hosts == [str(home / ".ssh" / "lab_known")]
    assert (t.connect_timeout, t.keepalive) == (4.0, 5.0)
    assert t.key_name == "[10.9.0.42]:2200"
    [gw] = t.proxy_jump
    assert (gw.hostname, gw.port, gw.user, gw.proxy_jump) == ("gateway.lab", 22, "jumper", [])
    assert t.describe() == "pi@10.9.0.42:2200 via jumper@gateway.lab:22"
    # the command line and the profile come first, as with OpenSSH
    o = resolve("lab-pi", user="root", port=22, identity="/keys/k", known_hosts="/kh",
                proxy_jump="none", keepalive=0, board="lab")
    assert (o.user, o.port, o.proxy_jump, o.keepalive) == ("root", 22, [], 0.0)
    assert o.identity_files == ["/keys/k", str(home / ".ssh" / "lab_10.9.0.42")]
    assert o.known_hosts == ["/kh"] and o.global_known_hosts == []
    assert o.trust_hint() == "edgeperf trust lab --known-hosts /kh"
    with pytest.raises(ValueError, match="ProxyCommand, which edgeperf does not run; use "
                                         "ProxyJump"):
        resolve("bad")


def _keygen(path: Path, kind: str = "ed25519") -> paramiko.PKey:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True)
    return paramiko.PKey.from_path(str(path))


def test_fingerprint_is_openssh_s(tmp_path):
    for kind in ("ed25519", "rsa", "ecdsa"):
        key = _keygen(tmp_path / kind, kind)
        theirs = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / kind) + ".pub"],
                                capture_output=True, text=True).stdout.split()[1]
        assert known_hosts.fingerprint(key) == theirs


def test_check_record_replace_hashed(tmp_path, home):
    key = _keygen(tmp_path / "host")
    other = _keygen(tmp_path / "other")
    kh = tmp_path / "known_hosts"
    t = resolve("10.0.0.5", port=2200, known_hosts=str(kh), board="pi")
    with pytest.raises(known_hosts.HostKeyError, match=r"\[10.0.0.5\]:2200 is not in "
                                                       "known_hosts"):
        known_hosts.check(t, key)
    path, removed = known_hosts.record(t, other)
    assert (path, removed) == (str(kh), 0) and oct(kh.stat().st_mode & 0o777) == "0o600"
    kh.write_text("# a comment\notherhost " + kh.read_text().split(" ", 1)[1])
    known_hosts.record(t, other)
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(kh)], check=True, capture_output=True)
    assert "|1|" in kh.read_text()  # hashed by OpenSSH itself
    with pytest.raises(known_hosts.HostKeyError, match="has CHANGED") as exc:
        known_hosts.check(t, key)
    assert exc.value.known == [known_hosts.describe_key(other)]
    _, removed = known_hosts.record(t, key, replace=True)
    assert removed == 1  # the hashed line for [10.0.0.5]:2200, not otherhost's nor the comment
    known_hosts.check(t, key)
    assert kh.read_text().startswith("# a comment\n")
    assert len(kh.read_text().splitlines()) == 3


def test_preferred_algorithms():
    offered = ("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")
    assert known_hosts.preferred_algorithms({"ssh-rsa": 1}, offered) == [
        "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256"]
    assert known_hosts.preferred_algorithms({}, offered) == list(offered)
