"""The narrow interface every state store implements, and the shared half of the local ones."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple, Protocol, TypeVar

from gigawatt.limits import engine
from gigawatt.limits.types import (
    AccountState,
    AdmitResult,
    BucketSpec,
    LimitStatus,
    Reservation,
    WindowSpec,
)

T = TypeVar("T")


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
    """A store that runs `engine` in-process on one account's state, atomically.

    `apply` may call `change` more than once (a store that validates optimistically redoes it on
    a fresh read), so `change` must act on the state it is given and nothing else.
    """

    def apply(self, account: str, change: Callable[[AccountState], T]) -> T:
        raise NotImplementedError

    def admit(self, account: str, request: AdmitRequest, now: float) -> AdmitResult:
        return self.apply(account, admission(request, now))

    def reconcile(
        self,
        reservation: Reservation,
        actual_tokens: Sequence[int],
        actual_credits: float,
        windows_now: Mapping[str, WindowSpec],
        now: float,
    ) -> bool:
        change = reconciliation(reservation, actual_tokens, actual_credits, windows_now, now)
        return self.apply(reservation.account, change)

    def release(self, reservation: Reservation, now: float) -> bool:
        return self.apply(reservation.account, releasing(reservation, now))

    def statuses(
        self,
        account: str,
        buckets: Sequence[BucketSpec],
        windows: Sequence[WindowSpec],
        now: float,
    ) -> tuple[LimitStatus, ...]:
        def read(state: AccountState) -> tuple[LimitStatus, ...]:
            engine.sweep(state, now)
            return engine.statuses(state, buckets, windows, now)

        return self.apply(account, read)

    def close(self) -> None:
        return None


# What each call does to an account's state, for `LocalStore.apply` and the batching SQLite store.


def admission(request: AdmitRequest, now: float) -> Callable[[AccountState], AdmitResult]:
    buckets, costs, windows, credits, reservation_id, deadline = request
    return lambda state: engine.admit(
        state, buckets, costs, windows, credits, now, reservation_id, deadline
    )


def reconciliation(
    reservation: Reservation,
    actual_tokens: Sequence[int],
    actual_credits: float,
    windows_now: Mapping[str, WindowSpec],
    now: float,
) -> Callable[[AccountState], bool]:
    return lambda state: engine.reconcile(
        state, reservation, actual_tokens, actual_credits, windows_now, now
    )


def releasing(reservation: Reservation, now: float) -> Callable[[AccountState], bool]:
    return lambda state: engine.release(state, reservation.id, now)
