"""`gigawatt limiter-demo`: one account using a plan on a virtual clock, until its limits bite.

It drives the real limiter (any state URL) with a steady stream of requests and shows the moments
that matter: the first request, each refusal with its reason, and what happens after the reset.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from gigawatt.limits import Limiter, Usage, open_store
from gigawatt.limits.describe import limit_label, refusal_message
from gigawatt.policy.model import Policy

START = datetime(2026, 11, 30, 16, 0, tzinfo=UTC).timestamp()  # a Monday afternoon


def run_demo(
    policy: Policy,
    console: Console,
    *,
    plan: str = "pro",
    model: str | None = None,
    state: str = "memory://",
    requests: int = 74,
    every_s: float = 30.0,
    usage: Usage = Usage(20_000, 2_000),  # noqa: B008 - immutable
) -> int:
    """Run the demo; returns how many requests were admitted."""
    plan_ = policy.plans[plan]
    model = model or plan_.models[-1]
    limiter = Limiter(policy, open_store(state, policy.gateway.state_timeout_s))
    table = Table(title=f"plan {plan}, model {model}: a request every {every_s:g}s")
    for column in ("time (UTC)", "request", "outcome", "why"):
        table.add_column(column)
    admitted = 0
    last_outcome = None
    now = START
    try:
        for i in range(1, requests + 1):
            decision = limiter.admit("demo", plan_, model, usage, now)
            if decision.admitted:
                assert decision.reservation is not None
                limiter.reconcile(decision.reservation, usage, now)
                admitted += 1
                if last_outcome is not True:
                    table.add_row(_clock(now), str(i), "[green]admitted", _tightest(decision))
                last_outcome = True
                now += every_s
                continue
            table.add_row(_clock(now), str(i), "[red]refused", refusal_message(decision, now))
            last_outcome = False
            if decision.retry_after is None:
                break
            now += max(decision.retry_after, every_s)
        summary = Table(title=f"usage at {_clock(now)}")
        for column in ("limit", "used", "limit value", "resets"):
            summary.add_column(column)
        for status in limiter.snapshot("demo", plan_, now):
            if status.scope == "window" or status.model == model:
                reset = _clock(status.reset_at) if status.reset_at else "-"
                summary.add_row(
                    limit_label(status), f"{status.used:,.0f}", f"{status.limit:,.0f}", reset
                )
    finally:
        limiter.close()
    console.print(table)
    console.print(summary)
    console.print(f"{admitted} of {i} requests admitted.")
    return admitted


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%a %H:%M:%S")


def _tightest(decision: object) -> str:
    limits = [s for s in decision.limits if s.limit]  # type: ignore[attr-defined]
    tightest = max(limits, key=lambda s: s.utilization, default=None)
    if tightest is None:
        return "no limits apply"
    return f"tightest: {limit_label(tightest)} at {tightest.utilization:.0%}"
