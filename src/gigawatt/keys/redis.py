"""`redis://host:port/db` and `redis+cluster://host:port`: keys shared by every gateway replica.

Layout (every key starts `gwk:`, so it never meets the limiter's `gw:{account}` hashes):

    gwk:{<digest>}   hash, one per key, the record authentication reads:
                     key_id, digest, account, plan, created_at, label, and revoked_at once revoked
    gwk:{index}      hash, key_id -> {"digest": ..., "account": ...} as JSON, for listing and
                     for finding a key's record from its id

The braces are hash tags: each key's record lands in the slot of its own digest, so on a
Cluster authentication (one HGETALL, one round trip) spreads over every node instead of making
one node hot, while the index stays in one slot. An index entry never changes after it is
written (a key keeps its id, digest and account for life); every field that changes (plan,
revoked_at) lives only in the record, and each change is one single-key command, so no state
is duplicated across slots and nothing can disagree.

Create writes the index entry first (HSETNX, which also claims the id) and the record second.
A create that fails between the two leaves an entry without a record: it never authenticates
and `list` skips it, and its secret was never returned to anyone. The opposite order could
leave a key that authenticates but cannot be listed or revoked, so it is not used. Records are
never deleted: a revoked key stays listed with the time it was revoked.
"""

from __future__ import annotations

import builtins
import hmac
import json
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

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

INDEX_KEY = "gwk:{index}"
_T = TypeVar("_T")


def record_key(digest: str) -> str:
    return f"gwk:{{{digest}}}"


def _num(x: float) -> str:
    # repr() is the shortest exact form of a float.
    return repr(float(x))


class RedisKeyStore:
    def __init__(self, url: str, timeout_s: float = 2.0, cluster: bool = False) -> None:
        options: dict[str, Any] = {
            "socket_timeout": timeout_s,
            "socket_connect_timeout": timeout_s,
            "decode_responses": True,
        }
        self.client: redis.Redis | RedisCluster
        if cluster:
            # One retry at most: a cluster that cannot be reached must fail within the timeout.
            retry = Retry(NoBackoff(), retries=1)
            self.client = self._call(lambda: RedisCluster.from_url(url, retry=retry, **options))
        else:
            self.client = redis.Redis.from_url(url, **options)

    def create(self, account: str, plan: str, now: float, label: str = "") -> tuple[KeyRecord, str]:
        check_name("account", account)
        check_name("plan", plan)
        secret = new_secret()
        digest = digest_of(secret)
        entry = json.dumps({"digest": digest, "account": account}, separators=(",", ":"))
        for _ in range(ID_ATTEMPTS):
            key_id = new_key_id()
            if self._call(partial(self.client.hsetnx, INDEX_KEY, key_id, entry)):
                break
        else:
            raise StateError("no free key id after several attempts")
        record = KeyRecord(key_id, account, plan, float(now), None, label)
        fields = {
            "key_id": key_id,
            "digest": digest,
            "account": account,
            "plan": plan,
            "created_at": _num(record.created_at),
            "label": label,
        }
        self._call(lambda: self.client.hset(record_key(digest), mapping=fields))
        return record, secret

    def authenticate(self, secret: str) -> KeyRecord | None:
        if not looks_like_secret(secret):
            return None
        digest = digest_of(secret)
        fields = self._call(lambda: self.client.hgetall(record_key(digest)))
        if not fields or not hmac.compare_digest(fields.get("digest", ""), digest):
            return None
        record = _decode(fields)
        return record if record.active else None

    def list(self, account: str | None = None) -> builtins.list[KeyRecord]:
        if account is not None:
            check_name("account", account)
        digests = [
            entry["digest"]
            for entry in self._index().values()
            if account is None or entry["account"] == account
        ]
        return sort_records([_decode(f) for f in self._records(digests) if f])

    def revoke(self, key_id: str, now: float) -> bool:
        raw = self._call(lambda: self.client.hget(INDEX_KEY, key_id))
        digest = json.loads(raw)["digest"] if raw else None
        key = record_key(digest) if digest else ""
        if not digest or not self._call(lambda: self.client.exists(key)):
            raise ValueError(f"no key {key_id!r}")
        # HSETNX: the first revocation's time stays; records are never deleted, so the EXISTS
        # above cannot be undone in between and this cannot create a partial record.
        return bool(self._call(lambda: self.client.hsetnx(key, "revoked_at", _num(now))))

    def set_plan(self, account: str, plan: str) -> int:
        check_name("account", account)
        check_name("plan", plan)
        digests = [e["digest"] for e in self._index().values() if e["account"] == account]
        existing = [d for d, f in zip(digests, self._records(digests), strict=True) if f]
        if existing:
            pipe = self.client.pipeline(transaction=False)
            for digest in existing:
                pipe.hset(record_key(digest), "plan", plan)
            self._call(pipe.execute)
        return len(existing)

    def close(self) -> None:
        self.client.close()

    def _index(self) -> dict[str, dict[str, str]]:
        # HSCAN rather than HGETALL: a large index is read in pieces instead of one long command.
        raw = self._call(lambda: dict(self.client.hscan_iter(INDEX_KEY, count=1000)))
        return {key_id: json.loads(entry) for key_id, entry in raw.items()}

    def _records(self, digests: builtins.list[str]) -> builtins.list[dict[str, str]]:
        if not digests:
            return []
        # One pipeline, so listing costs one round trip per node rather than one per key.
        pipe = self.client.pipeline(transaction=False)
        for digest in digests:
            pipe.hgetall(record_key(digest))
        return self._call(pipe.execute)

    def _call(self, fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except redis.exceptions.TimeoutError as exc:
            raise StateTimeout(f"Redis did not answer in time: {exc}") from exc
        except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException) as exc:
            raise StateError(f"Redis failed: {exc}") from exc


def _decode(fields: Mapping[str, str]) -> KeyRecord:
    revoked = fields.get("revoked_at")
    return KeyRecord(
        key_id=fields["key_id"],
        account=fields["account"],
        plan=fields["plan"],
        created_at=float(fields["created_at"]),
        revoked_at=float(revoked) if revoked is not None else None,
        label=fields.get("label", ""),
    )
