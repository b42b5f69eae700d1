"""The accuracy log's truncation, as MLCommons' tools/submission/truncate_accuracy_log.py does
it to one ``accuracy/`` directory (survey §5), byte for byte:

* ``accuracy.txt`` already has a ``hash=`` line and the json is under the size limit: nothing
  is done (the file was truncated before);
* otherwise ``"\\nhash=<sha256 of the json>\\n"`` is appended to accuracy.txt, and a json of
  ``truncate_keep_bytes`` or more becomes its first that many characters, the marker, and its
  last that many (4096 + 7 + 4096 = 8199 bytes for v6.1; not valid JSON, as MLCommons' is not).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from edgeperf.submission.rules import Rules

HASH_LINE = re.compile(r"^hash=([\w\d]+)$")  # accuracy_check.py:154, truncate_accuracy_log.py


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def recorded_hash(accuracy_txt: str | os.PathLike[str]) -> str | None:
    """The first ``hash=`` line's value in accuracy.txt, or None."""
    with open(accuracy_txt, encoding="utf-8") as f:
        for line in f:
            m = HASH_LINE.match(line)
            if m:
                return m.group(1)
    return None


def truncate_accuracy_log(json_path: str | os.PathLike[str],
                          accuracy_txt_path: str | os.PathLike[str], rules: Rules) -> str:
    """Hash and truncate one accuracy log in place; returns the hash accuracy.txt records."""
    json_path, txt = Path(json_path), Path(accuracy_txt_path)
    known = recorded_hash(txt)
    size = json_path.stat().st_size
    if known and size < rules.accuracy_log_max_bytes:
        return known
    digest = file_sha256(json_path)
    with open(txt, "a", encoding="utf-8") as f:
        f.write(f"\nhash={digest}\n")
    keep = rules.truncate_keep_bytes
    if size >= keep:
        # text mode, as the official tool reads it (LoadGen's logs are ASCII)
        with open(json_path, encoding="utf-8") as src:
            start = src.read(keep)
            src.seek(size - keep, 0)
            end = src.read(keep)
        with open(json_path, "w", encoding="utf-8") as dst:
            dst.write(start + rules.truncate_marker + end)
    return digest


__all__ = ["HASH_LINE", "file_sha256", "recorded_hash", "truncate_accuracy_log"]
