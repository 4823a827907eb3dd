"""The demand-to-limits arithmetic, checked against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from gigawatt.capacity.sustain import (
    UNBOUNDED_SCALE,
    ModelDemand,
    PlanDemand,
    Scenario,
    busiest_hours_share,
    capped_mean,
    largest_scale,
    weekly_load,
    window_demand,
)
from gigawatt.policy import parse_policy

FLAT_DAY = (1 / 24,) * 24
FLAT_WEEK = (1.0,) * 7

POLICY = parse_policy(
    """
    [models.m]
    credits = { input = 1, output = 5 }
    [plans.open]
    [plans.capped]
    windows = [ { kind = "session", length = "5h", limit = 1000 } ]
    [plans.peaky]
    windows = [ { kind = "session", length = "5h", limit = 1000 } ]
    peak = { hours = "00:00-24:00", days = "Mon", timezone = "UTC", factor = 0.5 }
    [plans.api]
    model_rates.m = { rpm = 2 }
    """
)


def demand(plan: str, *, sigma: float = 0.0, users: float = 3600.0) -> PlanDemand:
    return PlanDemand(
        plan=plan,
        users=users,
        active_share=0.5,
        requests_per_active_day=48,
        intensity_sigma=sigma,
        hourly=FLAT_DAY,
        weekly=FLAT_WEEK,
        timezone="UTC",
        models=(ModelDemand("m", 1.0, input_tokens=100, output_tokens=20),),
    )


def constant_capacity(rps: float):
    return lambda model, input_tokens, output_tokens: rps


def test_capped_mean_hand_values() -> None:
    # sigma = 1, c = 1: Phi(-0.5) + 1 * (1 - Phi(0.5)) = 0.308538 + 0.308538.
    assert capped_mean(1.0, 1.0) == pytest.approx(0.617075, abs=1e-6)
    # No spread: everyone asks exactly the mean.
    assert capped_mean(0.0, 0.4) == 0.4
    assert capped_mean(0.0, 3.0) == 1.0
    assert capped_mean(2.0, math.inf) == 1.0
    assert capped_mean(2.0, 0.0) == 0.0
    # A very high cap serves nearly everything; a low one about cap (almost nobody is under it).
    assert capped_mean(1.0, 1e6) == pytest.approx(1.0, abs=1e-6)
    assert capped_mean(0.5, 1e-3) == pytest.approx(1e-3, rel=1e-6)


def test_busiest_hours_share() -> None:
    assert busiest_hours_share(FLAT_DAY, 5) == pytest.approx(5 / 24)
    peaked = tuple([0.0] * 23 + [1.0])  # everything at 23:00
    assert busiest_hours_share(peaked, 1) == 1.0
    # 30 hours: one whole day plus the busiest 6 hours.
    assert busiest_hours_share(peaked, 30) == 2.0
    # Half an hour of the busiest hour.
    assert busiest_hours_share(peaked, 0.5) == 0.5


def test_uncapped_utilisation_is_demand_over_capacity() -> None:
    # 3600 users * 0.5 active * 48 requests / 24 h = 3600 requests/h = 1 request/s.
    load = weekly_load(POLICY, (demand("open"),), constant_capacity(4.0))
    assert load.peak_utilisation["m"] == pytest.approx(0.25)
    assert load.served_share["m"] == 1.0


def test_session_window_caps_the_mean_user() -> None:
    # A mean user asks 48 * 5/24 = 10 requests in 5 hours, 10 * (100 + 5 * 20) = 2000 credits;
    # the limit is 1000, so with no spread everyone is served half: 0.5 request/s of 4.
    assert window_demand(POLICY, demand("capped"), POLICY.plans["capped"].windows[0]) == 2000
    load = weekly_load(POLICY, (demand("capped"),), constant_capacity(4.0))
    assert load.peak_utilisation["m"] == pytest.approx(0.125)
    assert load.served_share["m"] == pytest.approx(0.5)
    doubled = weekly_load(
        POLICY, (demand("capped"),), constant_capacity(4.0), Scenario(window_scale=2.0)
    )
    assert doubled.peak_utilisation["m"] == pytest.approx(0.25)


def test_peak_factor_applies_in_peak_hours_only() -> None:
    # Mondays the limit is halved: a quarter of demand served; other days half of it.
    load = weekly_load(POLICY, (demand("peaky"),), constant_capacity(4.0))
    assert load.served_share["m"] == pytest.approx((0.25 + 6 * 0.5) / 7)
    assert load.peak_hour["m"] >= 24  # the busiest hour is not on Monday
    no_peak = weekly_load(POLICY, (demand("peaky"),), constant_capacity(4.0), Scenario(peak=False))
    assert no_peak.served_share["m"] == pytest.approx(0.5)


def test_rate_bucket_caps_api_users() -> None:
    # Per user: 48 requests/day * 1/24 per hour / 60 = 1/30 request per minute against rpm = 2:
    # a cap at 60x the mean, nothing refused with no spread.
    load = weekly_load(POLICY, (demand("api"),), constant_capacity(4.0))
    assert load.served_share["m"] == 1.0
    # Scale the bucket to 1/120 of itself: the cap is half the mean.
    squeezed = weekly_load(
        POLICY, (demand("api"),), constant_capacity(4.0), Scenario(api_scale=1 / 120)
    )
    assert squeezed.served_share["m"] == pytest.approx(0.5)


def test_largest_scale_finds_the_crossing() -> None:
    assert largest_scale(lambda s: 0.1 * s, 0.8) == pytest.approx(8.0, rel=2e-3)
    assert largest_scale(lambda s: 0.5, 0.8) == UNBOUNDED_SCALE
    assert largest_scale(lambda s: 0.9 + s, 0.8) == 0.0


def test_largest_scale_of_a_capped_plan() -> None:
    # Capacity 1 request/s, demand 1 request/s, limits serve half: the target 0.8 is reached
    # at a scale of 1.6 (with no spread the served share is exactly the scale times one half).
    def load_at(scale: float) -> float:
        return weekly_load(
            POLICY, (demand("capped"),), constant_capacity(1.0), Scenario(window_scale=scale)
        ).worst

    assert largest_scale(load_at, 0.8) == pytest.approx(1.6, rel=2e-3)


def test_api_traffic_grows_with_its_limits_and_window_plans_do_not() -> None:
    # 1 request/s on a 4 request/s fleet; doubling the API limits doubles API traffic (nobody
    # reaches rpm = 2 at 1/30 a minute, so it is all served), not the window plan's.
    both = (demand("api"), demand("open"))
    base = weekly_load(POLICY, both, constant_capacity(4.0))
    grown = weekly_load(POLICY, both, constant_capacity(4.0), Scenario(api_scale=2.0))
    assert base.peak_utilisation["m"] == pytest.approx(0.5)
    assert grown.peak_utilisation["m"] == pytest.approx(0.75)


def test_kind_multipliers_touch_their_own_windows_only() -> None:
    # The capped plan has a session window and no weekly one.
    base = weekly_load(POLICY, (demand("capped"),), constant_capacity(4.0))
    weekly = weekly_load(
        POLICY, (demand("capped"),), constant_capacity(4.0), Scenario(weekly_scale=3.0)
    )
    session = weekly_load(
        POLICY, (demand("capped"),), constant_capacity(4.0), Scenario(session_scale=1.5)
    )
    assert weekly.peak_utilisation == base.peak_utilisation
    assert session.peak_utilisation["m"] == pytest.approx(1.5 * base.peak_utilisation["m"])
