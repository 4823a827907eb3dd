"""`memory://`: state in this process, for one gateway process and for the simulator."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from gigawatt.limits.storage.base import LocalStore
from gigawatt.limits.types import AccountState


class MemoryStore(LocalStore):
    def __init__(self) -> None:
        self._states: dict[str, AccountState] = {}
        # One lock for all accounts: the engine holds it for microseconds and never does I/O.
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self, account: str) -> Iterator[AccountState]:
        with self._lock:
            state = self._states.get(account)
            if state is None:
                state = self._states[account] = AccountState()
            yield state
