"""Tree hygiene, as MLCommons' old checker enforced it (survey §9; the v6.1 modular checker
has none): no symlinks, no empty folders, no names starting with '.', no spaces, no
__pycache__, no file over 50 MB, only *.md/*.pdf at the root and nothing loose in a division.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgeperf.submission.check_report import Report

FILE_SIZE_LIMIT = 50 * 1024 * 1024
ROOT_SUFFIXES = (".md", ".pdf")


def check_hygiene(rep: Report, root: Path, divisions: tuple[str, ...]) -> None:
    for entry in sorted(root.iterdir()):
        if entry.is_symlink():
            continue  # reported in the walk below
        if entry.is_file() and entry.suffix.lower() not in ROOT_SUFFIXES:
            rep.error(entry, "hygiene-root", "only *.md and *.pdf files may sit at the tree's "
                                             "root; move or remove it")
        elif entry.is_dir() and entry.name not in divisions and not entry.name.startswith("."):
            rep.error(entry, "hygiene-root", f"not a division ({', '.join(divisions)}); "
                                             f"MLCommons ignores it: move or remove it")
    for div in divisions:
        d = root / div
        if d.is_dir() and not d.is_symlink():
            for entry in sorted(d.iterdir()):
                if entry.is_file():
                    rep.error(entry, "hygiene-division", "a file loose in the division "
                                                         "folder; it belongs under a "
                                                         "submitter")
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for name in dirnames + filenames:
            p = here / name
            _name_rules(rep, p, name)
            if p.is_symlink():
                rep.error(p, "hygiene-symlink", f"a symbolic link (to {os.readlink(p)}); "
                                                f"copy the file in instead")
            elif name in filenames and p.stat().st_size > FILE_SIZE_LIMIT:
                rep.error(p, "hygiene-size", f"{p.stat().st_size / 2**20:.1f} MB, over "
                                             f"MLCommons' 50 MB limit; leave it out or split it")
        if not dirnames and not filenames and here != root:
            rep.error(here, "hygiene-empty-dir", "an empty folder; remove it")
        dirnames[:] = [n for n in dirnames if not (here / n).is_symlink()]


def _name_rules(rep: Report, p: Path, name: str) -> None:
    if name.startswith("."):
        rep.error(p, "hygiene-hidden", "a name starting with '.' (git unfriendly); remove or "
                                       "rename it")
    if " " in name:
        rep.error(p, "hygiene-space", "a name with a space; rename it without spaces")
    if name == "__pycache__":
        rep.error(p, "hygiene-pycache", "a __pycache__ folder; remove it")
