"""API keys as the gateway checks them: the key store, behind a short cache.

Every request needs its key checked; asking the state store each time would add a round trip to
every request and make a state outage an outage of everything. A key seen in the last
`TTL_S` seconds is trusted from memory, so a revocation takes effect within that time.
Only digests are held, never secrets.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from gigawatt.errors import StateError
from gigawatt.keys import KeyRecord, KeyStore, digest_of

TTL_S = 10.0
MAX_ENTRIES = 100_000


class KeyCache:
    def __init__(self, store: KeyStore, ttl_s: float = TTL_S) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._seen: OrderedDict[str, tuple[KeyRecord, float]] = OrderedDict()

    def authenticate(self, secret: str) -> KeyRecord | None:
        digest = digest_of(secret)
        now = time.monotonic()
        hit = self._seen.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        try:
            record = self.store.authenticate(secret)
        except StateError:
            if hit is not None:
                # The store is down; a key known a moment ago keeps working until it is back.
                return hit[0]
            raise
        if record is None:
            self._seen.pop(digest, None)
            return None
        self._seen[digest] = (record, now + self.ttl_s)
        self._seen.move_to_end(digest)
        while len(self._seen) > MAX_ENTRIES:
            self._seen.popitem(last=False)
        return record

    def forget(self) -> None:
        self._seen.clear()
