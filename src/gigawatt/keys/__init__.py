"""The gateway's API keys, kept only as SHA-256 digests in the limiter's state store.

    store = open_key_store("sqlite:///./.gigawatt/state.db")
    record, secret = store.create("alice", "pro", now)   # the secret is shown once, never kept
    store.authenticate(secret)                            # the record, or None
    store.revoke(record.key_id, now)

The store is chosen by the same URLs as the limiter's (`memory://`, `sqlite:///path`,
`redis://host:port/db`, `redis+cluster://host:port`); the layout of each is in `docs/keys.md`.
Store failures raise `gigawatt.errors.StateError` (`StateTimeout` when too slow).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from gigawatt.keys.base import KeyRecord, KeyStore, digest_of

__all__ = ["KeyRecord", "KeyStore", "digest_of", "open_key_store"]


def open_key_store(url: str, timeout_s: float = 2.0) -> KeyStore:
    """The key store a state URL names. Every call made through it gives up after `timeout_s`."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from gigawatt.keys.memory import MemoryKeyStore

        return MemoryKeyStore()
    if scheme == "sqlite":
        from gigawatt.keys.sqlite import SQLiteKeyStore

        # Options after "?" tune the limiter's connections; the key store needs only the path.
        path = url[len("sqlite://") :].partition("?")[0]
        # The limiter's convention, so both find the same file: sqlite:///relative/path is
        # relative to the working directory, sqlite:////abs/path is absolute.
        path = path[1:] if path.startswith("/") else path
        if not path:
            raise ValueError(f"state URL {url!r} names no file: use sqlite:///path/to/state.db")
        return SQLiteKeyStore(path, timeout_s)
    if scheme in ("redis", "rediss"):
        from gigawatt.keys.redis import RedisKeyStore

        return RedisKeyStore(url, timeout_s)
    if scheme == "redis+cluster":
        from gigawatt.keys.redis import RedisKeyStore

        return RedisKeyStore("redis" + url[len("redis+cluster") :], timeout_s, cluster=True)
    raise ValueError(
        f"unknown state URL {url!r}: use memory://, sqlite:///path, redis://host:port/db "
        "or redis+cluster://host:port"
    )
