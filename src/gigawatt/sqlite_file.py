"""Opening the SQLite file that holds the limiter's state and the API keys, the same way for both:
whichever opens a new file first decides its page size."""

from __future__ import annotations

import sqlite3

# An account's row is a few hundred bytes, and a commit writes every page it changed to the WAL
# whole: a commit of eight accounts' rows wrote 8 KB rather than 32 KB with 4 KB pages (SQLite's
# default), and cost about 40% less per row (docs/limiter.md). Only a new file takes this size;
# one made with another keeps its own.
PAGE_SIZE_BYTES = 1024


def connect(path: str, timeout_s: float) -> sqlite3.Connection:
    """A connection to `path` in WAL mode and autocommit mode (its owner begins transactions
    itself). Each store keeps one per thread; the connection is not tied to the thread that opened
    it, so a store may close it from another."""
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
    # Before anything writes: the page size of a new file is fixed by its first write.
    conn.execute(f"PRAGMA page_size={PAGE_SIZE_BYTES}")
    conn.execute("PRAGMA journal_mode=WAL")
    return conn
