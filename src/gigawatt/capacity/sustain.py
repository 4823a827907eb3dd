"""From demand to limits: the peak-hour load a policy lets through, and the limits a fleet sustains.

The model, per plan and model, for every hour of a reference week:

    requests/s  = users * active_share * requests_per_active_day * weekly[day] * hourly[hour]
                  * model_share / 3600
    served      = requests/s * E[min(x, cap)]
    utilisation = sum over plans of served / capacity_rps(model, input, output)

`x` is a user's intensity, lognormal with mean 1 (a few heavy users drive much of the usage).
A window of limit L (credits) lets a user through up to `x = L / B`, where B is the mean user's
demand over that window at its busiest (the largest L-hour sum of the daily curve for session
and rolling windows, seven days for weekly ones), so the share of demand a window serves is
`E[min(x, L / B)]`, which has a closed form for a lognormal. Every window and rate bucket that
applies to a model caps the same `x`; the tightest one binds. During a plan's peak hours its
window limits are multiplied by the peak factor, as the limiter does.

Capacity is the fleet's requests/s for a request of that size (`capacity_rps`), so plans with
long prompts use more of a model's GPUs per request than plans with short ones.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from gigawatt.policy.model import Peak, Plan, Policy, Window

HOURS_PER_WEEK = 168
# Any Monday serves as the reference week; peak periods are looked up on its real dates, so a
# plan whose peak is in another time zone than the demand's lines up hour by hour.
_REFERENCE_MONDAY = datetime(2026, 1, 5)
# Past this multiple of the mean, a lognormal user's usage no longer changes the load in any
# digit that matters; limits scaled beyond it are reported as not binding.
UNBOUNDED_SCALE = 1e4

CapacityRps = Callable[[str, float, float], float]


@dataclass(frozen=True, slots=True)
class ModelDemand:
    """One plan's use of one model: its share of the plan's requests and their mean sizes."""

    model: str
    share: float
    input_tokens: float
    output_tokens: float
    cache_read_tokens: float = 0.0


@dataclass(frozen=True, slots=True)
class PlanDemand:
    """The mean demand of one plan's users."""

    plan: str
    users: float
    active_share: float  # share of users active on a given day
    requests_per_active_day: float  # for a user of mean intensity
    intensity_sigma: float  # sigma of the lognormal per-user intensity (mean 1)
    hourly: tuple[float, ...]  # 24 shares of a day's requests, local time, summing to 1
    weekly: tuple[float, ...]  # 7 factors, Monday first, averaging 1
    timezone: str
    models: tuple[ModelDemand, ...]


@dataclass(frozen=True, slots=True)
class Scenario:
    """What to change in the policy before computing the load."""

    window_scale: float = 1.0  # every window limit multiplied by this
    session_scale: float = 1.0  # session windows (the 5-hour kind) multiplied by this as well
    weekly_scale: float = 1.0  # weekly windows multiplied by this as well
    # Every rate bucket multiplied by this, and with them the traffic of API plans (plans with
    # rate limits and no windows), taken to grow into limits raised for them.
    api_scale: float = 1.0
    peak: bool = True  # False: as if no plan had peak hours


@dataclass(frozen=True, slots=True)
class Load:
    """Peak utilisation per model over the reference week and when it happens."""

    peak_utilisation: Mapping[str, float]
    peak_hour: Mapping[str, int]  # hour of the reference week, 0 = Monday 00:00 local
    served_share: Mapping[str, float]  # demand served over the week / demand asked for

    @property
    def worst(self) -> float:
        return max(self.peak_utilisation.values(), default=0.0)


def capped_mean(sigma: float, cap: float) -> float:
    """E[min(x, cap)] for a lognormal x with mean 1 and log-sd `sigma`.

    With ln x ~ N(mu, sigma^2), mu = -sigma^2/2:
    E[min(x, c)] = Phi((ln c - mu - sigma^2) / sigma) + c * (1 - Phi((ln c - mu) / sigma)).
    Example: sigma = 1, c = 1 gives Phi(-0.5) + 1 - Phi(0.5) = 2 * 0.30854 = 0.61708.
    """
    if cap <= 0:
        return 0.0
    if math.isinf(cap):
        return 1.0
    if sigma <= 0:
        return min(1.0, cap)
    mu = -sigma * sigma / 2
    log_cap = math.log(cap)
    return _phi((log_cap - mu - sigma * sigma) / sigma) + cap * (1 - _phi((log_cap - mu) / sigma))


def _phi(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def busiest_hours_share(hourly: tuple[float, ...], hours: float) -> float:
    """The largest share of a day's requests in `hours` consecutive hours (wrapping midnight).

    Whole days count fully, the remainder by the busiest stretch: for a flat curve 5 hours
    is 5/24; for 30 hours, 1 + the busiest 6-hour share.
    """
    days, rest = divmod(hours, 24)
    whole = int(rest)
    fraction = rest - whole
    best = 0.0
    for start in range(24):
        span = sum(hourly[(start + i) % 24] for i in range(whole))
        span += fraction * hourly[(start + whole) % 24]
        best = max(best, span)
    return days + best


def credits_per_request(policy: Policy, demand: ModelDemand) -> float:
    weights = policy.models[demand.model].credits
    return (
        demand.input_tokens * weights.input
        + demand.output_tokens * weights.output
        + demand.cache_read_tokens * weights.cache_read
    )


def window_demand(policy: Policy, demand: PlanDemand, window: Window) -> float:
    """B: the credits a user of mean intensity asks of `window` over its length, at its busiest."""
    counted = sum(
        m.share * credits_per_request(policy, m)
        for m in demand.models
        if window.applies_to(m.model)
    )
    if window.kind == "weekly":
        per_user = demand.requests_per_active_day * demand.active_share * 7
    else:
        hours = window.length_s / 3600
        per_user = (
            demand.requests_per_active_day
            * busiest_hours_share(demand.hourly, hours)
            * max(demand.weekly)
        )
    return per_user * counted


def is_api_plan(plan: Plan) -> bool:
    """A plan limited by rate buckets only, with no usage windows: pay-per-token API access."""
    has_rates = any(
        r.rpm is not None or r.input_tpm is not None or r.output_tpm is not None
        for r in plan.rate.values()
    )
    return has_rates and not plan.windows


def rate_caps(plan: Plan, demand: PlanDemand, model: ModelDemand, scale: float) -> list[float]:
    """Intensity caps from the per-model buckets: each bucket's per-minute limit over a mean
    user's per-minute demand in the busiest hour."""
    rate = plan.rate.get(model.model)
    if rate is None:
        return []
    per_minute = (
        demand.requests_per_active_day * max(demand.hourly) * max(demand.weekly) * model.share / 60
    )
    if per_minute <= 0:
        return []
    caps = []
    for limit, size in (
        (rate.rpm, 1.0),
        (rate.input_tpm, model.input_tokens),
        (rate.output_tpm, model.output_tokens),
    ):
        if limit is not None and size > 0:
            caps.append(limit * scale / (per_minute * size))
    return caps


def weekly_load(
    policy: Policy,
    demands: tuple[PlanDemand, ...],
    capacity_rps: CapacityRps,
    scenario: Scenario = Scenario(),
) -> Load:
    """Utilisation of each model's fleet for every hour of the reference week."""
    models = sorted({m.model for d in demands for m in d.models})
    series = {model: [0.0] * HOURS_PER_WEEK for model in models}
    asked = dict.fromkeys(models, 0.0)
    served = dict.fromkeys(models, 0.0)
    for demand in demands:
        plan = policy.plans[demand.plan]
        window_b = {w.name: window_demand(policy, demand, w) for w in plan.windows}
        factors = _peak_factors(plan.peak if scenario.peak else None, demand.timezone)
        for model in demand.models:
            capacity = capacity_rps(model.model, model.input_tokens, model.output_tokens)
            if capacity <= 0:
                raise ValueError(f"the fleet has no capacity for model {model.model!r}")
            rate_limits = rate_caps(plan, demand, model, scenario.api_scale)
            growth = scenario.api_scale if is_api_plan(plan) else 1.0
            windows = plan.windows_for(model.model)
            for hour in range(HOURS_PER_WEEK):
                day, hour_of_day = divmod(hour, 24)
                rps = (
                    demand.users
                    * demand.active_share
                    * demand.requests_per_active_day
                    * demand.weekly[day]
                    * demand.hourly[hour_of_day]
                    * model.share
                    * growth
                    / 3600
                )
                if rps <= 0:
                    continue
                factor = factors[hour]
                caps = list(rate_limits)
                for window in windows:
                    b = window_b[window.name]
                    if b > 0:
                        scale = scenario.window_scale * (
                            scenario.session_scale
                            if window.kind == "session"
                            else scenario.weekly_scale
                            if window.kind == "weekly"
                            else 1.0
                        )
                        caps.append(window.limit * scale * factor / b)
                share = capped_mean(demand.intensity_sigma, min(caps, default=math.inf))
                series[model.model][hour] += rps * share / capacity
                asked[model.model] += rps
                served[model.model] += rps * share
    peak_hour = {m: max(range(HOURS_PER_WEEK), key=series[m].__getitem__) for m in models}
    return Load(
        peak_utilisation={m: series[m][peak_hour[m]] for m in models},
        peak_hour=peak_hour,
        served_share={m: served[m] / asked[m] if asked[m] else 1.0 for m in models},
    )


@functools.cache
def _peak_factors(peak: Peak | None, timezone: str) -> tuple[float, ...]:
    """A plan's window-limit factor for each hour of the reference week, in the demand's local
    time. Cached: the planner's bisections ask for the same few peaks hundreds of times."""
    if peak is None:
        return (1.0,) * HOURS_PER_WEEK
    zone = ZoneInfo(timezone)
    return tuple(
        peak.factor
        if peak.period_at(_reference_epoch(hour, zone) + 1800) is not None  # mid-hour
        else 1.0
        for hour in range(HOURS_PER_WEEK)
    )


def _reference_epoch(hour_of_week: int, zone: ZoneInfo) -> float:
    day, hour = divmod(hour_of_week, 24)
    local = _REFERENCE_MONDAY.replace(day=_REFERENCE_MONDAY.day + day, hour=hour, tzinfo=zone)
    return local.timestamp()


def largest_scale(load_at: Callable[[float], float], target: float, *, low: float = 1e-3) -> float:
    """The largest scale s in [0, UNBOUNDED_SCALE] with load_at(s) <= target (load rises with s).

    Returns UNBOUNDED_SCALE when even that keeps the load under the target, and 0 when the
    load is over the target at any scale (demand no limit of this kind touches is too much).
    Bisection on log s to a relative precision of 0.1%.
    """
    if load_at(UNBOUNDED_SCALE) <= target:
        return UNBOUNDED_SCALE
    if load_at(low) > target:
        return 0.0
    lo, hi = math.log(low), math.log(UNBOUNDED_SCALE)
    while hi - lo > 1e-3:
        mid = (lo + hi) / 2
        if load_at(math.exp(mid)) <= target:
            lo = mid
        else:
            hi = mid
    return math.exp(lo)
