"""`gigawatt plan limits`: before and after a site change, and the policy it emits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gigawatt.capacity.fleet import load_fleet
from gigawatt.capacity.limits_cli import plan_demands
from gigawatt.capacity.sites import site_gpus, site_named
from gigawatt.capacity.whatif import assess
from gigawatt.cli import main
from gigawatt.policy import load_policy
from gigawatt.sim.demand_load import load_demand

ROOT = Path(__file__).parents[2]
POLICY = ROOT / "examples" / "policy.toml"
DEMAND = ROOT / "examples" / "demand.toml"

# A fleet a tenth the size of today's example: small enough that limits bind at the peak.
SMALL_FLEET = """
name = "small"
[[pools]]
model = "small"
arch = "llama-3.1-8b"
gpu = "h100-sxm"
precision = "fp8"
gpus_per_replica = 1
gpus = 100
[[pools]]
model = "medium"
arch = "llama-3.3-70b"
gpu = "h200"
precision = "fp8"
gpus_per_replica = 2
gpus = 400
[[pools]]
model = "large"
arch = "llama-3.1-405b"
gpu = "h200"
precision = "fp8"
gpus_per_replica = 8
gpus = 800
"""


@pytest.fixture
def small_fleet(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(SMALL_FLEET)
    return path


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["plan", "limits", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_adding_a_site_raises_what_the_fleet_sustains(
    small_fleet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emitted = tmp_path / "after.toml"
    out = run_json(
        capsys,
        *("--policy", str(POLICY), "--demand", str(DEMAND), "--fleet", str(small_fleet)),
        *("--add-site", "site-300mw", "--emit-policy", str(emitted)),
    )
    before, after = out["before"], out["after"]
    assert after["gpus"] > before["gpus"] + 200_000
    # The small fleet is over the target at the peak with today's limits ...
    assert max(before["peak_utilisation"].values()) > 0.8
    assert before["can_drop_peak"] is False
    assert before["session_scale"] is not None and before["session_scale"] < 1
    # ... and a 300 MW site lets the 5-hour limits double and peak throttling go.
    assert after["can_double_sessions"] is True
    assert after["can_drop_peak"] is True
    for model, util in after["peak_utilisation"].items():
        assert util < before["peak_utilisation"][model]
    assert out["emitted_policy"] == str(emitted)
    assert main(["check-config", str(emitted)]) == 0


def test_the_emitted_policy_keeps_the_fleet_under_the_target(
    small_fleet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emitted = tmp_path / "sustainable.toml"
    out = run_json(
        capsys,
        *("--policy", str(POLICY), "--demand", str(DEMAND), "--fleet", str(small_fleet)),
        *("--emit-policy", str(emitted), "--target", "0.7"),
    )
    assert out["after"] is None
    assert any("window limit" in change for change in out["changes"])
    policy = load_policy(emitted)
    demands = plan_demands(policy, load_demand(DEMAND, policy))
    check = assess(policy, demands, load_fleet(small_fleet), target=0.7)
    assert max(check.peak_utilisation.values()) <= 0.7
    # Rounding down to two significant figures leaves it close to, not far under, the target.
    assert max(check.peak_utilisation.values()) > 0.6
    # The emitted limits are the original ones scaled by one multiplier.
    original = load_policy(POLICY)
    ratios = {
        w.limit / o.limit
        for name in policy.plans
        for w, o in zip(policy.plans[name].windows, original.plans[name].windows, strict=True)
    }
    assert max(ratios) / min(ratios) < 1.01


def test_removing_a_site_takes_its_gpus_away(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.toml"
    big.write_text(SMALL_FLEET.replace("gpus = 800", "gpus = 240_000"))
    out = run_json(
        capsys,
        *("--policy", str(POLICY), "--demand", str(DEMAND), "--fleet", str(big)),
        *("--remove-site", "site-300mw"),
    )
    removed = out["before"]["gpus"] - out["after"]["gpus"]
    gpu, count = site_gpus(site_named("site-300mw"))
    assert gpu == "h200"
    # Each H200 pool gives up whole replicas (2 and 8 GPUs), rounding up: at most 2 + 8 more.
    assert count <= removed < count + 10
    assert out["after"]["capacity"]["large"]["gpus"] < out["before"]["capacity"]["large"]["gpus"]


def test_tables_by_default(small_fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--policy", str(POLICY), "--demand", str(DEMAND), "--fleet", str(small_fleet)]
    assert main(["plan", "limits", *args, "--add-site", "site-300mw"]) == 0
    out = capsys.readouterr().out
    assert "5-hour limits can double" in out
    assert "peak-hour throttling can go" in out
    assert "small +site-300mw" in out
    assert "Window limits per plan" in out
    assert "weekly-large" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--add-site", "site-300"], "did you mean 'site-300mw'"),
        (["--remove-site", "site-300mw"], "cannot lose"),
        (["--target", "1.5"], "target must be in (0, 1]"),
    ],
)
def test_impossible_requests_say_why(
    small_fleet: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    args = ["--policy", str(POLICY), "--demand", str(DEMAND), "--fleet", str(small_fleet)]
    assert main(["plan", "limits", *args, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gigawatt: ")
    assert message in err


def test_a_fleet_missing_a_model_of_the_demand_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(SMALL_FLEET.split('[[pools]]\nmodel = "large"')[0])
    args = ["--policy", str(POLICY), "--demand", str(DEMAND), "--fleet", str(fleet)]
    assert main(["plan", "limits", *args]) == 2
    assert "serves no 'large'" in capsys.readouterr().err


def test_gpu_time_credits_keep_each_plans_allowance_in_requests(
    small_fleet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emitted = tmp_path / "gpu-time.toml"
    args = ["--policy", str(POLICY), "--demand", str(DEMAND), "--fleet", str(small_fleet)]
    out = run_json(capsys, *args, "--emit-policy", str(emitted), "--credits", "gpu-time")
    assert main(["check-config", str(emitted)]) == 0
    policy = load_policy(emitted)
    capacity = out["before"]["capacity"]
    cheapest = min(c["gpu_s_per_input_token"] for c in capacity.values())
    for model, c in capacity.items():
        weights = policy.models[model].credits
        assert weights.input == pytest.approx(c["gpu_s_per_input_token"] / cheapest, rel=1e-2)
        assert weights.output == pytest.approx(c["gpu_s_per_output_token"] / cheapest, rel=1e-2)
    # The larger model's output token costs more GPU-time than the smaller's.
    assert policy.models["large"].credits.output > policy.models["small"].credits.output
    # Same limits in requests: the fleet's load under the emitted policy is what the policy
    # file with the original weights gets (within the rounding of limits and weights).
    demands = plan_demands(policy, load_demand(DEMAND, policy))
    check = assess(policy, demands, load_fleet(small_fleet))
    assert max(check.peak_utilisation.values()) <= 0.8
    assert max(check.peak_utilisation.values()) > 0.7
