"""``edgeperf trust`` and the known_hosts check against a real OpenSSH sshd (tests/sshd.py):
--fingerprint, @revoked lines, hashed entries; OpenSSH's own ssh-keygen reads what we write."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import paramiko
import pytest
from sshd import SshDevice

from edgeperf.cli.main import main
from edgeperf.links.ssh import config as ssh_config
from edgeperf.links.ssh import known_hosts
from edgeperf.links.ssh.config import SshTarget
from edgeperf.run.execute import EXIT_ERROR

EXIT_USAGE = 2


@pytest.fixture(autouse=True)
def _own_home(tmp_path, monkeypatch):
    """No ~/.ssh of the user's, and /etc/ssh/ssh_config replaced by the test's own (empty
    unless a test writes HashKnownHosts into it)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    system = tmp_path / "ssh_config"
    system.write_text("")
    monkeypatch.setattr(ssh_config, "SYSTEM_CONFIG", str(system), raising=False)
    return system


def _flags(dev: SshDevice, kh: Path) -> list[str]:
    return ["--identity", str(dev.client_key), "--known-hosts", str(kh), "--python",
            sys.executable]


def _keygen_find(name: str, kh: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh-keygen", "-F", name, "-f", str(kh)], capture_output=True,
                          text=True)


def _other_key(tmp_path: Path, kind: str = "ed25519") -> tuple[str, str]:
    """A key that is not the device's: (its 'type base64' line, its fingerprint)."""
    path = tmp_path / f"other_{kind}"
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True)
    fp = subprocess.run(["ssh-keygen", "-lf", f"{path}.pub"], capture_output=True,
                        text=True).stdout.split()[1]
    return " ".join(Path(f"{path}.pub").read_text().split()[:2]), fp


# --------------------------------------------------------------------------- --fingerprint
def test_fingerprint_match_recorded(ssh_device, tmp_path, capsys):
    kh = tmp_path / "kh" / "known_hosts"
    fp = ssh_device.fingerprint()
    assert main(["trust", ssh_device.url, "--fingerprint", fp, *_flags(ssh_device, kh)]) == 0
    out = capsys.readouterr().out
    assert (f"recorded   {ssh_device.key_name} in {kh}: ssh-ed25519 {fp}, fingerprint matched"
            in out)
    assert kh.read_text() == f"{ssh_device.key_name} {ssh_device.host_pub_line()}\n"  # plain
    found = _keygen_find(ssh_device.key_name, kh)
    assert found.returncode == 0 and ssh_device.host_pub_line() in found.stdout
    assert main(["info", "--board", ssh_device.url, *_flags(ssh_device, kh), "--json"]) == 0
    # the bare base64 is the same fingerprint; the key is already there
    assert main(["trust", ssh_device.url, "--fingerprint", fp.removeprefix("SHA256:"),
                 *_flags(ssh_device, kh)]) == 0
    assert "already trusted" in capsys.readouterr().out
    assert kh.read_text().count("\n") == 1


def test_fingerprint_mismatch_refused_with_both(ssh_device, tmp_path, capsys):
    kh = tmp_path / "known_hosts"
    _, wrong = _other_key(tmp_path)
    code = main(["trust", ssh_device.url, "--fingerprint", wrong, *_flags(ssh_device, kh)])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR and not kh.exists()
    assert f"does not match --fingerprint {wrong}" in err
    assert f"it offers ssh-ed25519 {ssh_device.fingerprint()}" in err
    assert "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub" in err
    assert "Nothing recorded" in err


def test_md5_and_malformed_fingerprints_refused(ssh_device, tmp_path, capsys):
    kh = tmp_path / "known_hosts"
    md5 = "MD5:" + ":".join(["ab"] * 16)
    for fp, why in ((md5, "is an MD5 fingerprint"), (md5[4:], "is an MD5 fingerprint"),
                    ("SHA256:tooshort", "is not a SHA256 fingerprint")):
        assert main(["trust", ssh_device.url, "--fingerprint", fp,
                     *_flags(ssh_device, kh)]) == EXIT_USAGE
        assert why in capsys.readouterr().err
    assert not kh.exists()


def test_yes_alone_records_whatever_answers(ssh_device, tmp_path, capsys):
    kh = tmp_path / "known_hosts"
    assert main(["trust", ssh_device.url, "--yes", *_flags(ssh_device, kh)]) == 0
    assert f"recorded   {ssh_device.key_name} in {kh}" in capsys.readouterr().out
    assert ssh_device.host_pub_line() in kh.read_text()


# --------------------------------------------------------------------------- @revoked
@pytest.mark.parametrize("host", ["plain", "hashed", "*"])
def test_revoked_key_refused_on_connect_and_trust(ssh_device, tmp_path, capsys, host):
    kh = tmp_path / "known_hosts"
    name = {"plain": ssh_device.key_name, "*": "*",
            "hashed": paramiko.HostKeys.hash_host(ssh_device.key_name)}[host]
    other, _ = _other_key(tmp_path, "ecdsa")
    # a CA line, a revoked line and (revoked wins) a line that trusts the same key
    kh.write_text(f"@cert-authority *.lab {other}\n"
                  f"@revoked {name} {ssh_device.host_pub_line()}\n"
                  f"{ssh_device.key_name} {ssh_device.host_pub_line()}\n")
    before = kh.read_text()
    assert main(["info", "--board", ssh_device.url, *_flags(ssh_device, kh)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"the host key of {ssh_device.key_name} is REVOKED" in err
    assert f"ssh-ed25519 {ssh_device.fingerprint()}, which {kh}:2 marks @revoked" in err
    for extra in (["--yes"], ["--yes", "--replace"], ["--fingerprint",
                                                      ssh_device.fingerprint()]):
        assert main(["trust", ssh_device.url, *extra, *_flags(ssh_device, kh)]) == EXIT_ERROR
        assert f"is revoked (@revoked in {kh}:2); not recorded" in capsys.readouterr().err
    assert kh.read_text() == before


def test_revoked_other_host_and_cert_authority_lines_do_not_get_in_the_way(
        ssh_device, tmp_path, capsys):
    kh = tmp_path / "known_hosts"
    kh.write_text(f"@revoked other.example {ssh_device.host_pub_line()}\n"
                  f"@cert-authority * {ssh_device.host_pub_line()}\n"
                  f"{ssh_device.key_name} {ssh_device.host_pub_line()}\n")
    assert main(["info", "--board", ssh_device.url, *_flags(ssh_device, kh), "--json"]) == 0


# --------------------------------------------------------------------------- hashed entries
def test_hashed_file_gets_a_hashed_entry(ssh_device, tmp_path, capsys):
    kh = tmp_path / "known_hosts"
    other, _ = _other_key(tmp_path)
    kh.write_text(f"{paramiko.HostKeys.hash_host('gateway.lab')} {other}\n")
    assert main(["trust", ssh_device.url, "--fingerprint", ssh_device.fingerprint(),
                 *_flags(ssh_device, kh)]) == 0
    assert "host name hashed" in capsys.readouterr().out
    lines = kh.read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith("|1|")
    assert ssh_device.addr not in kh.read_text()
    found = _keygen_find(ssh_device.key_name, kh)
    assert found.returncode == 0 and ssh_device.host_pub_line() in found.stdout
    assert main(["info", "--board", ssh_device.url, *_flags(ssh_device, kh), "--json"]) == 0


def test_plain_file_gets_a_plain_entry_even_when_config_hashes(ssh_device, tmp_path, capsys,
                                                                _own_home):
    _own_home.write_text("Host *\n    HashKnownHosts yes\n")
    kh = tmp_path / "known_hosts"
    other, _ = _other_key(tmp_path)
    kh.write_text(f"gateway.lab {other}\n")
    assert main(["trust", ssh_device.url, "--yes", *_flags(ssh_device, kh)]) == 0
    assert kh.read_text().splitlines()[1] == f"{ssh_device.key_name} " \
                                             f"{ssh_device.host_pub_line()}"


@pytest.mark.parametrize("where", ["system", "user"])
def test_new_file_follows_hash_known_hosts(ssh_device, tmp_path, capsys, _own_home, where):
    cfg = _own_home if where == "system" else tmp_path / "home" / ".ssh" / "config"
    cfg.parent.mkdir(exist_ok=True)
    cfg.write_text("Host *\n    HashKnownHosts yes\n")
    kh = tmp_path / "known_hosts"
    assert main(["trust", ssh_device.url, "--yes", *_flags(ssh_device, kh)]) == 0
    assert kh.read_text().startswith("|1|")
    assert _keygen_find(ssh_device.key_name, kh).returncode == 0


def test_hashed_entry_off_port_22_is_found_by_openssh(ssh_device, tmp_path):
    """OpenSSH hashes '[host]:port' off port 22; ssh-keygen -F finds it by that name."""
    kh = tmp_path / "known_hosts"
    kh.write_text(f"{paramiko.HostKeys.hash_host('gateway.lab')} "
                  f"{ssh_device.host_pub_line()}\n")
    key = paramiko.PKey.from_path(str(ssh_device.host_key))
    target = SshTarget(alias="pi", hostname="10.0.0.5", port=2222, known_hosts=[str(kh)])
    assert known_hosts.writes_hashed(target)
    known_hosts.record(target, key)
    assert _keygen_find("[10.0.0.5]:2222", kh).returncode == 0
    assert _keygen_find("10.0.0.5", kh).returncode != 0
    known_hosts.check(target, key)  # and we find it back


# --------------------------------------------------------------------------- several key types
class _TwoKeyDevice(SshDevice):
    """The test sshd with an ECDSA host key besides its ed25519 one."""

    def start(self) -> SshDevice:
        self.ecdsa = self.dir / "host_ecdsa"
        subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(self.ecdsa)],
                       check=True)
        return super().start()

    def _config(self) -> Path:
        cfg = super()._config()
        cfg.write_text(cfg.read_text() + f"HostKey {self.ecdsa}\n")
        return cfg

    def ecdsa_fingerprint(self) -> str:
        return subprocess.run(["ssh-keygen", "-lf", f"{self.ecdsa}.pub"], capture_output=True,
                              text=True).stdout.split()[1]


@pytest.fixture(scope="module")
def two_key_device(tmp_path_factory):
    dev = _TwoKeyDevice(tmp_path_factory.mktemp("sshd2"))
    try:
        dev.start()
        yield dev
    finally:
        dev.stop()


def test_fingerprint_of_another_key_type(two_key_device, tmp_path, capsys):
    dev = two_key_device
    kh = tmp_path / "known_hosts"
    ecdsa = dev.ecdsa_fingerprint()
    assert main(["trust", dev.url, "--fingerprint", ecdsa, *_flags(dev, kh)]) == 0
    out = capsys.readouterr().out
    assert f"matched    ecdsa-sha2-nistp256 {ecdsa}: --fingerprint is the device's " \
           "ecdsa-sha2-nistp256 key, not the ssh-ed25519 key it offers first" in out
    assert kh.read_text().split()[1] == "ecdsa-sha2-nistp256"
    # the next connection asks for the recorded type and passes the check
    assert main(["info", "--board", dev.url, *_flags(dev, kh), "--json"]) == 0
    # a fingerprint of neither: both of the device's keys are named
    _, wrong = _other_key(tmp_path)
    kh2 = tmp_path / "kh2"
    assert main(["trust", dev.url, "--fingerprint", wrong, *_flags(dev, kh2)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"(and holds ecdsa-sha2-nistp256 {ecdsa})" in err and not kh2.exists()
