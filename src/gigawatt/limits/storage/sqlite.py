"""`sqlite:///path`: state in one SQLite file, shared by every process on this machine.

Each decision is one `BEGIN IMMEDIATE` transaction that reads one account's row, runs the engine
and writes the row back. `BEGIN IMMEDIATE` takes the write lock before the read, so two processes
can never both read the same old state (no lost update), and WAL lets readers go on meanwhile.
`synchronous = NORMAL` in WAL mode survives a killed process (a committed transaction is in the
WAL); only a power cut can lose the last few commits.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from gigawatt.errors import StateError, StateTimeout
from gigawatt.limits.storage.base import LocalStore
from gigawatt.limits.types import AccountState, BucketCharge, ReservationRecord, WindowCharge

_SCHEMA = "CREATE TABLE IF NOT EXISTS account_state (account TEXT PRIMARY KEY, state TEXT NOT NULL)"


class SQLiteStore(LocalStore):
    def __init__(self, path: str, timeout_s: float = 2.0) -> None:
        self.path = path
        self._timeout_s = timeout_s
        self._local = threading.local()
        directory = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(directory, exist_ok=True)
            self._connection().execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open SQLite state at {path}: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        # sqlite3 connections must not cross threads; each thread keeps its own.
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self._timeout_s, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(self._timeout_s * 1000)}")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self, account: str) -> Iterator[AccountState]:
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _wrap(exc, self.path) from exc
        try:
            row = conn.execute(
                "SELECT state FROM account_state WHERE account = ?", (account,)
            ).fetchone()
            state = decode_state(row[0]) if row else AccountState()
            yield state
            conn.execute(
                "INSERT INTO account_state (account, state) VALUES (?, ?) "
                "ON CONFLICT(account) DO UPDATE SET state = excluded.state",
                (account, encode_state(state)),
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            raise _wrap(exc, self.path) from exc
        except BaseException:
            _rollback(conn)
            raise

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _rollback(conn: sqlite3.Connection) -> None:
    # A failed ROLLBACK means the transaction is already gone; nothing was written.
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")


def _wrap(exc: sqlite3.Error, path: str) -> StateError:
    if "locked" in str(exc) or "busy" in str(exc):
        return StateTimeout(f"SQLite state at {path} stayed locked past the timeout: {exc}")
    return StateError(f"SQLite state at {path} failed: {exc}")


def encode_state(state: AccountState) -> str:
    return json.dumps(
        {
            "t": state.tats,
            "s": state.starts,
            "u": state.used,
            "r": state.slots,
            "v": {
                rid: [rec.deadline, [list(c) for c in rec.buckets], [list(c) for c in rec.windows]]
                for rid, rec in state.reservations.items()
            },
        },
        separators=(",", ":"),
    )


def decode_state(text: str) -> AccountState:
    raw = json.loads(text)
    return AccountState(
        tats=raw["t"],
        starts=raw["s"],
        used=raw["u"],
        slots={key: {int(i): v for i, v in slots.items()} for key, slots in raw["r"].items()},
        reservations={
            rid: ReservationRecord(
                deadline,
                tuple(BucketCharge(*c) for c in buckets),
                tuple(WindowCharge(*c) for c in windows),
            )
            for rid, (deadline, buckets, windows) in raw["v"].items()
        },
    )
