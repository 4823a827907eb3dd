"""The demand file: what it means, and every mistake reported with its key path."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gigawatt.errors import PolicyError
from gigawatt.policy.load import load_policy
from gigawatt.sim.demand import Dist, Intensity, _clipped_mean
from gigawatt.sim.demand_load import load_demand, parse_demand

ROOT = Path(__file__).resolve().parents[2]
POLICY = load_policy(ROOT / "examples" / "policy.toml")

MINIMAL = """
[sizes.small]
input = { mean = 1000, sigma = 1.0 }
output = { mean = 200, sigma = 0.5 }

[plans.free]
users = 1000
active_share = 0.5
models = { small = 1 }
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        parse_demand(text, "d.toml", POLICY)
    return [str(p) for p in info.value.problems]


def test_the_example_loads_with_the_planners_means() -> None:
    demand = load_demand(ROOT / "examples" / "demand.toml", POLICY)
    assert demand.timezone == "America/Los_Angeles"
    assert demand.start.weekday() == 0
    pro = demand.plans["pro"]
    # 2.5 sessions of 8 requests.
    assert pro.requests_per_active_day == 20
    assert math.isclose(sum(pro.hourly), 1.0)
    assert math.isclose(sum(pro.weekly_factors) / 7, 1.0)
    assert math.isclose(sum(pro.models.values()), 1.0)
    # The plan's own medium sizes replace the defaults key by key: cached 0.6, output default.
    assert pro.sizes["medium"].cached == 0.6
    assert pro.sizes["medium"].output == demand.plans["free"].sizes["medium"].output
    assert demand.plans["max-20x"].intensity == Intensity("pareto", alpha=1.8)


def test_minimal_defaults() -> None:
    demand = parse_demand(MINIMAL, "d.toml", POLICY)
    free = demand.plans["free"]
    assert demand.timezone == "UTC"  # the policy's
    assert free.daily == (1.0,) * 24 and free.weekly == (1.0,) * 7
    assert free.intensity == Intensity("lognormal", sigma=1.0)
    assert free.think_time_s == 60.0
    assert demand.retry.probability == 0.7 and demand.retry.max_wait_s == 6 * 3600


def test_every_problem_is_reported_with_its_key_path() -> None:
    found = problems(
        """
start = "monday"
[retry]
probablity = 0.5
[curves.day]
daily = [1, 2, 3]
[sizes.small]
input = { dist = "fixed", value = 100, sigma = 1 }
output = 0
[plans.pr0]
users = 1
active_share = 0.5
[plans.free]
users = -1
active_share = 1.5
curve = "night"
models = { small = 1, huge = 1 }
[plans.pro]
users = 1
active_share = 0.1
models = { large = 1 }
"""
    )
    joined = "\n".join(found)
    assert "start: expected a date such as 2026-06-01, got string 'monday'" in joined
    assert "retry.probablity: unknown key 'probablity'; did you mean 'probability'?" in joined
    assert "curves.day.daily: expected an array of 24 numbers" in joined
    assert "sizes.small.input.sigma: only a lognormal takes sigma, not 'fixed'" in joined
    assert "sizes.small.output: must be at least 1 token, got 0" in joined
    assert "plans.free.users: must be at least 0, got -1" in joined
    assert "plans.free.active_share: expected a share between 0 and 1, got 1.5" in joined
    assert "plans.free.curve: unknown curve 'night'" in joined
    assert "plans.free.models.huge: unknown model 'huge'" in joined
    assert "plans.pro.sizes: no request sizes for model 'large'" in joined
    assert "plans.pr0: unknown plan 'pr0'; did you mean 'pro'?" in joined


def test_sizes_missing_a_key_name_the_table_to_fix() -> None:
    found = problems(
        """
[sizes.small]
input = 100
[plans.free]
users = 1
active_share = 0.5
models = { small = 1 }
[plans.free.sizes.medium]
input = 5
"""
    )
    assert "sizes.small.output: missing (required)" in found
    assert "plans.free.sizes.medium: model 'medium' is not in this plan's models mix" in found


def test_a_model_the_plan_lacks_is_refused() -> None:
    found = problems(MINIMAL.replace("small = 1", "large = 1"))
    assert "plans.free.models.large: model 'large' is not one of this plan's models" in found


def test_trace_paths_are_relative_to_the_demand_file(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,5\n")
    path = tmp_path / "d.toml"
    path.write_text('[trace]\npath = "t.csv"\nplan = "api-tier-1"\nmodel = "small"\n')
    demand = load_demand(path, POLICY)
    assert demand.trace is not None and demand.trace.path == str(tmp_path / "t.csv")
    path.write_text('[trace]\npath = "none.csv"\nplan = "api-teir-1"\n')
    with pytest.raises(PolicyError) as info:
        load_demand(path, POLICY)
    text = "\n".join(str(p) for p in info.value.problems)
    assert "trace.path: no such file" in text
    assert "trace.plan: unknown plan 'api-teir-1'; did you mean 'api-tier-1'?" in text


def test_an_empty_demand_says_what_is_missing() -> None:
    assert problems('name = "x"') == [
        "plans: no demand: add at least one [plans.NAME] table or a [trace]"
    ]


def test_clipped_lognormal_mean() -> None:
    # Unclipped, the mean is the mean.
    assert _clipped_mean(Dist("lognormal", 1000.0, 1.0)) == 1000.0
    # mean 1000, sigma 1: mu = ln 1000 - 0.5 = 6.4078; clip at the median e^mu = 606.5:
    # E = 1000 * Phi(-1) + 606.5 * (1 - Phi(0)) = 158.66 + 303.27 = 461.9.
    clipped = _clipped_mean(Dist("lognormal", 1000.0, 1.0, math.exp(math.log(1000) - 0.5)))
    assert math.isclose(clipped, 461.9, rel_tol=1e-3)
    # Exponential mean 100 clipped at 100: 100 * (1 - e^-1) = 63.21.
    assert math.isclose(_clipped_mean(Dist("exponential", 100.0, 0.0, 100.0)), 63.21, rel_tol=1e-3)


def test_pareto_intensity_gives_the_planner_a_lognormal_sigma() -> None:
    # alpha = 3: CV^2 = 1 / (3 * 1) = 1/3; sigma = sqrt(ln(4/3)) = 0.5364.
    assert math.isclose(Intensity("pareto", alpha=3.0).lognormal_sigma, 0.5364, rel_tol=1e-3)
    assert Intensity("pareto", alpha=1.5).lognormal_sigma == 2.0
