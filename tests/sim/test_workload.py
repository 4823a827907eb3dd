"""Drawing requests from a demand: what the population sends, when, and how big."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gigawatt.errors import PolicyError
from gigawatt.policy.load import load_policy
from gigawatt.sim.demand import Intensity
from gigawatt.sim.demand_load import parse_demand
from gigawatt.sim.trace import read_trace
from gigawatt.sim.workload import build_workload, hour_starts, intensities

ROOT = Path(__file__).resolve().parents[2]
POLICY = load_policy(ROOT / "examples" / "policy.toml")

DEMAND = """
timezone = "UTC"
[plans.pro]
users = 4000
active_share = 0.5
sessions_per_day = 3
requests_per_session = 4
think_time = "30s"
daily = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]
models = { medium = 0.75, large = 0.25 }
thinking = { share = 0.5, tokens = 1000 }
[plans.pro.sizes.medium]
input = { mean = 2000, sigma = 0.5 }
output = { dist = "fixed", value = 300 }
cached = 0.5
[plans.pro.sizes.large]
input = { dist = "exponential", mean = 500, max = 800 }
output = 100
"""


def draw(seed: int = 1, days: int = 1, fraction: float = 1.0, text: str = DEMAND):
    demand = parse_demand(text, "d.toml", POLICY)
    return build_workload(demand, POLICY, days, fraction, np.random.default_rng(seed))


def test_the_same_seed_draws_the_same_requests() -> None:
    a, b, c = draw(1), draw(1), draw(2)
    for field in ("t", "user", "model", "context", "cached", "answer", "thinking"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.t[:100], c.t[:100])


def test_counts_times_and_sizes_follow_the_demand() -> None:
    w = draw()
    # 4,000 users * 0.5 active * 3 sessions * 4 requests = 24,000 expected.
    assert 22_800 < len(w) < 25_200
    assert np.all(np.diff(w.t) >= 0)
    # Sessions start at 12:00 (1/4) or 23:00 (3/4) UTC; their requests follow within minutes.
    hour = ((w.t - w.start) // 3600).astype(int)
    starts_at_noon = np.isin(hour, [12, 13]).mean()
    assert 0.2 < starts_at_noon < 0.3
    medium = w.model == w.model_names.index("medium")
    assert 0.73 < medium.mean() < 0.77
    assert np.all(w.answer[medium] == 300)
    assert 1900 < w.context[medium].mean() < 2100
    assert np.all(w.cached[medium] == w.context[medium] // 2)
    large = ~medium
    assert w.context[large].max() <= 800 and np.all(w.answer[large] == 100)
    assert np.all(w.cached[large] == 0)
    assert 0.48 < (w.thinking > 0).mean() < 0.52
    assert set(np.unique(w.thinking)) == {0, 1000}
    # A session's requests all end by its session end.
    assert np.all(w.session_end >= w.t)


def test_a_sample_of_users_and_at_least_one_per_plan() -> None:
    w = draw(fraction=0.1)
    assert w.sampled_users == {"pro": 400}
    assert 2_000 < len(w) < 2_800
    tiny = draw(fraction=1e-6)
    assert tiny.sampled_users == {"pro": 1}


def test_intensity_has_mean_one() -> None:
    rng = np.random.default_rng(3)
    for spec in (Intensity("lognormal", sigma=1.0), Intensity("pareto", alpha=3.0)):
        values = intensities(spec, 400_000, rng)
        assert abs(values.mean() - 1) < 0.02
    assert np.all(intensities(Intensity("none"), 5, rng) == 1)


def test_hours_are_wall_clock_hours_across_a_dst_change() -> None:
    text = 'timezone = "America/Los_Angeles"\nstart = 2026-03-08\n' + DEMAND.split("\n", 2)[2]
    demand = parse_demand(text, "d.toml", POLICY)
    hours = hour_starts(demand, 1)
    lengths = np.diff(hours[0])
    # 2026-03-08: clocks jump from 02:00 to 03:00, so the day has 23 hours and 02:00 lasts 0.
    assert lengths[2] == 0 and lengths.sum() == 23 * 3600


def test_azure_trace_read_as_published(tmp_path: Path) -> None:
    path = tmp_path / "azure.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,4808,10\n"
        "2023-11-16 18:15:50.9951690,3180,8\n"
        "2023-11-16 18:15:45.0000000,110,27\n"
    )
    trace = read_trace(path)
    assert trace.input_tokens.tolist() == [110, 4808, 3180]
    assert trace.output_tokens.tolist() == [27, 10, 8]
    assert np.allclose(trace.offset_s, [0.0, 1.68059, 5.995169])
    assert trace.accounts is None and trace.models is None


def test_trace_with_accounts_and_models(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "timestamp,input_tokens,output_tokens,account,model\n"
        "100,10,5,alice,small\n101.5,20,6,bob,large\n103,30,7,alice,\n"
    )
    (tmp_path / "d.toml").write_text(
        '[trace]\npath = "t.csv"\nplan = "api-tier-2"\nmodel = "medium"\n'
    )
    demand = parse_demand(
        (tmp_path / "d.toml").read_text(), str(tmp_path / "d.toml"), POLICY, tmp_path
    )
    w = build_workload(demand, POLICY, 1, 1.0, np.random.default_rng(0))
    assert w.accounts == ("trace/alice", "trace/bob")
    assert (w.t - w.start).tolist() == [0.0, 1.5, 3.0]
    assert [w.model_names[m] for m in w.model] == ["small", "large", "medium"]
    assert w.user.tolist() == [0, 1, 0]
    assert not w.closed_loop.any()


def test_trace_problems_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("time,prompt_tokens\n1,2\n")
    with pytest.raises(PolicyError, match="header lacks a column for output"):
        read_trace(path)
    path.write_text("time,prompt_tokens,completion_tokens\n1,2,3\nyesterday,2,3\n4,-1,3\n5,6\n")
    with pytest.raises(PolicyError) as info:
        read_trace(path)
    assert [str(p) for p in info.value.problems] == [
        "line 3: unreadable time 'yesterday'",
        "line 4: expected a token count, got '-1'",
        "line 5: expected 3 columns, got 2",
    ]
