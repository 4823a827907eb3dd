"""The shipped example and default policies load and keep the relations they promise."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest
from rich.console import Console

from gigawatt.policy import Policy, Rate, load_default_policy, load_policy
from gigawatt.policy.summary import render_policy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"
SUBSCRIPTIONS = ("free", "pro", "max-5x", "max-20x", "team", "enterprise")
API_TIERS = ("api-tier-1", "api-tier-2", "api-tier-3")


@pytest.fixture(scope="module")
def example() -> Policy:
    return load_policy(EXAMPLE)


def test_example_plans(example: Policy) -> None:
    assert tuple(example.plans) == SUBSCRIPTIONS + API_TIERS
    assert tuple(example.models) == ("small", "medium", "large")


def test_models_differ_in_cost(example: Policy) -> None:
    small, medium, large = (example.models[m].credits for m in ("small", "medium", "large"))
    assert small.output < medium.output < large.output


def test_subscription_priorities_rise_by_plan(example: Policy) -> None:
    priorities = [example.plans[name].priority for name in SUBSCRIPTIONS]
    assert priorities == sorted(priorities) and len(set(priorities)) == len(priorities)


def test_every_subscription_has_a_5h_session_and_a_weekly_cap(example: Policy) -> None:
    for name in SUBSCRIPTIONS:
        kinds = {(w.kind, w.length_s, w.models) for w in example.plans[name].windows}
        assert ("session", 5 * 3600, ()) in kinds, name
        assert ("weekly", 7 * 86_400, ()) in kinds, name


@pytest.mark.parametrize("name", ["pro", "max-5x", "max-20x"])
def test_personal_paid_plans_cap_the_large_model_weekly(example: Policy, name: str) -> None:
    names = {w.name for w in example.plans[name].windows}
    assert "weekly-large" in names


@pytest.mark.parametrize(("name", "times"), [("max-5x", 5), ("max-20x", 20)])
def test_max_plans_are_multiples_of_pro(example: Policy, name: str, times: int) -> None:
    pro = {w.name: w.limit for w in example.plans["pro"].windows}
    other = {w.name: w.limit for w in example.plans[name].windows}
    assert other == {window: limit * times for window, limit in pro.items()}


def test_peak_hours_on_free_and_pro_only(example: Policy) -> None:
    for name, plan in example.plans.items():
        if name in ("free", "pro"):
            assert plan.peak is not None
            assert (plan.peak.start_s, plan.peak.end_s) == (5 * 3600, 11 * 3600)
            assert plan.peak.days == frozenset(range(5))
            assert (plan.peak.timezone, plan.peak.factor) == ("America/Los_Angeles", 0.5)
        else:
            assert plan.peak is None, name


def test_free_plan_degrades(example: Policy) -> None:
    degrade = example.plans["free"].degrade
    assert degrade is not None and degrade.fallback_model == "small"
    assert "large" not in example.plans["free"].models


def test_api_tiers_have_only_per_model_rates(example: Policy) -> None:
    for name in API_TIERS:
        plan = example.plans[name]
        assert plan.windows == () and plan.peak is None and plan.degrade is None
        for model in example.models:
            rate = plan.rate[model]
            assert None not in (rate.rpm, rate.input_tpm, rate.output_tpm), (name, model)
        large, medium = plan.rate["large"], plan.rate["medium"]
        assert large.input_tpm < medium.input_tpm and large.output_tpm < medium.output_tpm  # type: ignore[operator]


@pytest.mark.parametrize("field", ["rpm", "input_tpm", "output_tpm"])
@pytest.mark.parametrize("model", ["small", "medium", "large"])
def test_api_rates_rise_by_tier(example: Policy, model: str, field: str) -> None:
    values = [getattr(example.plans[tier].rate[model], field) for tier in API_TIERS]
    assert values == sorted(values) and values[0] < values[-1]


def test_default_policy_is_the_example_on_sqlite(example: Policy) -> None:
    default = load_default_policy()
    assert default.gateway.state == "sqlite:///./.gigawatt/state.db"
    assert [u.protocol for u in default.upstreams] == ["sim"]
    # Apart from where state lives, the two files must not drift apart.
    same = dataclasses.replace(
        default,
        source=example.source,
        gateway=dataclasses.replace(default.gateway, state=example.gateway.state),
    )
    assert same == example


def test_summary_names_every_plan_and_model(example: Policy) -> None:
    out = io.StringIO()
    Console(file=out, width=100).print(render_policy(example))
    text = out.getvalue()
    for name in (*example.plans, *example.models, "sim", "America/Los_Angeles", "weekly-large"):
        assert name in text
    assert "session-5h 5M" in text
    assert "2,000" in text  # api-tier-3 medium rpm


def test_summary_of_a_policy_without_rates_or_peaks() -> None:
    from gigawatt.policy import parse_policy

    policy = parse_policy(
        '[models.m]\ncredits = { input = 1, output = 2 }\n[plans.only]\nmodels = ["m"]\n'
    )
    assert dict(policy.plans["only"].rate) == {"m": Rate()}
    out = io.StringIO()
    Console(file=out, width=80).print(render_policy(policy))
    text = out.getvalue()
    assert "only" in text and "(none)" in text
    assert "rate limits" not in text and "peak hours" not in text
