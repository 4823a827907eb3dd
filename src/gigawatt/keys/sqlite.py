"""`sqlite:///path`: keys in the table `api_keys` of the file that holds the limiter's state.

One row per key; the secret's SHA-256 digest is a UNIQUE column, so authentication is one
indexed SELECT. Every write runs in `BEGIN IMMEDIATE` (the write lock before any read, so two
processes never both act on the same old rows) with WAL and a busy timeout, as the limiter does.
Options in the URL's query string, if any, tune the limiter's connections and are ignored here:
key writes always commit with `synchronous=FULL`.
"""

from __future__ import annotations

import builtins
import contextlib
import hmac
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from gigawatt import sqlite_file
from gigawatt.errors import StateError, StateTimeout
from gigawatt.keys.base import (
    ID_ATTEMPTS,
    KeyRecord,
    check_name,
    digest_of,
    looks_like_secret,
    new_key_id,
    new_secret,
    sort_records,
)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS api_keys ("
    " key_id TEXT PRIMARY KEY,"
    " digest TEXT NOT NULL UNIQUE,"
    " account TEXT NOT NULL,"
    " plan TEXT NOT NULL,"
    " created_at REAL NOT NULL,"
    " revoked_at REAL,"
    " label TEXT NOT NULL DEFAULT '')",
    "CREATE INDEX IF NOT EXISTS api_keys_account ON api_keys (account)",
)
_COLUMNS = "key_id, account, plan, created_at, revoked_at, label"


class SQLiteKeyStore:
    def __init__(self, path: str, timeout_s: float = 2.0) -> None:
        self.path = path
        self._timeout_s = timeout_s
        self._local = threading.local()
        # Every thread's connection, so that close() can close them all.
        self._connections: builtins.list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with self._write() as conn:
                for statement in _SCHEMA:
                    conn.execute(statement)
        except OSError as exc:
            raise StateError(f"cannot open SQLite key store at {path}: {exc}") from exc

    def create(self, account: str, plan: str, now: float, label: str = "") -> tuple[KeyRecord, str]:
        check_name("account", account)
        check_name("plan", plan)
        secret = new_secret()
        digest = digest_of(secret)
        with self._write() as conn:
            for _ in range(ID_ATTEMPTS):
                key_id = new_key_id()
                taken = conn.execute("SELECT 1 FROM api_keys WHERE key_id = ?", (key_id,))
                if taken.fetchone() is None:
                    break
            else:
                raise StateError("no free key id after several attempts")
            record = KeyRecord(key_id, account, plan, float(now), None, label)
            conn.execute(
                "INSERT INTO api_keys (key_id, digest, account, plan, created_at, revoked_at, "
                "label) VALUES (?, ?, ?, ?, ?, NULL, ?)",
                (key_id, digest, account, plan, record.created_at, label),
            )
        return record, secret

    def authenticate(self, secret: str) -> KeyRecord | None:
        if not looks_like_secret(secret):
            return None
        digest = digest_of(secret)
        row = self._read_one(f"SELECT digest, {_COLUMNS} FROM api_keys WHERE digest = ?", digest)
        if row is None or not hmac.compare_digest(row[0], digest):
            return None
        record = KeyRecord(*row[1:])
        return record if record.active else None

    def list(self, account: str | None = None) -> builtins.list[KeyRecord]:
        query = f"SELECT {_COLUMNS} FROM api_keys"
        params: tuple[str, ...] = ()
        if account is not None:
            check_name("account", account)
            query += " WHERE account = ?"
            params = (account,)
        try:
            rows = self._connection().execute(query, params).fetchall()
        except sqlite3.Error as exc:
            raise _wrap(exc, self.path) from exc
        return sort_records([KeyRecord(*row) for row in rows])

    def revoke(self, key_id: str, now: float) -> bool:
        with self._write() as conn:
            row = conn.execute(
                "SELECT revoked_at FROM api_keys WHERE key_id = ?", (key_id,)
            ).fetchone()
            if row is None:
                raise ValueError(f"no key {key_id!r}")
            if row[0] is not None:
                return False
            conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", (float(now), key_id)
            )
            return True

    def set_plan(self, account: str, plan: str) -> int:
        check_name("account", account)
        check_name("plan", plan)
        with self._write() as conn:
            cursor = conn.execute("UPDATE api_keys SET plan = ? WHERE account = ?", (plan, account))
            return cursor.rowcount

    def close(self) -> None:
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        # sqlite3 connections must not cross threads; each thread keeps its own.
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite_file.connect(self.path, self._timeout_s)
            # FULL, unlike the limiter's NORMAL: a revocation lost to a power cut would bring a
            # key back to life, and key writes are too rare for the cost to matter.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(self._timeout_s * 1000)}")
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def _read_one(self, query: str, *params: str) -> tuple[str | float | None, ...] | None:
        try:
            row: tuple[str | float | None, ...] | None = (
                self._connection().execute(query, params).fetchone()
            )
        except sqlite3.Error as exc:
            raise _wrap(exc, self.path) from exc
        return row

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _wrap(exc, self.path) from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            raise _wrap(exc, self.path) from exc
        except BaseException:
            _rollback(conn)
            raise


def _rollback(conn: sqlite3.Connection) -> None:
    # A failed ROLLBACK means the transaction is already gone; nothing was written.
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")


def _wrap(exc: sqlite3.Error, path: str) -> StateError:
    if "locked" in str(exc) or "busy" in str(exc):
        return StateTimeout(f"SQLite key store at {path} stayed locked past the timeout: {exc}")
    return StateError(f"SQLite key store at {path} failed: {exc}")
