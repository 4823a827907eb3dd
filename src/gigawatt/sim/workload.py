"""Draw every request of a simulation from a demand, at once, as numpy arrays sorted by time.

Randomness comes from the one generator passed in, so a seed fixes the workload. The run loop
then walks these arrays; only what the fleet and the limiter decide happens request by request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from gigawatt.errors import PolicyError, Problem
from gigawatt.policy.model import Policy
from gigawatt.sim.demand import Demand, Dist, Intensity, PlanDemand
from gigawatt.sim.fleet_model import MeanRequest
from gigawatt.sim.trace import Trace, read_trace

F8 = npt.NDArray[np.float64]
I4 = npt.NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class Workload:
    """Every request the population would send, sorted by `t` (epoch seconds).

    `context` is the whole prompt in tokens, `cached` the part of it read from the prompt cache,
    `answer` and `thinking` the tokens the model would produce. `session_end` is when the
    request's session would end: a user who gives up sends nothing more until then.
    """

    t: F8
    user: I4
    model: npt.NDArray[np.int16]
    context: I4
    cached: I4
    answer: I4
    thinking: I4
    session_end: F8
    accounts: tuple[str, ...]  # per user
    user_plan: npt.NDArray[np.int16]  # per user: index into plan_names
    closed_loop: npt.NDArray[np.bool_]  # per user: a refusal holds back what the user sends next
    plan_names: tuple[str, ...]
    model_names: tuple[str, ...]
    start: float
    end: float
    fraction: float  # of each plan's users simulated (and of trace accounts replayed)
    sampled_users: dict[str, int]  # per plan

    def __len__(self) -> int:
        return len(self.t)


def day_starts(demand: Demand, days: int) -> list[datetime]:
    """Local midnight of each simulated day, and of the day after the last."""
    zone = ZoneInfo(demand.timezone)
    first: date = demand.start
    return [
        datetime.combine(first + timedelta(days=d), datetime.min.time(), tzinfo=zone)
        for d in range(days + 1)
    ]


def hour_starts(demand: Demand, days: int) -> F8:
    """Epoch seconds of every local hour of every day, shape (days, 25): column 24 is the next
    midnight. Built from wall times, so a DST day has one hour of length 0 or 7,200 s."""
    zone = ZoneInfo(demand.timezone)
    out = np.empty((days, 25))
    for d, midnight in enumerate(day_starts(demand, days)[:-1]):
        for h in range(24):
            out[d, h] = datetime(
                midnight.year, midnight.month, midnight.day, h, tzinfo=zone
            ).timestamp()
        nxt = midnight.date() + timedelta(days=1)
        out[d, 24] = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone).timestamp()
    return out


def sample_fraction(demand: Demand, sample_users: int) -> float:
    """The share of each plan's users to simulate so about `sample_users` are simulated."""
    total = demand.users
    if total == 0:
        return 1.0
    return min(1.0, sample_users / total)


def build_workload(
    demand: Demand,
    policy: Policy,
    days: int,
    fraction: float,
    rng: np.random.Generator,
) -> Workload:
    """Every request of `days` days from `fraction` of the demand's users (at least one per
    plan that has any), drawn from `rng`."""
    if days < 1:
        raise ValueError("days must be at least 1")
    if not 0 < fraction <= 1:
        raise ValueError(f"the sampled share of users must be in (0, 1], not {fraction}")
    plan_names = tuple(policy.plans)
    model_names = tuple(policy.models)
    model_index = {m: i for i, m in enumerate(model_names)}
    hours = hour_starts(demand, days)
    weekday0 = demand.start.weekday()
    start, end = float(hours[0, 0]), float(hours[-1, 24])

    parts: list[tuple[F8, I4, npt.NDArray[np.int16], I4, I4, I4, I4, F8]] = []
    accounts: list[str] = []
    user_plan: list[int] = []
    closed: list[bool] = []
    sampled: dict[str, int] = {}
    for plan in demand.plans.values():
        n = round(plan.users * fraction)
        n = max(n, 1) if plan.users > 0 else 0
        sampled[plan.plan] = n
        if n == 0:
            continue
        first_user = len(accounts)
        accounts.extend(f"{plan.plan}/{i}" for i in range(n))
        user_plan.extend([plan_names.index(plan.plan)] * n)
        closed.extend([True] * n)
        parts.append(_plan_requests(plan, n, first_user, hours, weekday0, model_index, rng))
    if demand.trace is not None:
        part, names = _trace_requests(demand, policy, fraction, start, end, len(accounts), rng)
        sampled[f"trace:{demand.trace.plan}"] = len(names)
        accounts.extend(names)
        user_plan.extend([plan_names.index(demand.trace.plan)] * len(names))
        closed.extend([False] * len(names))
        parts.append(part)

    columns = [np.concatenate([p[i] for p in parts]) if parts else np.empty(0) for i in range(8)]
    order = np.argsort(columns[0], kind="stable")
    t, user, model, context, cached, answer, thinking, session_end = (c[order] for c in columns)
    return Workload(
        t=t.astype(np.float64),
        user=user.astype(np.int32),
        model=model.astype(np.int16),
        context=context.astype(np.int32),
        cached=cached.astype(np.int32),
        answer=answer.astype(np.int32),
        thinking=thinking.astype(np.int32),
        session_end=session_end.astype(np.float64),
        accounts=tuple(accounts),
        user_plan=np.asarray(user_plan, dtype=np.int16),
        closed_loop=np.asarray(closed, dtype=np.bool_),
        plan_names=plan_names,
        model_names=model_names,
        start=start,
        end=end,
        fraction=fraction,
        sampled_users=sampled,
    )


def intensities(spec: Intensity, n: int, rng: np.random.Generator) -> F8:
    """Per-user intensity with mean 1."""
    if spec.kind == "none" or n == 0:
        return np.ones(n)
    if spec.kind == "lognormal":
        s = spec.sigma
        return np.exp(rng.normal(-s * s / 2, s, n)) if s > 0 else np.ones(n)
    # numpy's pareto is Lomax: 1 + it is Pareto with x_m = 1 and mean alpha / (alpha - 1).
    a = spec.alpha
    return (1.0 + rng.pareto(a, n)) * (a - 1.0) / a


def draw_sizes(dist: Dist, n: int, rng: np.random.Generator) -> I4:
    """`n` token counts from `dist`, rounded and clipped to [1, max]."""
    if dist.kind == "fixed":
        values = np.full(n, dist.mean)
    elif dist.kind == "exponential":
        values = rng.exponential(dist.mean, n)
    else:
        s = dist.sigma
        values = (
            np.exp(rng.normal(math.log(dist.mean) - s * s / 2, s, n))
            if s > 0
            else np.full(n, dist.mean)
        )
    upper = min(dist.max_value, 2.0**31 - 1)
    return np.clip(np.rint(values), 1, upper).astype(np.int32)


def _plan_requests(
    plan: PlanDemand,
    n_users: int,
    first_user: int,
    hours: F8,
    weekday0: int,
    model_index: dict[str, int],
    rng: np.random.Generator,
) -> tuple[F8, I4, npt.NDArray[np.int16], I4, I4, I4, I4, F8]:
    days = hours.shape[0]
    weight = intensities(plan.intensity, n_users, rng)
    weekly = np.asarray(plan.weekly_factors)
    hourly = np.asarray(plan.hourly)
    starts: list[F8] = []
    owners: list[I4] = []
    for d in range(days):
        p_active = min(1.0, plan.active_share * weekly[(weekday0 + d) % 7])
        active = np.flatnonzero(rng.random(n_users) < p_active)
        extra = rng.poisson((plan.sessions_per_day - 1.0) * weight[active])
        per_user = 1 + extra
        owner = np.repeat(active, per_user).astype(np.int32)
        hour = rng.choice(24, size=len(owner), p=hourly)
        length = hours[d, hour + 1] - hours[d, hour]
        starts.append(hours[d, hour] + rng.random(len(owner)) * length)
        owners.append(owner)
    session_start = np.concatenate(starts) if starts else np.empty(0)
    session_owner = np.concatenate(owners) if owners else np.empty(0, np.int32)
    n_sessions = len(session_start)
    # Geometric with mean m: success probability 1 / m, support 1, 2, ...
    per_session = rng.geometric(1.0 / plan.requests_per_session, n_sessions)
    total = int(per_session.sum())
    session = np.repeat(np.arange(n_sessions), per_session)
    think = rng.exponential(plan.think_time_s, total)
    first = np.zeros(n_sessions, dtype=np.int64)
    np.cumsum(per_session[:-1], out=first[1:])
    think[first] = 0.0  # a session's first request starts it
    elapsed = np.cumsum(think)
    offset = elapsed - np.repeat(elapsed[first], per_session)
    t = session_start[session] + offset
    last = first + per_session - 1
    session_end = (session_start + offset[last])[session]

    names = list(plan.models)
    model_pick = rng.choice(len(names), size=total, p=[plan.models[m] for m in names])
    model = np.empty(total, dtype=np.int16)
    context = np.empty(total, dtype=np.int32)
    cached = np.empty(total, dtype=np.int32)
    answer = np.empty(total, dtype=np.int32)
    for i, name in enumerate(names):
        rows = np.flatnonzero(model_pick == i)
        sizes = plan.sizes[name]
        model[rows] = model_index[name]
        context[rows] = draw_sizes(sizes.input, len(rows), rng)
        cached[rows] = np.floor(context[rows] * sizes.cached).astype(np.int32)
        answer[rows] = draw_sizes(sizes.output, len(rows), rng)
    thinking = np.zeros(total, dtype=np.int32)
    if plan.thinking is not None and plan.thinking.share > 0:
        rows = np.flatnonzero(rng.random(total) < plan.thinking.share)
        thinking[rows] = draw_sizes(plan.thinking.tokens, len(rows), rng)
    user = (session_owner[session] + first_user).astype(np.int32)
    return t, user, model, context, cached, answer, thinking, session_end


def _trace_requests(
    demand: Demand,
    policy: Policy,
    fraction: float,
    start: float,
    end: float,
    first_user: int,
    rng: np.random.Generator,
) -> tuple[tuple[F8, I4, npt.NDArray[np.int16], I4, I4, I4, I4, F8], list[str]]:
    spec = demand.trace
    assert spec is not None
    trace: Trace = read_trace(spec.path)
    plan = policy.plans[spec.plan]
    keep = trace.offset_s < end - start
    if trace.accounts is not None:
        names, account = np.unique(np.asarray(trace.accounts), return_inverse=True)
        names = [f"trace/{a}" for a in names]
    else:
        names = [f"trace/{i}" for i in range(spec.accounts)]
        account = rng.integers(0, spec.accounts, len(trace))
    if fraction < 1:
        chosen = rng.random(len(names)) < fraction
        keep &= chosen[account]
    default_model = spec.model or plan.models[0]
    if trace.models is not None:
        models = np.asarray([m or default_model for m in trace.models])
    else:
        models = np.full(len(trace), default_model)
    model_index = {m: i for i, m in enumerate(policy.models)}
    unknown = sorted(set(np.unique(models[keep])) - set(plan.models))
    if unknown:
        raise PolicyError(
            spec.path,
            [
                Problem(
                    "model",
                    f"plan {plan.name!r} has no model {m!r}; its models: {', '.join(plan.models)}",
                )
                for m in unknown
            ],
        )
    rows = np.flatnonzero(keep)
    used, remap = np.unique(account[rows], return_inverse=True)
    t = start + trace.offset_s[rows]
    model = np.asarray([model_index[m] for m in models[rows]], dtype=np.int16)
    context = np.maximum(trace.input_tokens[rows], 0).astype(np.int32)
    answer = np.maximum(trace.output_tokens[rows], 1).astype(np.int32)
    part = (
        t,
        (remap + first_user).astype(np.int32),
        model,
        context,
        np.zeros(len(rows), np.int32),
        answer,
        np.zeros(len(rows), np.int32),
        t.copy(),
    )
    return part, [names[i] for i in used]


def mean_requests(workload: Workload) -> dict[str, MeanRequest]:
    """Each model's mean request in `workload` (prompt, uncached prompt, answer with thinking)."""
    out = {}
    for i, name in enumerate(workload.model_names):
        rows = workload.model == i
        if not rows.any():
            continue
        prompt = workload.context[rows].astype(np.float64)
        out[name] = MeanRequest(
            prompt_tokens=float(prompt.mean()),
            prefill_tokens=float((prompt - workload.cached[rows]).mean()),
            output_tokens=float(
                (workload.answer[rows].astype(np.float64) + workload.thinking[rows]).mean()
            ),
        )
    return out
