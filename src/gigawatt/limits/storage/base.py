"""The narrow interface every state store implements, and the shared half of the local ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import NamedTuple, Protocol

from gigawatt.limits import engine
from gigawatt.limits.types import (
    AccountState,
    AdmitResult,
    BucketSpec,
    LimitStatus,
    Reservation,
    WindowSpec,
)


class AdmitRequest(NamedTuple):
    buckets: tuple[BucketSpec, ...]
    bucket_costs: tuple[int, ...]
    windows: tuple[WindowSpec, ...]
    credits: float
    reservation_id: str
    deadline: float


class Store(Protocol):
    """Atomic decisions over one account's state. Raises `StateError` and nothing else."""

    def admit(self, account: str, request: AdmitRequest, now: float) -> AdmitResult: ...

    def reconcile(
        self,
        reservation: Reservation,
        actual_tokens: Sequence[int],
        actual_credits: float,
        windows_now: Mapping[str, WindowSpec],
        now: float,
    ) -> bool: ...

    def release(self, reservation: Reservation, now: float) -> bool: ...

    def statuses(
        self,
        account: str,
        buckets: Sequence[BucketSpec],
        windows: Sequence[WindowSpec],
        now: float,
    ) -> tuple[LimitStatus, ...]: ...

    def close(self) -> None: ...


class LocalStore:
    """A store that runs `engine` in-process inside a per-account transaction."""

    def transaction(self, account: str) -> AbstractContextManager[AccountState]:
        raise NotImplementedError

    def admit(self, account: str, request: AdmitRequest, now: float) -> AdmitResult:
        with self.transaction(account) as state:
            return engine.admit(state, *request[:4], now, *request[4:])

    def reconcile(
        self,
        reservation: Reservation,
        actual_tokens: Sequence[int],
        actual_credits: float,
        windows_now: Mapping[str, WindowSpec],
        now: float,
    ) -> bool:
        with self.transaction(reservation.account) as state:
            return engine.reconcile(
                state, reservation, actual_tokens, actual_credits, windows_now, now
            )

    def release(self, reservation: Reservation, now: float) -> bool:
        with self.transaction(reservation.account) as state:
            return engine.release(state, reservation.id, now)

    def statuses(
        self,
        account: str,
        buckets: Sequence[BucketSpec],
        windows: Sequence[WindowSpec],
        now: float,
    ) -> tuple[LimitStatus, ...]:
        with self.transaction(account) as state:
            engine.sweep(state, now)
            return engine.statuses(state, buckets, windows, now)

    def close(self) -> None:
        return None
