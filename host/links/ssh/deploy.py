"""Zero-install agent on an SSH board: ship the zipapp by hash, check the device, start it.

The host runs only fixed commands on the device: an interpreter probe, a SHA-256 check of a
file (the device's own hashlib; it also fsyncs the file), an fsync of the agent's folder,
``<sha>.pyz check`` and ``<sha>.pyz serve --stdio``. The zipapp is copied over SFTP to a
temporary name, verified and fsynced on the device, then renamed to
``<cache>/agent/<sha>.pyz`` (and the folder fsynced): a board that loses power has the whole
agent under that name or none. A copy found there is hashed on the device before it is
trusted (its size proves nothing); a corrupt one is uploaded again, with one line saying so.
"""

from __future__ import annotations

import io
import json
import posixpath
import secrets
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import paramiko

from edgeperf.links.base import LinkError
from edgeperf.links.bundle import agent_zipapp
from edgeperf.links.ssh.config import target_for
from edgeperf.links.ssh.link import SshConnection, SshLink

if TYPE_CHECKING:
    from edgeperf.boards.profile import BoardProfile

# Runs on any Python that can print JSON (2.7 included), so an old one is named, not crashed.
PROBE = ("import json, os, sys; print(json.dumps({'version': list(sys.version_info[:3]), "
         "'executable': sys.executable, 'home': os.path.expanduser('~'), "
         "'xdg_cache': os.environ.get('XDG_CACHE_HOME', '')}))")
# The SHA-256 of a file on the device ("-" when there is none), after an fsync of it: the
# device's own kernel has the bytes on disk before the file is renamed into place (paramiko
# has no public fsync, and a server may lack OpenSSH's fsync@openssh.com; this works on all).
SHA256_OF = ("import hashlib, os, sys\n"
             "try:\n f = open(sys.argv[1], 'rb')\nexcept IOError:\n print('-')\n"
             "else:\n h = hashlib.sha256(f.read()).hexdigest(); os.fsync(f.fileno()); print(h)")
# fsync a folder, so that a rename in it survives a power loss
SYNC_DIR = "import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.close(fd)"
DEFAULT_PYTHON = "python3"


class DeviceNotReady(LinkError):
    """The device lacks what the agent needs; the message says what to install."""


@dataclass
class Deployment:
    python: str
    agent_path: str
    cache_dir: str
    agent_sha256: str
    uploaded_bytes: int
    seconds: float
    check: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def shell_path(path: str) -> str:
    """A path quoted for the device's POSIX shell, keeping a leading ``~/`` expandable."""
    if path.startswith("~/"):
        return "~/" + shlex.quote(path[2:])
    return shlex.quote(path)


# ------------------------------------------------------------------------- advice
def install_advice(check: dict[str, Any], python: str, needs_runtime: bool) -> list[str]:
    """What the device lacks, each with the command that installs it there (empty: ready).

    numpy is always needed; a TFLite runtime only for .tflite models. The packages named are
    the ones that exist for that device: tflite-runtime 2.14 with numpy<2 on a Raspberry Pi,
    ai-edge-litert (numpy 2) on other Linux boards, Termux's own numpy package on a phone.
    """
    runtimes = check.get("runtimes") or {}
    need_numpy = not check.get("numpy")
    need_runtime = needs_runtime and not any(runtimes.values())
    if not (need_numpy or need_runtime):
        return []
    osr = check.get("os_release") or {}
    where = (f"{python} {check.get('python')} on {osr.get('PRETTY_NAME') or check.get('system')}"
             f", {check.get('machine')}")
    what = " and ".join((["numpy"] if need_numpy else []) +
                        (["a TFLite runtime"] if need_runtime else []))
    if check.get("termux"):
        steps = (["pkg install python-numpy"] if need_numpy else []) + (
            [f"{python} -m pip install tflite-runtime (Google publishes no Android wheels: if "
             "pip finds none, benchmark synthetic:busy:US models on this board)"]
            if need_runtime else [])
        return [f"{what} missing ({where}); install on the device: " + "; then ".join(steps)]
    pi = "Raspberry Pi" in (check.get("board_model") or "") or osr.get("ID") == "raspbian"
    rt_error = (check.get("runtime_errors") or {}).get("tflite_runtime", "")
    if pi:
        packages = "tflite-runtime 'numpy<2'"
    elif not need_numpy and "numpy" in rt_error and "No module named 'tflite" not in rt_error:
        packages = "'numpy<2'"  # tflite_runtime is there, built for numpy 1
    else:
        packages = "numpy ai-edge-litert"
    command = f"{python} -m pip install {packages}"
    text = f"{what} missing ({where}); install on the device: {command}"
    if check.get("externally_managed") and not check.get("in_venv"):
        text += (" (the OS manages this Python, so use a venv: python3 -m venv ~/edgeperf-venv "
                 f"&& ~/edgeperf-venv/bin/python -m pip install {packages}, then set "
                 "link.python = \"~/edgeperf-venv/bin/python\" in the board profile)")
    return [text]


# ------------------------------------------------------------------------- steps
def _probe(conn: SshConnection, python: str, board: str) -> dict[str, Any]:
    r = conn.run(f"{shell_path(python)} -c {shlex.quote(PROBE)}")
    if r.exit_code == 127:
        raise DeviceNotReady(
            f"{board}: there is no {python!r} on the device ({r.err_text(2)}): install Python "
            "3.9+ there (Raspberry Pi OS/Debian: sudo apt install python3; Termux: pkg install "
            "python) or set link.python in the board profile")
    try:
        info = json.loads(r.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
        version = tuple(int(x) for x in info["version"])
    except (ValueError, IndexError, KeyError, TypeError):
        raise DeviceNotReady(f"{board}: {python} on the device did not answer the interpreter "
                             f"probe (exit code {r.exit_code}):\n  {r.err_text()}") from None
    if version < (3, 9):
        raise DeviceNotReady(
            f"{board}: the device's {python} is Python {'.'.join(map(str, version))}; the agent "
            "needs 3.9 or newer: install a newer Python there (Raspberry Pi OS bookworm and "
            "Termux ship 3.11+) and point link.python at it")
    return info


def _remote_cache(profile: BoardProfile, probe: dict[str, Any]) -> str:
    home = probe.get("home") or "."
    cache = profile.cache_dir
    if cache:  # "~/x" and relative paths are under the login's home, as ssh has them
        return posixpath.join(home, cache[2:] if cache.startswith("~/") else cache)
    return posixpath.join(probe.get("xdg_cache") or posixpath.join(home, ".cache"),
                          "edgeperf-agent")


def _makedirs(sftp: paramiko.SFTPClient, path: str) -> None:
    parts, cur = [p for p in path.split("/") if p], "/" if path.startswith("/") else ""
    for part in parts:
        cur = posixpath.join(cur, part) if cur else part
        try:
            sftp.stat(cur)
        except OSError:
            sftp.mkdir(cur, 0o700)


def _remote_sha(conn: SshConnection, python: str, path: str) -> tuple[str, str]:
    """(SHA-256 of ``path`` on the device, "-" when it is missing; the error, if any)."""
    r = conn.run(f"{shell_path(python)} -c {shlex.quote(SHA256_OF)} {shlex.quote(path)}")
    got = r.stdout.decode("ascii", "replace").strip()
    return (got, "") if r.exit_code == 0 and got else ("", r.err_text())


def _say(report: Any, text: str) -> None:
    if report:
        report("task", {"message": text})
    else:
        print(f"edgeperf: {text}", file=sys.stderr, flush=True)


def _upload(conn: SshConnection, python: str, path: str, data: bytes, sha: str,
            report: Any, board: str) -> int:
    """Ship the zipapp unless ``path`` holds it (checked by its SHA-256 on the device, not
    trusted by its size); returns the bytes sent."""
    have, _ = _remote_sha(conn, python, path)
    if have == sha:
        return 0
    if have and have != "-":
        _say(report, f"{board}: the agent zipapp {path} (sha256 {sha[:12]}…) on the device was "
                     f"corrupt (hash {have[:12]}…): uploaded again")
    sftp = conn.sftp()
    try:
        try:
            _makedirs(sftp, posixpath.dirname(path))
        except OSError as exc:
            raise LinkError(f"{board}: cannot create {posixpath.dirname(path)} on the device "
                            f"({exc}); set link.cache_dir to a writable directory") from None
        tmp = f"{path}.part-{secrets.token_hex(4)}"

        def progress(done: int, total: int) -> None:
            if report:
                report("push", {"what": "agent", "done": done, "total": total})

        try:
            sftp.putfo(io.BytesIO(data), tmp, file_size=len(data), callback=progress)
            got, err = _remote_sha(conn, python, tmp)  # verified and fsynced on the device
            if got != sha:
                raise LinkError(f"{board}: the agent uploaded to the device does not verify "
                                f"(SHA-256 {got or err!r}, expected {sha}); the "
                                "transfer was corrupted: run again")
            sftp.chmod(tmp, 0o644)
            try:
                sftp.posix_rename(tmp, path)  # atomic, replaces a damaged copy
            except OSError:  # a server without OpenSSH's extension
                try:
                    sftp.remove(path)
                except OSError:
                    pass
                sftp.rename(tmp, path)
        except BaseException:
            try:
                sftp.remove(tmp)
            except OSError:
                pass
            raise
        d = posixpath.dirname(path)
        conn.run(f"{shell_path(python)} -c {shlex.quote(SYNC_DIR)} {shlex.quote(d)}")
        return len(data)
    finally:
        sftp.close()


def prepare_agent(conn: SshConnection, profile: BoardProfile, report: Any = None,
                  needs_runtime: bool = False) -> Deployment:
    """Probe, ship (if needed), check: the device is ready for the agent, or DeviceNotReady."""
    t0 = time.monotonic()
    python = profile.python or DEFAULT_PYTHON
    probe = _probe(conn, python, profile.name)
    cache = _remote_cache(profile, probe)
    data, sha = agent_zipapp()
    path = posixpath.join(cache, "agent", f"{sha}.pyz")
    sent = _upload(conn, python, path, data, sha, report, profile.name)
    r = conn.run(f"{shell_path(python)} {shlex.quote(path)} check")
    try:
        check = json.loads(r.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise DeviceNotReady(f"{profile.name}: the agent's device check failed on the device "
                             f"(exit code {r.exit_code}):\n  {r.err_text()}") from None
    problems = install_advice(check, python, needs_runtime)
    if problems:
        raise DeviceNotReady(f"{profile.name}: the device is not ready for the agent: "
                             + "; ".join(problems))
    return Deployment(python=python, agent_path=path, cache_dir=cache, agent_sha256=sha,
                      uploaded_bytes=sent, seconds=round(time.monotonic() - t0, 3), check=check)


def agent_command(dep: Deployment) -> str:
    return (f"{shell_path(dep.python)} -u {shlex.quote(dep.agent_path)} serve --stdio "
            f"--cache-dir {shlex.quote(dep.cache_dir)}")


def open_agent_link(profile: BoardProfile, report: Any = None,
                    needs_runtime: bool = False) -> SshLink:
    """Connect to an SSH board, make sure its agent is there and can run, and start it."""
    try:
        target = target_for(profile)
    except ValueError as exc:
        raise LinkError(f"{profile.name}: {exc}") from None
    conn = SshConnection(target)
    try:
        dep = prepare_agent(conn, profile, report, needs_runtime)
        link = SshLink(conn, agent_command(dep))
    except BaseException:
        conn.close()
        raise
    link.deploy = dep
    return link
