"""The planner's questions, for one fleet: what does it serve, and which limits does it sustain?

`assess` answers them for a policy, a demand and a fleet; `gigawatt plan limits` asks it for
the fleet before and after a site is added or removed and prints the two side by side.
`sustainable_policy` turns an assessment into the policy that applies it (`--emit-policy`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

from gigawatt.capacity.fleet import Fleet
from gigawatt.capacity.sustain import (
    UNBOUNDED_SCALE,
    CapacityRps,
    Load,
    ModelDemand,
    PlanDemand,
    Scenario,
    credits_per_request,
    largest_scale,
    weekly_load,
    window_demand,
)
from gigawatt.errors import PlanError
from gigawatt.policy.model import CreditWeights, Plan, Policy, Rate

DEFAULT_TARGET = 0.8


@dataclass(frozen=True, slots=True)
class ModelCapacity:
    """What a fleet's pools for one policy model serve, on the demand's mean request."""

    model: str
    gpus: int
    replicas: int
    input_tokens: float  # the mean request, over every plan's use of the model
    output_tokens: float
    requests_per_s: float
    output_tokens_per_s: float
    credits_per_hour: float  # at the policy's credit weights
    gpu_s_per_input_token: float  # prefill GPU-time, the cost basis of an input credit
    gpu_s_per_output_token: float  # decode GPU-time at the largest batch


@dataclass(frozen=True, slots=True)
class Assessment:
    fleet: str
    gpus: int
    target: float
    capacity: Mapping[str, ModelCapacity]
    peak_utilisation: Mapping[str, float]  # with the policy as it is
    peak_hour: Mapping[str, int]
    served_share: Mapping[str, float]  # of the demand asked, over the week
    window_scale: float  # the largest multiplier on every window limit within the target
    session_scale: float  # the same on session windows (5-hour limits) alone
    weekly_scale: float  # the same on weekly windows alone
    window_scale_without_peak: float  # the same with peak hours dropped
    peak_utilisation_without_peak: Mapping[str, float]
    # Per model: the largest multiplier on its API rate limits, and on the API traffic that
    # grows into them.
    api_scale: Mapping[str, float]

    @property
    def can_double_windows(self) -> bool:
        return self.window_scale >= 2.0

    @property
    def can_double_sessions(self) -> bool:
        return self.session_scale >= 2.0

    @property
    def can_drop_peak(self) -> bool:
        return max(self.peak_utilisation_without_peak.values(), default=0.0) <= self.target


def assess(
    policy: Policy,
    demands: tuple[PlanDemand, ...],
    fleet: Fleet,
    *,
    target: float = DEFAULT_TARGET,
) -> Assessment:
    if not 0 < target <= 1:
        raise PlanError(f"the utilisation target must be in (0, 1], not {target}")
    needed = sorted({m.model for d in demands for m in d.models})
    missing = [m for m in needed if not fleet.pools_for(m)]
    if missing:
        raise PlanError(
            f"fleet {fleet.name!r} serves no {', '.join(map(repr, missing))}; the demand uses "
            f"it; add a [[pools]] entry with model = {missing[0]!r}"
        )
    capacity_rps = _capacity_function(fleet)

    def load(scenario: Scenario) -> Load:
        return weekly_load(policy, demands, capacity_rps, scenario)

    now = load(Scenario())
    without_peak = load(Scenario(peak=False))
    api_scale = {
        model: largest_scale(
            lambda s, m=model: load(Scenario(api_scale=s)).peak_utilisation[m], target
        )
        for model in needed
    }
    return Assessment(
        fleet=fleet.name,
        gpus=fleet.gpus,
        target=target,
        capacity={m: _model_capacity(policy, demands, fleet, m) for m in needed},
        peak_utilisation=now.peak_utilisation,
        peak_hour=now.peak_hour,
        served_share=now.served_share,
        window_scale=largest_scale(lambda s: load(Scenario(window_scale=s)).worst, target),
        session_scale=largest_scale(lambda s: load(Scenario(session_scale=s)).worst, target),
        weekly_scale=largest_scale(lambda s: load(Scenario(weekly_scale=s)).worst, target),
        window_scale_without_peak=largest_scale(
            lambda s: load(Scenario(window_scale=s, peak=False)).worst, target
        ),
        peak_utilisation_without_peak=without_peak.peak_utilisation,
        api_scale=api_scale,
    )


def _capacity_function(fleet: Fleet) -> CapacityRps:
    @functools.cache
    def capacity_rps(model: str, input_tokens: float, output_tokens: float) -> float:
        inp, out = max(0, round(input_tokens)), max(1, round(output_tokens))
        tokens_per_s = sum(
            pool.replicas * pool.throughput(inp, out).output_tokens_per_s
            for pool in fleet.pools_for(model)
        )
        return tokens_per_s / out

    return capacity_rps


def _model_capacity(
    policy: Policy, demands: tuple[PlanDemand, ...], fleet: Fleet, model: str
) -> ModelCapacity:
    uses = [(d, m) for d in demands for m in d.models if m.model == model]
    weights = [d.users * d.active_share * d.requests_per_active_day * m.share for d, m in uses]
    total = sum(weights) or 1.0

    def mean_of(field: str) -> float:
        return sum(w * getattr(m, field) for w, (_, m) in zip(weights, uses, strict=True)) / total

    mean = ModelDemand(
        model=model,
        share=1.0,
        input_tokens=mean_of("input_tokens"),
        output_tokens=mean_of("output_tokens"),
        cache_read_tokens=mean_of("cache_read_tokens"),
    )
    inp, out = max(0, round(mean.input_tokens)), max(1, round(mean.output_tokens))
    pools = fleet.pools_for(model)
    tokens_per_s = 0.0
    prefill_gpu_s = decode_gpu_s = 0.0
    for pool in pools:
        throughput = pool.throughput(inp, out)
        tokens_per_s += pool.replicas * throughput.output_tokens_per_s
        # GPU-time per token, weighted by the pool's share of the model's GPUs.
        prefill_gpu_s += pool.gpus * pool.replica.prefill_s(inp) * pool.replica.gpus / max(inp, 1)
        decode_gpu_s += pool.gpus * pool.replica.gpus / throughput.output_tokens_per_s
    gpus = sum(pool.gpus for pool in pools)
    requests_per_s = tokens_per_s / out
    return ModelCapacity(
        model=model,
        gpus=gpus,
        replicas=sum(pool.replicas for pool in pools),
        input_tokens=mean.input_tokens,
        output_tokens=mean.output_tokens,
        requests_per_s=requests_per_s,
        output_tokens_per_s=tokens_per_s,
        credits_per_hour=requests_per_s * 3600 * credits_per_request(policy, mean),
        gpu_s_per_input_token=prefill_gpu_s / gpus,
        gpu_s_per_output_token=decode_gpu_s / gpus,
    )


def gpu_time_weights(assessment: Assessment) -> dict[str, CreditWeights]:
    """Credit weights in proportion to the GPU-time each kind of token costs on this fleet.

    One credit is the GPU-time of one input token of the cheapest model; an output token costs
    its decode GPU-time in those units. Cache reads cost a tenth of an input token and cache
    writes 1.25 (the policy file's defaults), as prefix caching skips or adds a prefill.
    Example: prefill 14e-6 GPU-s per input token on the cheapest model, 883e-6 GPU-s per output
    token on another: that model's output weight is 883 / 14 = 63.1 credits.
    """
    unit = min(c.gpu_s_per_input_token for c in assessment.capacity.values())
    weights = {}
    for model, capacity in assessment.capacity.items():
        input_weight = _significant(capacity.gpu_s_per_input_token / unit)
        weights[model] = CreditWeights(
            input=input_weight,
            output=_significant(capacity.gpu_s_per_output_token / unit),
            cache_read=_significant(0.1 * input_weight),
            cache_write=_significant(1.25 * input_weight),
        )
    return weights


def reweighted(
    policy: Policy, demands: tuple[PlanDemand, ...], weights: Mapping[str, CreditWeights]
) -> Policy:
    """The policy with new credit weights and every window limit converted to them, so that each
    plan's mean user can make as many requests in each window as before."""
    models = {
        name: dataclasses.replace(model, credits=weights.get(name, model.credits))
        for name, model in policy.models.items()
    }
    new = dataclasses.replace(policy, models=models)
    by_plan = {d.plan: d for d in demands}
    plans = {}
    for name, plan in policy.plans.items():
        demand = by_plan.get(name)
        windows = []
        for window in plan.windows:
            limit = window.limit
            if demand is not None:
                old_credits = window_demand(policy, demand, window)
                new_credits = window_demand(new, demand, window)
                if old_credits > 0:
                    limit = float(_whole(limit * new_credits / old_credits))
            windows.append(dataclasses.replace(window, limit=limit))
        plans[name] = dataclasses.replace(plan, windows=tuple(windows))
    return dataclasses.replace(new, plans=plans)


def sustainable_policy(
    policy: Policy,
    demands: tuple[PlanDemand, ...],
    fleet: Fleet,
    assessment: Assessment,
    *,
    gpu_time_credits: bool = False,
) -> tuple[Policy, list[str]]:
    """The policy with the limits this fleet sustains, and one line per change made.

    Changes are made in order, each checked with the ones before it in place: with
    `gpu_time_credits`, credit weights from GPU-time (limits converted, see `reweighted`); drop
    peak hours when the fleet stays under the target without them; then scale every window
    limit by the largest multiplier that keeps it there (rounded down to two significant
    figures; limits are left alone when no multiplier binds the fleet); then each model's API
    rate buckets likewise.
    """
    target = assessment.target
    capacity_rps = _capacity_function(fleet)
    changes: list[str] = []
    if gpu_time_credits:
        weights = gpu_time_weights(assessment)
        policy = reweighted(policy, demands, weights)
        changes.append(
            "credit weights from GPU-time per token (window limits converted): "
            + ", ".join(f"{m} {w.input:g} in / {w.output:g} out" for m, w in weights.items())
        )
    plans = dict(policy.plans)
    peak = True
    if assessment.can_drop_peak and any(p.peak is not None for p in plans.values()):
        plans = {n: dataclasses.replace(p, peak=None) for n, p in plans.items()}
        peak = False
        changes.append("peak hours dropped: the fleet stays under the target without them")
    current = dataclasses.replace(policy, plans=plans)

    def load(p: Policy, scenario: Scenario) -> Load:
        return weekly_load(p, demands, capacity_rps, scenario)

    window_scale = _round_down(
        largest_scale(lambda s: load(current, Scenario(window_scale=s, peak=peak)).worst, target)
    )
    if 0 < window_scale < UNBOUNDED_SCALE:
        plans = {n: _scale_windows(p, window_scale) for n, p in plans.items()}
        current = dataclasses.replace(policy, plans=plans)
        changes.append(f"every window limit x{window_scale:g}")
    elif window_scale == 0:
        changes.append(
            "window limits unchanged: demand outside any window (API plans) already exceeds "
            "the target"
        )
    else:
        changes.append("window limits unchanged: no window limit binds this fleet")
    for model in sorted(assessment.api_scale):
        scale = _round_down(
            largest_scale(
                lambda s, m=model, p=current: load(p, Scenario(api_scale=s)).peak_utilisation[m],
                target,
            )
        )
        if 0 < scale < UNBOUNDED_SCALE and scale != 1:
            plans = {n: _scale_rates(p, model, scale) for n, p in plans.items()}
            current = dataclasses.replace(policy, plans=plans)
            changes.append(f"API rate limits on {model} x{scale:g}")
    return current, changes


def _round_down(scale: float) -> float:
    """Two significant figures, rounded down, so the emitted limits stay within the target."""
    if scale <= 0 or scale >= UNBOUNDED_SCALE:
        return scale
    digits = 1 - math.floor(math.log10(scale))
    factor = 10.0**digits
    return math.floor(scale * factor) / factor


def _scale_windows(plan: Plan, scale: float) -> Plan:
    windows = tuple(
        dataclasses.replace(w, limit=float(_whole(w.limit * scale))) for w in plan.windows
    )
    return dataclasses.replace(plan, windows=windows)


def _scale_rates(plan: Plan, model: str, scale: float) -> Plan:
    rate = plan.rate.get(model)
    if rate is None:
        return plan
    scaled = Rate(
        rpm=None if rate.rpm is None else _whole(rate.rpm * scale),
        input_tpm=None if rate.input_tpm is None else _whole(rate.input_tpm * scale),
        output_tpm=None if rate.output_tpm is None else _whole(rate.output_tpm * scale),
    )
    return dataclasses.replace(plan, rate={**plan.rate, model: scaled})


def _significant(value: float, figures: int = 3) -> float:
    if value <= 0:
        return value
    return round(value, figures - 1 - math.floor(math.log10(value)))


def _whole(value: float) -> int:
    return max(1, math.floor(value))
