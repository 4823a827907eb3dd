"""The SQLite store copies its write-ahead log into the database from a thread of its own."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from gigawatt.limits import Limiter, Usage
from gigawatt.limits.storage import sqlite as sqlite_store
from gigawatt.limits.storage.sqlite import SQLiteStore
from gigawatt.policy.model import Rate

from .policies import make_policy

T0 = 1_796_000_000.0


def rows_in_the_database_file(path: Path) -> int:
    # immutable=1 reads the database file alone, ignoring the write-ahead log.
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM account_state").fetchone()[0])
    except sqlite3.OperationalError:  # not even the table has reached the file yet
        return 0
    finally:
        conn.close()


def test_the_log_reaches_the_database_file_without_a_commit_doing_it(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(str(path))
    limiter = Limiter(make_policy(rate=Rate(rpm=100), windows=()), store)
    try:
        for i in range(50):
            limiter.admit(f"account-{i}", "pro", "small", Usage(1, 1), T0)
        # Commits never checkpoint (autocheckpoint is off), so the file holds the log's rows
        # only once the store's own thread has copied them.
        deadline = time.monotonic() + 10 * sqlite_store.CHECKPOINT_EVERY_S
        while rows_in_the_database_file(path) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rows_in_the_database_file(path) == 50
    finally:
        limiter.close()
    assert store._checkpointer is not None and not store._checkpointer.is_alive()


def test_the_log_starts_over_instead_of_growing_under_steady_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkpoints beside busy writers never catch up with them, so the log would only grow
    (about 10 MB a second under a gateway's load); the store restarts it once it is long."""
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY_S", 0.02)
    monkeypatch.setattr(sqlite_store, "RESTART_AFTER_FRAMES", 100)
    path = tmp_path / "state.db"
    store = SQLiteStore(str(path))
    limiter = Limiter(make_policy(rate=Rate(rpm=100), windows=()), store)
    largest = 0
    try:
        # About 30,000 frames (120 MB) in all: each call is one commit of a page or two.
        for i in range(20_000):
            decision = limiter.admit(f"account-{i % 2000}", "pro", "small", Usage(1, 1), T0)
            assert decision.admitted
            if i % 500 == 0:
                largest = max(largest, path.with_name("state.db-wal").stat().st_size)
    finally:
        limiter.close()
    assert largest < 16 * 2**20, f"the log reached {largest / 2**20:.0f} MB"
