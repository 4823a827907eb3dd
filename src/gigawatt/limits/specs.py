"""From a plan, a model and an instant to the exact limits that apply (`BucketSpec`, `WindowSpec`).

Peak hours and calendar-anchored weeks depend on the time; everything else is fixed per (plan,
model). Each computed set is cached with the interval over which it stays true, so the hot path
is a dict lookup and a comparison.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gigawatt.limits.types import BURST_S, BucketSpec, WindowSpec
from gigawatt.policy.model import SECONDS_PER_WEEK, Plan, Policy, WeeklyAnchor, Window

_BUCKETS = (("rpm", "requests"), ("input_tpm", "input-tokens"), ("output_tpm", "output-tokens"))


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """The limits on one (plan, model) from `valid_from` until just before `valid_until`."""

    buckets: tuple[BucketSpec, ...]
    windows: tuple[WindowSpec, ...]
    valid_from: float
    valid_until: float
    windows_by_key: Mapping[str, WindowSpec] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "windows_by_key", {w.key: w for w in self.windows})


def bucket_specs(plan: Plan, model: str) -> tuple[BucketSpec, ...]:
    rate = plan.rate.get(model)
    if rate is None:
        return ()
    specs = []
    for kind, name in _BUCKETS:
        limit = getattr(rate, kind)
        if limit is not None:
            specs.append(BucketSpec(f"b:{model}:{kind}", name, model, kind, limit, BURST_S / limit))
    return tuple(specs)


def anchored_period(anchor: WeeklyAnchor, zone: ZoneInfo, now: float) -> tuple[float, float]:
    """The calendar week containing `now` that starts on `anchor`, local time (DST-correct).

    Worked example: anchor Monday 00:00 UTC, now = Wednesday 2026-12-02 12:00 UTC, gives
    Monday 2026-11-30 00:00 UTC to Monday 2026-12-07 00:00 UTC.
    """
    local = datetime.fromtimestamp(now, zone)
    days_back = (local.weekday() - anchor.weekday) % 7
    day = (local - timedelta(days=days_back)).date()
    start = _wall(day.year, day.month, day.day, anchor.seconds_into_day, zone)
    if start > now:
        day = day - timedelta(days=7)
        start = _wall(day.year, day.month, day.day, anchor.seconds_into_day, zone)
    nxt = day + timedelta(days=7)
    return start, _wall(nxt.year, nxt.month, nxt.day, anchor.seconds_into_day, zone)


def _wall(year: int, month: int, day: int, seconds: int, zone: ZoneInfo) -> float:
    hour, rest = divmod(seconds, 3600)
    return datetime(year, month, day, hour, rest // 60, rest % 60, tzinfo=zone).timestamp()


class LimitBook:
    """Computes and caches the limits on every (plan, model) of one policy."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._zone = ZoneInfo(policy.gateway.timezone)
        self._cache: dict[tuple[str, str], RequestLimits] = {}

    def limits(self, plan: Plan, model: str, now: float) -> RequestLimits:
        cached = self._cache.get((plan.name, model))
        if cached is not None and cached.valid_from <= now < cached.valid_until:
            return cached
        fresh = self._compute(plan, model, now)
        self._cache[(plan.name, model)] = fresh
        return fresh

    def _compute(self, plan: Plan, model: str, now: float) -> RequestLimits:
        valid_from, valid_until = float("-inf"), float("inf")
        factor, relief_at = 1.0, 0.0
        if plan.peak is not None:
            period = plan.peak.period_at(now)
            if period is not None:
                factor = plan.peak.factor
                valid_from, valid_until = period
                # A factor above 1 raises limits in peak; only a lowered limit is "relieved".
                relief_at = period[1] if factor < 1 else 0.0
            else:
                valid_until = plan.peak.next_change(now)
        windows = []
        for window in plan.windows_for(model):
            spec = self._window_spec(window, factor, relief_at, now)
            if spec.mode == "anchored":
                valid_from, valid_until = max(valid_from, spec.start), min(valid_until, spec.end)
            windows.append(spec)
        return RequestLimits(bucket_specs(plan, model), tuple(windows), valid_from, valid_until)

    def _window_spec(
        self, window: Window, factor: float, relief_at: float, now: float
    ) -> WindowSpec:
        key = f"w:{window.name}"
        limit = window.limit * factor
        relief_limit = window.limit if relief_at else 0.0
        if window.kind == "weekly" and window.anchor is not None:
            start, end = anchored_period(window.anchor, self._zone, now)
            return WindowSpec(
                key,
                window.name,
                "anchored",
                end - start,
                limit,
                start,
                end,
                relief_at,
                relief_limit,
            )
        mode = "rolling" if window.kind == "rolling" else "session"
        length_s = SECONDS_PER_WEEK if window.kind == "weekly" else window.length_s
        return WindowSpec(
            key, window.name, mode, float(length_s), limit, 0.0, 0.0, relief_at, relief_limit
        )
