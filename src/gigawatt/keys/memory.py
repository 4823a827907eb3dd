"""`memory://`: keys in this process only, for tests and a single short-lived gateway."""

from __future__ import annotations

import builtins
import dataclasses
import hmac
import threading

from gigawatt.errors import StateError
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


class MemoryKeyStore:
    def __init__(self) -> None:
        self._by_digest: dict[str, KeyRecord] = {}
        self._digest_of_id: dict[str, str] = {}
        self._lock = threading.Lock()

    def create(self, account: str, plan: str, now: float, label: str = "") -> tuple[KeyRecord, str]:
        check_name("account", account)
        check_name("plan", plan)
        secret = new_secret()
        digest = digest_of(secret)
        with self._lock:
            for _ in range(ID_ATTEMPTS):
                key_id = new_key_id()
                if key_id not in self._digest_of_id:
                    break
            else:
                raise StateError("no free key id after several attempts")
            record = KeyRecord(key_id, account, plan, float(now), None, label)
            self._by_digest[digest] = record
            self._digest_of_id[key_id] = digest
        return record, secret

    def authenticate(self, secret: str) -> KeyRecord | None:
        if not looks_like_secret(secret):
            return None
        digest = digest_of(secret)
        with self._lock:
            record = self._by_digest.get(digest)
            stored = self._digest_of_id.get(record.key_id, "") if record else ""
        if record is None or not hmac.compare_digest(stored, digest) or not record.active:
            return None
        return record

    def list(self, account: str | None = None) -> builtins.list[KeyRecord]:
        if account is not None:
            check_name("account", account)
        with self._lock:
            records = [r for r in self._by_digest.values() if account in (None, r.account)]
        return sort_records(records)

    def revoke(self, key_id: str, now: float) -> bool:
        with self._lock:
            digest = self._digest_of_id.get(key_id)
            if digest is None:
                raise ValueError(f"no key {key_id!r}")
            record = self._by_digest[digest]
            if not record.active:
                return False
            self._by_digest[digest] = dataclasses.replace(record, revoked_at=float(now))
            return True

    def set_plan(self, account: str, plan: str) -> int:
        check_name("account", account)
        check_name("plan", plan)
        with self._lock:
            moved = 0
            for digest, record in self._by_digest.items():
                if record.account == account:
                    self._by_digest[digest] = dataclasses.replace(record, plan=plan)
                    moved += 1
            return moved

    def close(self) -> None:
        return None
