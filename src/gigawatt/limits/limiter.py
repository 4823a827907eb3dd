"""The limiter: one policy, one store, and the four calls the gateway and simulator make."""

from __future__ import annotations

import itertools
import os

from gigawatt.limits import engine
from gigawatt.limits.specs import LimitBook
from gigawatt.limits.storage.base import AdmitRequest, Store
from gigawatt.limits.types import BucketKind, BucketSpec, Decision, LimitStatus, Reservation
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
        plan_ = self.plan(plan)
        if model not in plan_.models:
            raise ValueError(f"plan {plan_.name!r} does not include model {model!r}")
        if not isinstance(estimate, Usage):
            raise ValueError(f"estimate must be a Usage, got {type(estimate).__name__}")
        limits = self._book.limits(plan_, model, now)
        credits = credits_of(self.policy.models[model].credits, estimate)
        rid = f"{self._prefix}{next(self._ids):x}"
        deadline = now + self.reservation_ttl_s
        request = AdmitRequest(
            limits.buckets,
            tuple(_cost(spec.kind, estimate) for spec in limits.buckets),
            limits.windows,
            credits,
            rid,
            deadline,
        )
        result = self.store.admit(account, request, now)
        raw = result.view

        def statuses() -> tuple[LimitStatus, ...]:
            return engine.statuses_of(raw, limits.buckets, limits.windows, now)

        if not result.admitted:
            return Decision(False, None, statuses, result.refused_by, result.retry_after)
        reservation = Reservation(
            rid, account, plan_.name, model, estimate, now, deadline, result.buckets, result.windows
        )
        return Decision(True, reservation, statuses)

    def reconcile(self, reservation: Reservation, actual: Usage, now: float) -> bool:
        """Replace the reservation with `actual` usage. False if it was already settled."""
        if not isinstance(actual, Usage):
            raise ValueError(f"actual usage must be a Usage, got {type(actual).__name__}")
        plan = self.plan(reservation.plan)
        limits = self._book.limits(plan, reservation.model, now)
        credits = credits_of(self.policy.models[reservation.model].credits, actual)
        tokens = tuple(_cost(charge.kind, actual) for charge in reservation.buckets)
        return self.store.reconcile(reservation, tokens, credits, limits.windows_by_key, now)

    def release(self, reservation: Reservation, now: float) -> bool:
        """Undo a reservation whose request produced nothing. False if it was already settled."""
        return self.store.release(reservation, now)

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


def _cost(kind: BucketKind, usage: Usage) -> int:
    if kind == "rpm":
        return 1
    if kind == "input_tpm":
        return usage.input_tokens + usage.cache_write_tokens  # cache reads do not count
    return usage.output_tokens
