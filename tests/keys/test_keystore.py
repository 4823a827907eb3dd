"""One key store suite, run against every backend: memory, SQLite, Redis and Redis Cluster."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from gigawatt.errors import StateError
from gigawatt.keys import KeyRecord, KeyStore, digest_of, open_key_store
from gigawatt.limits import Limiter, Usage, open_store
from gigawatt.policy import load_default_policy

T0 = 1_796_000_000.0
SECRET = re.compile(r"gw-[A-Za-z0-9_-]{43}")
KEY_ID = re.compile(r"key_[0-9a-f]{8}")


def _cluster_client(url: str) -> RedisCluster:
    return RedisCluster.from_url("redis" + url[len("redis+cluster") :])


@pytest.fixture
def store(store_url: str) -> Iterator[KeyStore]:
    s = open_key_store(store_url)
    yield s
    s.close()


def test_a_new_key_authenticates_with_its_secret(store: KeyStore) -> None:
    record, secret = store.create("alice", "pro", T0, label="laptop")
    assert SECRET.fullmatch(secret)
    assert KEY_ID.fullmatch(record.key_id)
    assert record == KeyRecord(record.key_id, "alice", "pro", T0, None, "laptop")
    assert record.active
    assert store.authenticate(secret) == record
    assert secret not in repr(record)


def test_every_key_gets_its_own_secret_and_id(store: KeyStore) -> None:
    made = [store.create("alice", "pro", T0 + i) for i in range(20)]
    assert len({r.key_id for r, _ in made}) == 20
    assert len({s for _, s in made}) == 20
    for record, secret in made:
        assert store.authenticate(secret) == record


def test_anything_but_a_live_secret_is_refused(store: KeyStore) -> None:
    record, secret = store.create("alice", "pro", T0)
    other, _ = store.create("bob", "free", T0)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for wrong in (
        flipped,
        "",
        "gw-",
        secret + "x",
        secret[3:],
        secret.upper(),
        digest_of(secret),
        record.key_id,
        other.key_id,
        "gw-" + "A" * 43,
    ):
        assert store.authenticate(wrong) is None, wrong


def test_a_revoked_key_stops_authenticating_and_stays_listed(store: KeyStore) -> None:
    record, secret = store.create("alice", "pro", T0)
    kept, kept_secret = store.create("alice", "pro", T0 + 1)
    assert store.revoke(record.key_id, T0 + 10) is True
    assert store.authenticate(secret) is None
    assert store.authenticate(kept_secret) == kept
    # Revoking again changes nothing, not even the time.
    assert store.revoke(record.key_id, T0 + 20) is False
    listed = store.list("alice")
    assert [r.key_id for r in listed] == [record.key_id, kept.key_id]
    assert listed[0].revoked_at == T0 + 10
    assert not listed[0].active
    assert listed[1].revoked_at is None


def test_revoking_an_unknown_key_is_a_value_error(store: KeyStore) -> None:
    store.create("alice", "pro", T0)
    with pytest.raises(ValueError, match="key_00000000"):
        store.revoke("key_00000000", T0)


def test_list_is_oldest_first_and_filters_by_account(store: KeyStore) -> None:
    b, _ = store.create("bob", "free", T0 + 2)
    a1, _ = store.create("alice", "pro", T0 + 1)
    a2, _ = store.create("alice", "pro", T0 + 3, label="ci")
    assert store.list() == [a1, b, a2]
    assert store.list("alice") == [a1, a2]
    assert store.list("carol") == []


def test_set_plan_moves_every_key_of_the_account_only(store: KeyStore) -> None:
    a1, s1 = store.create("alice", "free", T0)
    a2, s2 = store.create("alice", "pro", T0 + 1)
    store.revoke(a2.key_id, T0 + 2)
    b, sb = store.create("bob", "free", T0 + 3)
    assert store.set_plan("alice", "max") == 2
    assert store.authenticate(s1) == KeyRecord(a1.key_id, "alice", "max", T0, None, "")
    assert store.authenticate(s2) is None
    assert [r.plan for r in store.list("alice")] == ["max", "max"]
    assert store.list("alice")[1].revoked_at == T0 + 2
    assert store.authenticate(sb) == b
    assert store.set_plan("carol", "max") == 0


@pytest.mark.parametrize("account, plan", [("", "pro"), ("alice", ""), (" alice", "pro")])
def test_empty_or_padded_names_are_value_errors(store: KeyStore, account: str, plan: str) -> None:
    with pytest.raises(ValueError, match="name"):
        store.create(account, plan, T0)
    with pytest.raises(ValueError, match="name"):
        store.set_plan(account, plan)
    assert store.list() == []


def test_records_never_hold_secret_or_digest(store: KeyStore) -> None:
    record, secret = store.create("alice", "pro", T0)
    listed = store.list()
    for value in (repr(record), repr(listed), repr(store.authenticate(secret))):
        assert secret not in value
        assert digest_of(secret) not in value


def test_the_secret_is_never_stored(store_url: str, tmp_path: Path) -> None:
    store = open_key_store(store_url)
    try:
        made = [store.create("alice", "pro", T0 + i, label=f"k{i}") for i in range(5)]
        store.revoke(made[0][0].key_id, T0 + 9)
        store.set_plan("alice", "max")
        stored = _everything_stored(store_url, tmp_path)
        if stored is None:
            # memory:// keeps everything in the store object itself.
            stored = repr(vars(store)).encode()
    finally:
        store.close()
    for record, secret in made:
        # The scan does see the store's contents...
        assert record.key_id.encode() in stored
        assert digest_of(secret).encode() in stored
        # ...and no secret, whole or as its random part.
        assert secret.encode() not in stored
        assert secret[3:].encode() not in stored


def _everything_stored(url: str, tmp_path: Path) -> bytes | None:
    if url.startswith("memory"):
        return None
    if url.startswith("sqlite"):
        # The database, its WAL and its shared-memory index.
        return b"".join(p.read_bytes() for p in sorted(tmp_path.glob("state.db*")))
    if url.startswith("redis+cluster"):
        client = _cluster_client(url)
        try:
            keys = list(client.scan_iter(target_nodes=RedisCluster.PRIMARIES))
            return _dump(client, keys)
        finally:
            client.close()
    with redis.Redis.from_url(url) as plain:
        return _dump(plain, list(plain.scan_iter()))


def _dump(client: redis.Redis | RedisCluster, keys: list[bytes]) -> bytes:
    assert keys and all(k.startswith(b"gwk:") for k in keys), keys
    parts: list[bytes] = []
    for key in keys:
        kind = client.type(key)
        assert kind == b"hash", (key, kind)
        for field, value in client.hgetall(key).items():
            parts += [key, field, value]
    return b"\n".join(parts)


def test_two_sqlite_stores_on_one_file_share_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    first, second = open_key_store(url), open_key_store(url)
    try:
        record, secret = first.create("alice", "pro", T0)
        assert second.authenticate(secret) == record
        assert second.revoke(record.key_id, T0 + 1) is True
        assert first.authenticate(secret) is None
        assert first.revoke(record.key_id, T0 + 2) is False
        other, other_secret = second.create("alice", "pro", T0 + 3)
        assert first.set_plan("alice", "max") == 2
        assert second.authenticate(other_secret) == KeyRecord(
            other.key_id, "alice", "max", T0 + 3, None, ""
        )
    finally:
        first.close()
        second.close()


def test_keys_and_the_limiter_share_one_sqlite_file(tmp_path: Path) -> None:
    policy = load_default_policy()
    plan_name, plan = next(iter(policy.plans.items()))
    url = f"sqlite:///{tmp_path / 'state.db'}"
    keys = open_key_store(url)
    limiter = Limiter(policy, open_store(url))
    try:
        record, secret = keys.create("alice", plan_name, T0)
        assert limiter.admit("alice", record.plan, plan.models[0], Usage(10, 10), T0).admitted
        assert keys.authenticate(secret) == record
    finally:
        limiter.close()
        keys.close()
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("state.db")] == []


def test_sqlite_writes_from_many_threads_all_land(tmp_path: Path) -> None:
    store = open_key_store(f"sqlite:///{tmp_path / 'state.db'}", timeout_s=10)
    made: list[tuple[KeyRecord, str]] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(10):
            pair = store.create(f"acct{n}", "pro", T0 + i)
            with lock:
                made.append(pair)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len(store.list()) == 80
        assert all(store.authenticate(s) == r for r, s in made)
    finally:
        store.close()


def test_a_relative_sqlite_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_key_store("sqlite:///./.gigawatt/state.db?synchronous=full")
    try:
        store.create("alice", "pro", T0)
    finally:
        store.close()
    assert (tmp_path / ".gigawatt" / "state.db").is_file()


def test_bad_urls_are_value_errors() -> None:
    with pytest.raises(ValueError, match="unknown state URL"):
        open_key_store("postgres://db/keys")
    with pytest.raises(ValueError, match="names no file"):
        open_key_store("sqlite://")


def test_an_unusable_sqlite_file_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StateError, match="SQLite key store"):
        open_key_store(f"sqlite:///{blocker / 'state.db'}")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match="SQLite key store"):
        open_key_store(f"sqlite:///{garbage}")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_redis_is_a_state_error() -> None:
    store = open_key_store(f"redis://127.0.0.1:{_closed_port()}/0", timeout_s=0.5)
    try:
        with pytest.raises(StateError, match="Redis"):
            store.create("alice", "pro", T0)
        with pytest.raises(StateError, match="Redis"):
            store.authenticate("gw-" + "A" * 43)
    finally:
        store.close()
    with pytest.raises(StateError, match="Redis"):
        open_key_store(f"redis+cluster://127.0.0.1:{_closed_port()}", timeout_s=0.5)


@pytest.mark.redis
def test_cluster_records_spread_over_slots_and_the_index_is_one_key(
    redis_cluster_url: str,
) -> None:
    client = _cluster_client(redis_cluster_url)
    client.flushdb(target_nodes=RedisCluster.PRIMARIES)
    store = open_key_store(redis_cluster_url)
    try:
        for i in range(30):
            store.create("alice", "pro", T0 + i)
        keys = [k.decode() for k in client.scan_iter(target_nodes=RedisCluster.PRIMARIES)]
        assert len(keys) == 31
        assert "gwk:{index}" in keys
        slots = {client.keyslot(k) for k in keys}
        assert len(slots) > 10
    finally:
        store.close()
        client.close()
        client.close()
