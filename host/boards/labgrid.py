"""A labgrid place as a board: ``labgrid://PLACE?via=ssh|serial&coordinator=HOST:PORT``
(``&key_file=PATH``: the serial agent's shared key, links/serial_key.py).

Data only, as boards/tiny.py is for MCU boards; links/labgrid.py acquires the place and opens
its SSH or serial resource.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

VIAS = ("ssh", "serial")
# identity, known_hosts, python: the SSH link's, as --identity/--known-hosts/--python give them
# key_file: the serial agent's shared key, for via=serial
URL_KEYS = ("via", "coordinator", "identity", "known_hosts", "python", "key_file")


@dataclass
class LabgridPlace:
    place: str
    coordinator: str | None = None  # HOST:PORT; None: $LG_COORDINATOR, then labgrid's default
    via: str | None = None  # None: ssh when the place has a NetworkService, else serial
    key_file: str | None = None  # the serial agent's key (its --key-file), when it has one


def parse_labgrid_url(url: str) -> tuple[LabgridPlace, dict[str, str]]:
    """(the place, the SSH keys given: identity, known_hosts, python); ValueError naming the
    fix."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - set(URL_KEYS))
    if parts.scheme != "labgrid" or not parts.netloc or parts.path not in ("", "/") \
            or parts.fragment or unknown:
        raise ValueError(f"board URL {url!r}: write labgrid://PLACE (the name of a labgrid "
                         f"place), optionally ?{'=...&'.join(URL_KEYS)}=..."
                         + (f"; unknown parameter {unknown[0]!r}" if unknown else ""))
    via = query.get("via") or None
    if via not in (None, *VIAS):
        raise ValueError(f"board URL {url!r}: via is {via!r}; allowed: {', '.join(VIAS)}")
    coordinator = query.get("coordinator") or None
    ssh = {k: query[k] for k in ("identity", "known_hosts", "python") if query.get(k)}
    return LabgridPlace(unquote(parts.netloc), coordinator, via,
                        query.get("key_file") or None), ssh
