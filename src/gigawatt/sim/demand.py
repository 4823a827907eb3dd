"""The demand a simulation serves: a population per plan, or a trace, as read from a demand file.

Everything here is a plain frozen value checked once by `demand_load.py`; `workload.py` draws
the requests from it. The model, per plan:

- `users` accounts, each with an intensity `w` drawn once (mean 1, heavy-tailed: lognormal or
  Pareto), so a few power users make much of the traffic.
- Each day a user is active with probability `active_share * weekly[weekday]` (capped at 1).
  An active user opens `1 + Poisson((sessions_per_day - 1) * w)` sessions, each starting at an
  hour drawn from the daily curve (local time), uniformly within it.
- A session is a burst: `requests_per_session` requests on average (geometric), separated by
  exponential think times of mean `think_time`.
- Each request picks a model from the plan's mix and draws its prompt and answer sizes from that
  model's distributions; `cached` of the prompt is read from the prompt cache; a `thinking`
  share of requests add reasoning tokens to the answer.

The mean figures the planner needs (`requests_per_active_day`, `hourly`, `weekly`, mean sizes
per model) are properties here, so `gigawatt plan` and `gigawatt simulate` read one file the
same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

DistKind = Literal["lognormal", "fixed", "exponential"]
IntensityKind = Literal["lognormal", "pareto", "none"]


@dataclass(frozen=True, slots=True)
class Dist:
    """A positive size distribution. `mean` is the mean before clipping to [1, max_value]."""

    kind: DistKind
    mean: float
    sigma: float = 0.0  # lognormal only: the standard deviation of the log
    max_value: float = math.inf


@dataclass(frozen=True, slots=True)
class Intensity:
    """Per-user intensity, scaled to mean 1: lognormal(sigma), Pareto(alpha) or none (all 1)."""

    kind: IntensityKind
    sigma: float = 0.0
    alpha: float = 0.0

    @property
    def lognormal_sigma(self) -> float:
        """The sigma of a lognormal with the same mean and variance (for the planner's formulas).

        A Pareto with alpha > 2 has squared coefficient of variation 1 / (alpha * (alpha - 2));
        a lognormal's is exp(sigma^2) - 1. With alpha <= 2 the variance is infinite, and the
        planner gets sigma = 2 (a coefficient of variation of 7.3) as a stand-in.
        """
        if self.kind == "lognormal":
            return self.sigma
        if self.kind == "none":
            return 0.0
        if self.alpha <= 2:
            return 2.0
        return math.sqrt(math.log1p(1.0 / (self.alpha * (self.alpha - 2.0))))


@dataclass(frozen=True, slots=True)
class Sizes:
    """Request sizes on one model: prompt tokens (`input`, the whole context sent) and answer."""

    input: Dist
    output: Dist
    cached: float = 0.0  # share of the prompt read from the prompt cache


@dataclass(frozen=True, slots=True)
class Thinking:
    """A `share` of requests ask for extended thinking, adding `tokens` to the answer."""

    share: float
    tokens: Dist


@dataclass(frozen=True, slots=True)
class PlanDemand:
    plan: str
    users: int
    active_share: float
    intensity: Intensity
    sessions_per_day: float  # per active user-day, for the mean user
    requests_per_session: float
    think_time_s: float
    daily: tuple[float, ...]  # 24 relative weights of session starts, local time
    weekly: tuple[float, ...]  # 7 relative activity factors, Monday first
    models: Mapping[str, float]  # model -> share of the plan's requests (sums to 1)
    sizes: Mapping[str, Sizes]  # for every model in `models`
    max_tokens: int | None  # what clients send as max_tokens; None: they send none
    thinking: Thinking | None

    @property
    def requests_per_active_day(self) -> float:
        return self.sessions_per_day * self.requests_per_session

    @property
    def hourly(self) -> tuple[float, ...]:
        """The share of a day's requests starting in each local hour (sums to 1)."""
        total = sum(self.daily)
        return tuple(v / total for v in self.daily)

    @property
    def weekly_factors(self) -> tuple[float, ...]:
        """`weekly` scaled to average 1."""
        mean = sum(self.weekly) / 7
        return tuple(v / mean for v in self.weekly)

    def mean_input_tokens(self, model: str) -> float:
        return _clipped_mean(self.sizes[model].input)

    def mean_cached_tokens(self, model: str) -> float:
        return self.sizes[model].cached * self.mean_input_tokens(model)

    def mean_output_tokens(self, model: str) -> float:
        """Answer tokens, thinking included, before any max_tokens cap."""
        out = _clipped_mean(self.sizes[model].output)
        if self.thinking is not None:
            out += self.thinking.share * _clipped_mean(self.thinking.tokens)
        return out


@dataclass(frozen=True, slots=True)
class TraceSpec:
    """A trace file replayed as demand: every row is one request of one account on `plan`."""

    path: str
    plan: str
    model: str | None  # the model of rows that name none
    accounts: int  # accounts to spread rows over when the trace names none


@dataclass(frozen=True, slots=True)
class Retry:
    """What a refused user does: retry after retry-after with `probability`, else give up."""

    probability: float
    max_wait_s: float  # a longer retry-after is given up on
    max_attempts: int  # retries of one request at most


@dataclass(frozen=True, slots=True)
class Demand:
    source: str
    name: str
    timezone: str
    start: date  # the first simulated day; days begin at local midnight
    retry: Retry
    plans: Mapping[str, PlanDemand]
    trace: TraceSpec | None

    @property
    def users(self) -> int:
        return sum(p.users for p in self.plans.values())


def _clipped_mean(dist: Dist) -> float:
    """The mean of `dist` clipped to [1, max_value] (closed forms; no sampling).

    Lognormal with median m = exp(mu): E[min(X, c)] = e^(mu + s^2/2) Phi((ln c - mu - s^2)/s)
    + c (1 - Phi((ln c - mu)/s)); the lower clip at 1 changes the mean by under 0.1% for the
    sizes in question and is left out. Exponential: E[min(X, c)] = mean (1 - e^(-c/mean)).
    """
    c = dist.max_value
    if dist.kind == "fixed":
        return max(1.0, min(dist.mean, c))
    if dist.kind == "exponential":
        return dist.mean if math.isinf(c) else dist.mean * -math.expm1(-c / dist.mean)
    if math.isinf(c) or dist.sigma == 0:
        return min(dist.mean, c)
    s = dist.sigma
    mu = math.log(dist.mean) - s * s / 2
    phi = _phi
    return dist.mean * phi((math.log(c) - mu - s * s) / s) + c * (1 - phi((math.log(c) - mu) / s))


def _phi(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))
