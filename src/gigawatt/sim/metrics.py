"""What a run means: per plan and per hour, from the attempt log of `run.Outcome`, with numpy.

All the figures and tables of the report come from `summarise`, as plain values (lists, dicts,
floats) so they can be written as JSON and CSV as they are.

Definitions:
- requests: attempts sent, retries included; `first` counts requests once.
- refusals: attempts refused, by the limit that refused them (`overloaded`: waited the whole
  queue timeout).
- wait: seconds from being sent to a replica taking the request; TTFT: to its first token.
  Percentiles are over served attempts.
- degraded: served attempts the plan's degrade rule changed (fallback model, max_tokens or
  thinking capped); cut: those whose answer the cap made shorter.
- utilisation: output tokens served per hour over what the pool serves at full batch on the
  model's mean request (`PoolPlan.capacity_tokens_per_s`); slots: sequences in flight over
  batch slots, sampled every minute.
- affected users: of the users who sent anything that day, the share who saw a refusal, a
  degraded answer, or either.
- time to limit: for each session window (the 5-hour window) a user ran into, the hours from
  the window's opening to the first refusal by it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from gigawatt.sim.fleet_model import PoolPlan
from gigawatt.sim.run import CUT, DEGRADED, REFUSED, SERVED, UNFINISHED, Outcome
from gigawatt.sim.workload import Workload

OVERLOADED = "overloaded"
HOUR_S = 3600.0
# Time-to-limit histogram: quarter hours.
TTL_BIN_H = 0.25


@dataclass(frozen=True, slots=True)
class Scenario:
    """What one simulated scenario was: shown above its results."""

    label: str
    policy: str
    fleet: str  # name, or "none"
    fleet_gpus: int  # the whole fleet's GPUs, before sampling
    pools: tuple[PoolPlan, ...] | None  # the sampled fleet


def summarise(
    scenario: Scenario,
    workload: Workload,
    outcome: Outcome,
    timezone: str,
) -> dict[str, Any]:
    """Every table and figure of one scenario, as JSON-ready values."""
    w, o = workload, outcome
    plans = list(w.plan_names)
    hours = max(1, math.ceil((w.end - w.start) / HOUR_S))
    days = max(1, round((w.end - w.start) / 86_400))
    hour = np.clip(((o.t - w.start) // HOUR_S).astype(np.int64), 0, hours - 1)
    day = np.clip(((o.t - w.start) // 86_400).astype(np.int64), 0, days - 1)
    served = o.outcome == SERVED
    refused = o.outcome == REFUSED
    degraded = served & ((o.flags & DEGRADED) != 0)
    cut = served & ((o.flags & CUT) != 0)
    limits = list(o.limit_names[1:])
    n_plans = len(plans)

    per_plan: dict[str, Any] = {}
    for p, name in enumerate(plans):
        rows = o.plan == p
        if not rows.any() and name not in w.sampled_users:
            continue
        s = rows & served
        rows_refused = rows & refused
        by_limit = {
            limit: int((rows_refused & (o.limit == i + 1)).sum()) for i, limit in enumerate(limits)
        }
        per_plan[name] = {
            "users": int((w.user_plan == p).sum()),
            "requests": int(rows.sum()),
            "first_attempts": int((rows & (o.attempt == 0)).sum()),
            "retries": int((rows & (o.attempt > 0)).sum()),
            "served": int(s.sum()),
            "refused": int((rows & refused).sum()),
            "refused_by": {k: v for k, v in by_limit.items() if v},
            "unfinished": int((rows & (o.outcome == UNFINISHED)).sum()),
            "wait_p50_s": _pct(o.wait[s], 50),
            "wait_p99_s": _pct(o.wait[s], 99),
            "ttft_p50_s": _pct(o.ttft[s], 50),
            "ttft_p99_s": _pct(o.ttft[s], 99),
            "degraded_share": _share(degraded[rows].sum(), s.sum()),
            "cut_share": _share(cut[rows].sum(), s.sum()),
            "output_tokens": int(o.output_tokens[s].sum()),
        }

    # Per hour and plan.
    group = hour * n_plans + o.plan
    size = hours * n_plans
    requests_h = np.bincount(group, minlength=size).reshape(hours, n_plans)
    refused_h = np.bincount(group[refused], minlength=size).reshape(hours, n_plans)
    by_limit_h = {
        limit: np.bincount(group[refused & (o.limit == i + 1)], minlength=size)
        .reshape(hours, n_plans)
        .tolist()
        for i, limit in enumerate(limits)
    }
    served_h = np.bincount(group[served], minlength=size).reshape(hours, n_plans)
    degraded_h = np.bincount(group[degraded], minlength=size).reshape(hours, n_plans)
    wait_q = _group_percentiles(group[served], o.wait[served], size, (50, 99))
    ttft_q = _group_percentiles(group[served], o.ttft[served], size, (50, 99))
    all_wait = _group_percentiles(hour[served], o.wait[served], hours, (50, 99))
    all_ttft = _group_percentiles(hour[served], o.ttft[served], hours, (50, 99))

    hourly = {
        "hour_start": [_local(w.start + h * HOUR_S, timezone) for h in range(hours)],
        "plans": plans,
        "requests": requests_h.tolist(),
        "refused": refused_h.tolist(),
        "refused_by": by_limit_h,
        "served": served_h.tolist(),
        "degraded_share": _ratio(degraded_h, served_h).tolist(),
        "wait_p50_s": wait_q[0].reshape(hours, n_plans).tolist(),
        "wait_p99_s": wait_q[1].reshape(hours, n_plans).tolist(),
        "ttft_p50_s": ttft_q[0].reshape(hours, n_plans).tolist(),
        "ttft_p99_s": ttft_q[1].reshape(hours, n_plans).tolist(),
        "all_wait_p50_s": all_wait[0].tolist(),
        "all_wait_p99_s": all_wait[1].tolist(),
        "all_ttft_p50_s": all_ttft[0].tolist(),
        "all_ttft_p99_s": all_ttft[1].tolist(),
    }

    fleet = _fleet(scenario, w, o, hours)
    affected = _affected(w, o, day, days, refused, degraded)
    limit_hits = _limit_hits(w, o)
    for name, row in per_plan.items():
        row.update(affected["plans"].get(name, {}))
        row.update(limit_hits["plans"].get(name, {}))

    return {
        "scenario": {
            "label": scenario.label,
            "policy": scenario.policy,
            "fleet": scenario.fleet,
            "fleet_gpus": scenario.fleet_gpus,
            "days": days,
            "start": _local(w.start, timezone),
            "timezone": timezone,
            "sample_fraction": w.fraction,
            "sampled_users": dict(w.sampled_users),
            "users": len(w.accounts),
        },
        "totals": {
            "requests_drawn": len(w),
            "requests_sent": len(o.t),
            "first_attempts": int((o.attempt == 0).sum()),
            "retries": int((o.attempt > 0).sum()),
            "served": int(served.sum()),
            "refused": int(refused.sum()),
            "unfinished": int((o.outcome == UNFINISHED).sum()),
            "held_back": o.suppressed,
            "gave_up": o.gave_up,
            "wait_p50_s": _pct(o.wait[served], 50),
            "wait_p99_s": _pct(o.wait[served], 99),
            "ttft_p50_s": _pct(o.ttft[served], 50),
            "ttft_p99_s": _pct(o.ttft[served], 99),
            "degraded_share": _share(degraded.sum(), served.sum()),
            "affected_share": affected["all"],
        },
        "limits": limits,
        "plans": per_plan,
        "hourly": hourly,
        "fleet": fleet,
        "time_to_limit": limit_hits["histogram"],
        "daily": affected["daily"],
    }


def _fleet(scenario: Scenario, w: Workload, o: Outcome, hours: int) -> dict[str, Any] | None:
    if scenario.pools is None or o.samples is None:
        return None
    s = o.samples
    pools = []
    served = o.outcome == SERVED
    end_hour = np.clip(((o.end - w.start) // HOUR_S).astype(np.int64), 0, hours - 1)
    sample_hour = np.clip(((s.t - w.start) // HOUR_S).astype(np.int64), 0, hours - 1)
    per_hour_samples = np.maximum(np.bincount(sample_hour, minlength=hours), 1)
    for spec in scenario.pools:
        model = w.model_names.index(spec.model)
        rows = served & (o.model == model)
        tokens = np.bincount(end_hour[rows], weights=o.output_tokens[rows], minlength=hours)
        col = s.models.index(spec.model)
        slots = np.bincount(
            sample_hour, weights=s.inflight[:, col] / s.capacity[col], minlength=hours
        )
        queued = np.bincount(sample_hour, weights=s.queued[:, col], minlength=hours)
        pools.append(
            {
                "model": spec.model,
                "replicas": spec.replicas,
                "batch_slots": spec.capacity,
                "capacity_tokens_per_s": spec.capacity_tokens_per_s,
                "utilisation": (tokens / HOUR_S / spec.capacity_tokens_per_s).tolist(),
                "slots_in_use": (slots / per_hour_samples).tolist(),
                "queued": (queued / per_hour_samples).tolist(),
                "peak_utilisation": float((tokens / HOUR_S / spec.capacity_tokens_per_s).max()),
            }
        )
    return {"pools": pools}


def _affected(
    w: Workload,
    o: Outcome,
    day: npt.NDArray[np.int64],
    days: int,
    refused: npt.NDArray[np.bool_],
    degraded: npt.NDArray[np.bool_],
) -> dict[str, Any]:
    """Per day and plan: users who sent anything, and the shares who met a refusal or a
    degraded answer."""
    n_users = len(w.accounts)
    key = day * n_users + o.user
    active = np.unique(key)
    saw_refusal = np.unique(key[refused])
    saw_degraded = np.unique(key[degraded])
    saw_either = np.union1d(saw_refusal, saw_degraded)
    plan_of = w.user_plan.astype(np.int64)
    n_plans = len(w.plan_names)

    def count(keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        d, u = keys // n_users, keys % n_users
        return np.bincount(d * n_plans + plan_of[u], minlength=days * n_plans).reshape(
            days, n_plans
        )

    a, r, g, e = count(active), count(saw_refusal), count(saw_degraded), count(saw_either)
    daily = {
        "plans": list(w.plan_names),
        "active_users": a.tolist(),
        "refused_share": _ratio(r, a).tolist(),
        "degraded_share": _ratio(g, a).tolist(),
        "affected_share": _ratio(e, a).tolist(),
    }
    plans = {}
    for p, name in enumerate(w.plan_names):
        total = a[:, p].sum()
        if total == 0:
            continue
        plans[name] = {
            "active_users_per_day": float(total / days),
            "users_refused_share": _share(r[:, p].sum(), total),
            "users_degraded_share": _share(g[:, p].sum(), total),
            "users_affected_share": _share(e[:, p].sum(), total),
        }
    return {"daily": daily, "plans": plans, "all": _share(e.sum(), a.sum())}


def _limit_hits(w: Workload, o: Outcome) -> dict[str, Any]:
    """The first refusal in each (user, session window) and how far into the window it came."""
    hits = o.session_hits
    user, t, start, plan = hits["user"], hits["t"], hits["window_start"], hits["plan"]
    plans: dict[str, Any] = {}
    bins = np.arange(0.0, 5.0 + TTL_BIN_H, TTL_BIN_H)
    counts: dict[str, list[int]] = {}
    if len(user):
        key = np.round(start).astype(np.int64)
        order = np.lexsort((t, key, user))
        user, t, start, plan, key = user[order], t[order], start[order], plan[order], key[order]
        first = np.ones(len(user), dtype=bool)
        first[1:] = (user[1:] != user[:-1]) | (key[1:] != key[:-1])
        hours_in = (t[first] - start[first]) / HOUR_S
        longest = float(max(5.0, hours_in.max()))
        bins = np.arange(0.0, longest + TTL_BIN_H, TTL_BIN_H)
        for p, name in enumerate(w.plan_names):
            sel = plan[first] == p
            if not sel.any():
                continue
            h = hours_in[sel]
            counts[name] = np.histogram(h, bins=bins)[0].tolist()
            plans[name] = {
                "users_hit_session_limit": int(np.unique(user[first][sel]).size),
                "session_limit_hits": int(sel.sum()),
                "hours_to_limit_p50": float(np.percentile(h, 50)),
                "hours_to_limit_mean": float(h.mean()),
            }
    return {
        "plans": plans,
        "histogram": {"bin_start_h": bins[:-1].tolist(), "bin_h": TTL_BIN_H, "counts": counts},
    }


def _group_percentiles(
    group: npt.NDArray[np.int64],
    values: npt.NDArray[Any],
    n_groups: int,
    qs: tuple[float, ...],
) -> list[npt.NDArray[np.float64]]:
    """Percentiles (linear interpolation) of `values` within each group; NaN where empty."""
    out = [np.full(n_groups, np.nan) for _ in qs]
    if len(values) == 0:
        return out
    order = np.lexsort((values, group))
    g, v = group[order], values[order].astype(np.float64)
    counts = np.bincount(g, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    has = counts > 0
    for i, q in enumerate(qs):
        pos = starts[has] + (counts[has] - 1) * (q / 100.0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, starts[has] + counts[has] - 1)
        frac = pos - lo
        out[i][has] = v[lo] * (1 - frac) + v[hi] * frac
    return out


def _pct(values: npt.NDArray[Any], q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def _share(part: Any, whole: Any) -> float | None:
    return float(part) / float(whole) if whole else None


def _ratio(part: npt.NDArray[Any], whole: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    out = np.full(part.shape, np.nan)
    np.divide(part, whole, out=out, where=whole > 0)
    return out


def _local(t: float, timezone: str) -> str:
    return datetime.fromtimestamp(t, ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
