"""The file the SQLite stores share gets small pages, whichever store makes it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gigawatt.keys.sqlite import SQLiteKeyStore
from gigawatt.limits.storage.sqlite import SQLiteStore
from gigawatt.sqlite_file import PAGE_SIZE_BYTES


def page_size(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("first", ["state", "keys"])
def test_a_new_file_has_small_pages_whichever_store_opens_it_first(
    tmp_path: Path, first: str
) -> None:
    path = tmp_path / "gigawatt.db"
    opened = [SQLiteStore, SQLiteKeyStore] if first == "state" else [SQLiteKeyStore, SQLiteStore]
    stores = [make(str(path)) for make in opened]
    try:
        assert PAGE_SIZE_BYTES < 4096  # SQLite's default, which this is meant to replace
        assert page_size(path) == PAGE_SIZE_BYTES
    finally:
        for store in stores:
            store.close()


def test_a_file_made_with_other_pages_keeps_them(tmp_path: Path) -> None:
    path = tmp_path / "gigawatt.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA page_size=8192")
    conn.execute("CREATE TABLE unrelated (x)")
    conn.close()
    store = SQLiteStore(str(path))
    try:
        assert page_size(path) == 8192
    finally:
        store.close()
