"""The limiter: one policy, one store, and the four calls the gateway and simulator make."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping

from gigawatt.limits.specs import LimitBook, RequestLimits
from gigawatt.limits.storage.base import AdmitRequest, Store
from gigawatt.limits.types import (
    AdmitResult,
    BucketCharge,
    BucketSpec,
    Decision,
    LimitReading,
    LimitStatus,
    Reservation,
    WindowSpec,
    new_tuple,
)
from gigawatt.limits.usage import Usage, credits_of
from gigawatt.policy.model import Plan, Policy


class Limiter:
    """Admit, reconcile, release and report, for every account under one policy.

    Time is always passed in (`now`, epoch seconds): the gateway passes the wall clock, the
    simulator a virtual one. Nothing here reads a clock.
    """

    def __init__(
        self, policy: Policy, store: Store, reservation_ttl_s: float | None = None
    ) -> None:
        self.policy = policy
        self.store = store
        self.reservation_ttl_s = (
            policy.gateway.reservation_ttl_s if reservation_ttl_s is None else reservation_ttl_s
        )
        self._book = LimitBook(policy)
        # Unique across processes without a random draw per call.
        self._prefix = os.urandom(6).hex()
        self._ids = itertools.count()
        # A store with an event-loop client (SQLite, Redis) has these; looked up once, not per call.
        self._store_aadmit = getattr(store, "aadmit", None)
        self._store_areconcile = getattr(store, "areconcile", None)

    def plan(self, plan: str | Plan) -> Plan:
        if isinstance(plan, Plan):
            return plan
        try:
            return self.policy.plans[plan]
        except KeyError:
            raise ValueError(f"unknown plan {plan!r}") from None

    def admit(
        self, account: str, plan: str | Plan, model: str, estimate: Usage, now: float
    ) -> Decision:
        """Reserve `estimate` under every limit, or refuse saying which limit and until when."""
        plan_name, limits, request = self._admission(plan, model, estimate, now)
        result = self.store.admit(account, request, now)
        return _decide(result, account, plan_name, model, estimate, now, limits, request)

    async def aadmit(
        self, account: str, plan: str | Plan, model: str, estimate: Usage, now: float
    ) -> Decision:
        """`admit` for an event loop: a store with an async client is awaited, not blocked on."""
        plan_name, limits, request = self._admission(plan, model, estimate, now)
        store_admit = self._store_aadmit
        if store_admit is None:
            result = self.store.admit(account, request, now)
        else:
            result = await store_admit(account, request, now)
        return _decide(result, account, plan_name, model, estimate, now, limits, request)

    def _admission(
        self, plan: str | Plan, model: str, estimate: Usage, now: float
    ) -> tuple[str, RequestLimits, AdmitRequest]:
        """The plan's name, the limits that apply and what to ask the store (a plain tuple:
        one is made per request)."""
        plan_ = self.plan(plan)
        if model not in plan_.models:
            raise ValueError(f"plan {plan_.name!r} does not include model {model!r}")
        if not isinstance(estimate, Usage):
            raise ValueError(f"estimate must be a Usage, got {type(estimate).__name__}")
        limits = self._book.limits(plan_, model, now)
        credits = credits_of(self.policy.models[model].credits, estimate)
        rid = f"{self._prefix}{next(self._ids):x}"
        deadline = now + self.reservation_ttl_s
        costs = _costs(limits.buckets, estimate)
        request = new_tuple(
            AdmitRequest, (limits.buckets, costs, limits.windows, credits, rid, deadline)
        )
        return plan_.name, limits, request

    def reconcile(self, reservation: Reservation, actual: Usage, now: float) -> bool:
        """Replace the reservation with `actual` usage. False if it was already settled."""
        tokens, credits, windows_now = self._reconciliation(reservation, actual, now)
        return self.store.reconcile(reservation, tokens, credits, windows_now, now)

    async def areconcile(self, reservation: Reservation, actual: Usage, now: float) -> bool:
        tokens, credits, windows_now = self._reconciliation(reservation, actual, now)
        store_reconcile = self._store_areconcile
        if store_reconcile is None:
            return self.store.reconcile(reservation, tokens, credits, windows_now, now)
        return bool(await store_reconcile(reservation, tokens, credits, windows_now, now))

    def _reconciliation(
        self, reservation: Reservation, actual: Usage, now: float
    ) -> tuple[tuple[int, ...], float, Mapping[str, WindowSpec]]:
        """Each bucket's tokens, the credits and the windows open at `now` (a plain tuple)."""
        if not isinstance(actual, Usage):
            raise ValueError(f"actual usage must be a Usage, got {type(actual).__name__}")
        plan = self.plan(reservation.plan)
        limits = self._book.limits(plan, reservation.model, now)
        credits = credits_of(self.policy.models[reservation.model].credits, actual)
        tokens = _costs(reservation.buckets, actual)
        return tokens, credits, limits.windows_by_key

    def release(self, reservation: Reservation, now: float) -> bool:
        """Undo a reservation whose request produced nothing. False if it was already settled."""
        return self.store.release(reservation, now)

    async def arelease(self, reservation: Reservation, now: float) -> bool:
        store_release = getattr(self.store, "arelease", None)
        if store_release is None:
            return self.store.release(reservation, now)
        return bool(await store_release(reservation, now))

    def snapshot(self, account: str, plan: str | Plan, now: float) -> tuple[LimitStatus, ...]:
        """Every window of the plan, then every bucket of every model it may use, at `now`."""
        plan_ = self.plan(plan)
        windows = {}
        buckets: list[BucketSpec] = []
        for model in plan_.models:
            limits = self._book.limits(plan_, model, now)
            buckets.extend(limits.buckets)
            for spec in limits.windows:
                windows.setdefault(spec.key, spec)
        statuses = self.store.statuses(account, buckets, tuple(windows.values()), now)
        return statuses[len(buckets) :] + statuses[: len(buckets)]

    def close(self) -> None:
        self.store.close()


def _decide(
    result: AdmitResult,
    account: str,
    plan: str,
    model: str,
    estimate: Usage,
    now: float,
    limits: RequestLimits,
    request: AdmitRequest,
) -> Decision:
    """The caller's answer to the store's: a reservation, or the refusal; either way with the
    reading its limits' statuses are made from, on demand."""
    reading = new_tuple(LimitReading, (result.view, limits.buckets, limits.windows, now))
    if not result.admitted:
        return Decision(False, None, None, result.refused_by, result.retry_after, reading)
    reservation = new_tuple(
        Reservation,
        (
            request.reservation_id,
            account,
            plan,
            model,
            estimate,
            now,
            request.deadline,
            result.buckets,
            result.windows,
        ),
    )
    return Decision(True, reservation, reading=reading)


def _costs(
    buckets: tuple[BucketSpec, ...] | tuple[BucketCharge, ...], usage: Usage
) -> tuple[int, ...]:
    """What a request costs in each bucket (a plain loop: this runs twice a request, and a
    comprehension costs a function call more)."""
    if not buckets:
        return ()
    input_tokens, output, _, cache_write = usage
    rate_input = input_tokens + cache_write  # cache reads do not count
    costs = []
    for b in buckets:
        kind = b.kind
        costs.append(1 if kind == "rpm" else rate_input if kind == "input_tpm" else output)
    return tuple(costs)
