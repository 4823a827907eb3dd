"""State stores, chosen by URL: `memory://`, `sqlite:///path`, `redis://host:port/db`,
`redis+cluster://host:port`."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from gigawatt.limits.storage.base import AdmitRequest, LocalStore, Store

__all__ = ["AdmitRequest", "LocalStore", "Store", "open_store"]


def open_store(url: str, timeout_s: float = 2.0) -> Store:
    """The store a URL names. Every state call made through it gives up after `timeout_s`."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from gigawatt.limits.storage.memory import MemoryStore

        return MemoryStore()
    if scheme == "sqlite":
        from gigawatt.limits.storage.sqlite import SQLiteStore

        path, _, query = url[len("sqlite://") :].partition("?")
        # sqlite:///relative/path keeps one slash for a path relative to the working directory,
        # sqlite:////abs/path gives an absolute one (the SQLAlchemy convention).
        path = path[1:] if path.startswith("/") else path
        if not path:
            raise ValueError(f"state URL {url!r} names no file: use sqlite:///path/to/state.db")
        options = parse_qs(query)
        unknown = set(options) - {"synchronous"}
        if unknown:
            raise ValueError(f"state URL {url!r}: unknown option(s) {sorted(unknown)}")
        synchronous = options.get("synchronous", ["normal"])[-1].lower()
        return SQLiteStore(path, timeout_s, synchronous)
    if scheme in ("redis", "rediss"):
        from gigawatt.limits.storage.redis import RedisStore

        return RedisStore(url, timeout_s)
    if scheme == "redis+cluster":
        from gigawatt.limits.storage.redis import RedisStore

        return RedisStore("redis" + url[len("redis+cluster") :], timeout_s, cluster=True)
    raise ValueError(
        f"unknown state URL {url!r}: use memory://, sqlite:///path, redis://host:port/db "
        "or redis+cluster://host:port"
    )
