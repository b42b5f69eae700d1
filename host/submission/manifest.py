"""The tree's sha256 manifest: ``sha256sum``-compatible lines ("HEX  path", paths relative to
the tree's root, sorted), one for every file but the manifest itself.

It lives at ``{division}/{org}/src/MANIFEST.sha256``: inside ``src/``, which MLCommons'
checkers require to exist and never read file by file, and with a name that passes the old
checker's hygiene rules (no dot, no space, not at the root, where only *.md and *.pdf may be).
``cd TREE && sha256sum -c closed/ORG/src/MANIFEST.sha256`` verifies it without edgeperf.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgeperf.submission.truncate import file_sha256

MANIFEST_NAME = "MANIFEST.sha256"


def manifest_path(root: str | os.PathLike[str]) -> Path:
    """The manifest of the tree at ``root`` (its one {division}/{org}/src/)."""
    found = sorted(Path(root).glob(f"*/*/src/{MANIFEST_NAME}"))
    if found:
        return found[0]
    srcs = sorted(p for p in Path(root).glob("*/*/src") if p.is_dir())
    if not srcs:
        raise FileNotFoundError(f"{root}: no {{division}}/{{org}}/src/ directory: not a tree "
                                f"'edgeperf submission init' made")
    return srcs[0] / MANIFEST_NAME


def _files(root: Path, skip: Path) -> list[str]:
    out = []
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in files:
            p = Path(dirpath) / name
            if p != skip:
                out.append(p.relative_to(root).as_posix())
    return sorted(out)


def write_manifest(root: str | os.PathLike[str]) -> Path:
    root = Path(root)
    path = manifest_path(root)
    lines = [f"{file_sha256(root / rel)}  {rel}\n" for rel in _files(root, path)]
    tmp = path.with_name(path.name + "-tmp")
    tmp.write_text("".join(lines))
    os.replace(tmp, path)
    return path


def verify_manifest(root: str | os.PathLike[str]) -> list[str]:
    """Problems, one a line: a file changed, missing or not in the manifest."""
    root = Path(root)
    try:
        path = manifest_path(root)
        text = path.read_text()
    except (FileNotFoundError, OSError) as e:
        return [f"no manifest: {e}"]
    rel_manifest = path.relative_to(root).as_posix()
    listed: dict[str, str] = {}
    problems = []
    for n, line in enumerate(text.splitlines(), 1):
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64:
            problems.append(f"{rel_manifest}:{n}: not a 'HEX  path' line: {line!r}")
            continue
        listed[rel] = digest
    for rel, digest in listed.items():
        p = root / rel
        if not p.is_file():
            problems.append(f"{rel}: in the manifest but missing")
        elif file_sha256(p) != digest:
            problems.append(f"{rel}: changed since the manifest was written (sha256 differs)")
    problems += [f"{rel}: not in the manifest" for rel in _files(root, path) if rel not in listed]
    return problems


__all__ = ["MANIFEST_NAME", "manifest_path", "verify_manifest", "write_manifest"]
