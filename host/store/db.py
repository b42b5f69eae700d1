"""Which store, and a connection to it that speaks one SQL for both databases.

``open_store(url)``: ``url`` (``--store``), else ``$EDGEPERF_STORE``, else the host's own
SQLite file, ``$XDG_DATA_HOME/edgeperf/results.sqlite`` (``~/.local/share/...``). A path
or ``sqlite:///PATH`` is SQLite, opened in WAL mode with a busy timeout so that the several
processes of one host (a campaign's boards) can record at once; ``postgresql://...`` is a
lab's database shared by many hosts (psycopg 3, the ``store-pg`` extra). ``EDGEPERF_STORE
=off`` turns recording off. The schema is made on first open and its version checked on
every open (schema.py).
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgeperf.errors import EdgeperfError
from edgeperf.store import schema

ENV = "EDGEPERF_STORE"
OFF = ("off", "none")
BUSY_TIMEOUT_S = 30.0  # a writer waits this long for another process's transaction
CONNECT_TIMEOUT_S = 10  # a PostgreSQL server that does not answer
STATEMENT_TIMEOUT_S = 60  # nor a statement (a lock held by a stuck host)
_PG_LOCK = 0x65646765  # the advisory lock that serialises schema creation across hosts
FIX = (f"set {ENV} (or --store) to a file you can write or a postgresql:// URL, or "
        f"{ENV}=off to record nothing")


class StoreError(EdgeperfError):
    """The store cannot be opened, read or written; the message names it and the fix."""


def default_path() -> Path:
    """The host's own store: in the user's data directory (XDG)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "edgeperf" / "results.sqlite"


def store_url(url: str | None = None) -> str | None:
    """The store that ``url`` (else $EDGEPERF_STORE, else the default) names; None: off."""
    if url is None:
        url = os.environ.get(ENV, "")
    url = url.strip()
    if url.lower() in OFF:
        return None
    return url or str(default_path())


def is_postgresql(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def shown(url: str) -> str:
    """The store as messages name it: a URL without its password."""
    return re.sub(r"^(postgres(?:ql)?://[^:/@]*):[^@]*@", r"\1:***@", url)


class Store:
    """One connection. SQL is written with ``?`` placeholders; rows come back as dicts."""

    def __init__(self, conn: Any, dialect: str, where: str) -> None:
        self.conn, self.dialect, self.where = conn, dialect, where

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self._sql(sql), tuple(params))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.execute(sql, params).fetchall()]

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """One write transaction; SQLite takes its write lock at the start (BEGIN IMMEDIATE),
        so two writers wait for each other instead of failing halfway."""
        if self.dialect == "postgresql":
            with self.conn.transaction():
                yield self
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(url: str | None = None) -> Store:
    """The store ``url`` names (see the module's doc), its schema made or checked.
    StoreError when it is off, cannot be opened or is newer than this edgeperf."""
    where = store_url(url)
    if where is None:
        raise StoreError(f"the results store is off ({ENV}=off); {FIX}")
    try:
        st = _connect_pg(where) if is_postgresql(where) else _connect_sqlite(where)
    except StoreError:
        raise
    except Exception as exc:  # sqlite3.Error, psycopg.Error, OSError: all say why
        raise StoreError(f"results store {shown(where)} cannot be opened ({reason(exc)}); "
                         f"{FIX}") from None
    try:
        _ensure_schema(st)
    except StoreError:
        st.close()
        raise
    except Exception as exc:
        st.close()
        raise StoreError(f"results store {shown(where)} cannot be written ({reason(exc)}); "
                         f"{FIX}") from None
    return st


def reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "") or type(exc).__name__


def _connect_sqlite(where: str) -> Store:
    path = Path(where[len("sqlite://"):] if where.startswith("sqlite://") else where)
    path = path.expanduser()
    if path.is_dir():
        raise StoreError(f"results store {path} is a directory; set {ENV} (or --store) to "
                         f"a file, e.g. {path / 'results.sqlite'}, or {ENV}=off to record "
                         "nothing")
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return Store(conn, "sqlite", str(path.resolve()))


def _connect_pg(where: str) -> Store:
    try:
        import psycopg
        from psycopg.rows import dict_row
    except ImportError:
        raise StoreError(f"results store {shown(where)}: PostgreSQL needs psycopg 3: pip "
                         "install 'edgeperf[store-pg]'") from None
    params = psycopg.conninfo.conninfo_to_dict(where)
    params.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    params.setdefault("application_name", "edgeperf")
    params.setdefault("options", f"-c statement_timeout={STATEMENT_TIMEOUT_S * 1000}")
    conn = psycopg.connect(**params, autocommit=True, row_factory=dict_row)
    return Store(conn, "postgresql", shown(where))


def _ensure_schema(st: Store) -> None:
    """Make the tables (once), or check and migrate them; hosts opening a new PostgreSQL
    store at once take turns (an advisory lock), SQLite processes take its write lock."""
    if _version(st) == schema.SCHEMA_VERSION:
        return  # the common case: no lock taken to find it
    with st.transaction():
        if st.dialect == "postgresql":
            st.execute(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
        for stmt in schema.statements(st.dialect):
            st.execute(stmt)
        rows = st.query("SELECT version FROM schema_version")
        if not rows:
            st.execute("INSERT INTO schema_version (version) VALUES (?)",
                       (schema.SCHEMA_VERSION,))
            return
        have = int(rows[0]["version"])
        if have > schema.SCHEMA_VERSION:
            raise StoreError(f"results store {st.where} has schema version {have}, newer than "
                             f"this edgeperf's {schema.SCHEMA_VERSION}: upgrade edgeperf "
                             "(pip install -U edgeperf) on this host")
        for v in range(have, schema.SCHEMA_VERSION):
            for stmt in schema.MIGRATIONS[v]:
                st.execute(stmt)
        if have != schema.SCHEMA_VERSION:
            st.execute("UPDATE schema_version SET version = ?", (schema.SCHEMA_VERSION,))


def _version(st: Store) -> int | None:
    """The tables' version, or None for a new store (or one that cannot be read: the
    transaction that follows says why)."""
    try:
        rows = st.query("SELECT version FROM schema_version")
    except Exception:  # no such table (sqlite3 and psycopg each say it their way)
        return None
    return int(rows[0]["version"]) if rows else None
