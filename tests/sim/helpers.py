"""Small policies and hand-made workloads for the simulator's tests."""

from __future__ import annotations

import numpy as np

from gigawatt.policy.load import parse_policy
from gigawatt.policy.model import Policy
from gigawatt.sim.workload import Workload

START = 1_780_272_000.0  # 2026-06-01 00:00 UTC, a Monday


def policy(plan_toml: str = "", model: str = "m", queue_timeout: str = "1000000s") -> Policy:
    """One model `model`, one plan `p` (no limits unless `plan_toml` adds some)."""
    return parse_policy(
        f"""
[models.{model}]
credits = {{ input = 1, output = 5 }}

[plans.p]
priority = 1
queue_timeout = "{queue_timeout}"
{plan_toml}
"""
    )


def workload(
    t: np.ndarray,
    *,
    users: int = 1,
    context: int | np.ndarray = 100,
    answer: int | np.ndarray = 10,
    cached: int | np.ndarray = 0,
    end: float | None = None,
    user: np.ndarray | None = None,
    model_names: tuple[str, ...] = ("m",),
    plan_names: tuple[str, ...] = ("p",),
    session_end: np.ndarray | None = None,
) -> Workload:
    """Requests at epoch times `t` (sorted), all on plan `p` and the first model."""
    n = len(t)
    if user is None:
        user = np.arange(n) % users
    return Workload(
        t=np.asarray(t, dtype=np.float64),
        user=np.asarray(user, dtype=np.int32),
        model=np.zeros(n, dtype=np.int16),
        context=np.broadcast_to(np.asarray(context, dtype=np.int32), (n,)).copy(),
        cached=np.broadcast_to(np.asarray(cached, dtype=np.int32), (n,)).copy(),
        answer=np.broadcast_to(np.asarray(answer, dtype=np.int32), (n,)).copy(),
        thinking=np.zeros(n, dtype=np.int32),
        session_end=np.asarray(t if session_end is None else session_end, dtype=np.float64),
        accounts=tuple(f"u{i}" for i in range(users)),
        user_plan=np.zeros(users, dtype=np.int16),
        closed_loop=np.ones(users, dtype=np.bool_),
        plan_names=plan_names,
        model_names=model_names,
        start=float(START),
        end=float(end if end is not None else (t[-1] + 1 if n else START + 1)),
        fraction=1.0,
        sampled_users={"p": users},
    )
