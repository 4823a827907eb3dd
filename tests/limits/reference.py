"""A small, slow, exact model of the limiter's semantics, written apart from `engine` to check it.

Buckets are token levels that refill continuously (not theoretical arrival times), windows are
logs of charges (not running sums), and every number is a Fraction, so rounding cannot hide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction as F

from gigawatt.limits import Usage
from gigawatt.policy.model import Policy, Window

SLOTS = 60


@dataclass
class Bucket:
    limit: int
    level: F
    at: F

    def level_at(self, now: F) -> F:
        return min(F(self.limit), self.level + (now - self.at) * self.limit / 60)

    def add(self, tokens: int, now: F) -> None:
        self.level = min(F(self.limit), self.level_at(now) - tokens)
        self.at = now


@dataclass
class Charge:
    """Credits in one window period: `period` is a session start or a rolling slot index."""

    window: str
    period: F
    end: F
    credits: F


@dataclass
class Held:
    account: str
    model: str
    deadline: F
    buckets: list[tuple[str, int]]  # (bucket key, tokens)
    charges: list[Charge]


@dataclass
class Account:
    buckets: dict[str, Bucket] = field(default_factory=dict)
    session_start: dict[str, F] = field(default_factory=dict)
    charges: list[Charge] = field(default_factory=list)  # every charge still in some period


class Reference:
    def __init__(self, policy: Policy, plan: str, ttl_s: int) -> None:
        self.policy = policy
        self.plan = policy.plans[plan]
        self.ttl = F(ttl_s)
        self.accounts: dict[str, Account] = {}
        self.held: dict[int, Held] = {}
        self._next = 0

    # --- what applies ---------------------------------------------------------------------

    def _factor(self, now: F) -> tuple[F, F | None]:
        """(factor on window limits, when a lowered limit is relieved)."""
        peak = self.plan.peak
        if peak is None:
            return F(1), None
        period = peak.period_at(float(now))
        if period is None:
            return F(1), None
        factor = F(peak.factor)
        return factor, (F(period[1]) if factor < 1 else None)

    def _windows(self, model: str) -> list[Window]:
        return [w for w in self.plan.windows if w.applies_to(model)]

    def _rates(self, model: str) -> list[tuple[str, int, str]]:
        rate = self.plan.rate[model]
        out = []
        for kind, name in (
            ("rpm", "requests"),
            ("input_tpm", "input-tokens"),
            ("output_tpm", "output-tokens"),
        ):
            limit = getattr(rate, kind)
            if limit is not None:
                out.append((f"{model}:{kind}", limit, name))
        return out

    @staticmethod
    def _tokens(key: str, usage: Usage) -> int:
        kind = key.rsplit(":", 1)[1]
        if kind == "rpm":
            return 1
        if kind == "input_tpm":
            return usage.input_tokens + usage.cache_write_tokens
        return usage.output_tokens

    def _credits(self, model: str, usage: Usage) -> F:
        w = self.policy.models[model].credits
        return (
            F(w.input) * usage.input_tokens
            + F(w.output) * usage.output_tokens
            + F(w.cache_read) * usage.cache_read_tokens
            + F(w.cache_write) * usage.cache_write_tokens
        )

    # --- window periods ---------------------------------------------------------------------

    def _current_period(self, acct: Account, w: Window, now: F) -> tuple[F, F] | None:
        """(period, end) open at `now`, or None for a session/first-use window with none open."""
        if w.kind == "rolling":
            slot = F(w.length_s, SLOTS)
            index = F(math.floor(now / slot))
            return index, (index + SLOTS) * slot
        start = acct.session_start.get(w.name)
        length = F(w.length_s)
        if start is None or now >= start + length:
            return None
        return start, start + length

    def _used(self, acct: Account, w: Window, now: F) -> tuple[F, F | None]:
        live = [c for c in acct.charges if c.window == w.name and now < c.end]
        if w.kind != "rolling":
            current = self._current_period(acct, w, now)
            if current is None:
                return F(0), None
            live = [c for c in live if c.period == current[0]]
            return sum((c.credits for c in live), F(0)), current[1]
        if not live:
            return F(0), None
        return sum((c.credits for c in live), F(0)), min(c.end for c in live)

    def _open_or_current(self, acct: Account, w: Window, now: F) -> tuple[F, F]:
        current = self._current_period(acct, w, now)
        if current is None:
            acct.session_start[w.name] = now
            current = (now, now + w.length_s)
        return current

    def _is_open(self, acct: Account, charge: Charge, w: Window | None, now: F) -> bool:
        if now >= charge.end:
            return False
        if w is None or w.kind == "rolling":
            return True
        return acct.session_start.get(charge.window) == charge.period

    # --- operations ---------------------------------------------------------------------------

    def sweep(self, account: str, now: F) -> None:
        for rid in [r for r, h in self.held.items() if h.account == account and h.deadline <= now]:
            self._undo(self.held.pop(rid), now)

    def _undo(self, held: Held, now: F) -> None:
        acct = self.accounts[held.account]
        for key, tokens in held.buckets:
            acct.buckets[key].add(-tokens, now)
        for charge in held.charges:
            w = next((x for x in self.plan.windows if x.name == charge.window), None)
            if self._is_open(acct, charge, w, now):
                self._add_to_period(acct, charge, -charge.credits)

    @staticmethod
    def _add_to_period(acct: Account, charge: Charge, delta: F) -> None:
        """Add to a period's total, never below zero (spread over that period's charges)."""
        same = [c for c in acct.charges if c.window == charge.window and c.period == charge.period]
        total = sum((c.credits for c in same), F(0)) + delta
        for c in same:
            acct.charges.remove(c)
        acct.charges.append(Charge(charge.window, charge.period, charge.end, max(F(0), total)))

    def admit(
        self, account: str, model: str, usage: Usage, now: F
    ) -> tuple[bool, list[str], F | None, int | None]:
        """(admitted, the refusing limits with the longest wait, that wait, reservation id)."""
        self.sweep(account, now)
        acct = self.accounts.setdefault(account, Account())
        waits: list[tuple[str, F | None]] = []
        for key, limit, name in self._rates(model):
            bucket = acct.buckets.setdefault(key, Bucket(limit, F(limit), now))
            cost = self._tokens(key, usage)
            if cost > limit:
                waits.append((name, None))
            elif cost > bucket.level_at(now):
                waits.append((name, (cost - bucket.level_at(now)) * 60 / limit))
        credits = self._credits(model, usage)
        factor, relief_at = self._factor(now)
        for w in self._windows(model):
            limit = F(w.limit) * factor
            used, reset_at = self._used(acct, w, now)
            if used + credits <= limit:
                continue
            options = []
            if credits <= limit:
                if w.kind == "rolling":
                    live = sorted(
                        (c for c in acct.charges if c.window == w.name and now < c.end),
                        key=lambda c: c.period,
                    )
                    remaining = used
                    for c in live:
                        remaining -= c.credits
                        if remaining + credits <= limit:
                            options.append(c.end)
                            break
                elif reset_at is not None:
                    options.append(reset_at)
            if relief_at is not None and credits <= F(w.limit):
                if used + credits <= F(w.limit):
                    options.append(relief_at)
                elif reset_at is not None:
                    options.append(max(reset_at, relief_at))
            waits.append((w.name, min(options) - now if options else None))
        if waits:
            if any(wait is None for _, wait in waits):
                return False, [n for n, wait in waits if wait is None], None, None
            longest = max(wait for _, wait in waits if wait is not None)
            return False, [n for n, wait in waits if wait == longest], longest, None
        held = Held(account, model, now + self.ttl, [], [])
        for key, _, _ in self._rates(model):
            cost = self._tokens(key, usage)
            acct.buckets[key].add(cost, now)
            held.buckets.append((key, cost))
        for w in self._windows(model):
            period, end = self._open_or_current(acct, w, now)
            charge = Charge(w.name, period, end, credits)
            self._add_to_period(acct, charge, credits)
            held.charges.append(charge)
        self._next += 1
        self.held[self._next] = held
        return True, [], None, self._next

    def settle(self, rid: int, held: Held, actual: Usage | None, now: F) -> bool:
        """Reconcile with `actual`, or release when `actual` is None."""
        self.sweep(held.account, now)
        acct = self.accounts[held.account]
        open_ = self.held.pop(rid, None) is not None
        if actual is None:
            if open_:
                self._undo(held, now)
            return open_
        if not open_ and now < held.deadline:
            return False
        for key, tokens in held.buckets:
            delta = self._tokens(key, actual) - (tokens if open_ else 0)
            if delta:
                acct.buckets[key].add(delta, now)
        credits = self._credits(held.model, actual)
        for charge in held.charges:
            delta = credits - (charge.credits if open_ else 0)
            w = next((x for x in self.plan.windows if x.name == charge.window), None)
            if self._is_open(acct, charge, w, now):
                self._add_to_period(acct, charge, delta)
            elif delta > 0 and w is not None:
                period, end = self._open_or_current(acct, w, now)
                self._add_to_period(acct, Charge(w.name, period, end, delta), delta)
        return True

    def window_used(self, account: str, now: F) -> dict[str, F]:
        self.sweep(account, now)
        acct = self.accounts.setdefault(account, Account())
        return {w.name: self._used(acct, w, now)[0] for w in self.plan.windows}


def bucket_remaining(ref: Reference, account: str, model: str, name: str, now: F) -> int:
    kind = {"requests": "rpm", "input-tokens": "input_tpm", "output-tokens": "output_tpm"}[name]
    acct = ref.accounts.setdefault(account, Account())
    bucket = acct.buckets.get(f"{model}:{kind}")
    if bucket is None:
        return int(getattr(ref.plan.rate[model], kind))
    return max(0, math.floor(bucket.level_at(now)))


def epoch(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp())
