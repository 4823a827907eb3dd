"""Building a policy from TOML: defaults, derived values and immutability."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest

from gigawatt.errors import PolicyError
from gigawatt.policy import Rate, WeeklyAnchor, load_policy, parse_policy
from gigawatt.policy.load import key_path

MINIMAL = """
[[upstreams]]
name = "sim"
protocol = "sim"
models = ["small", "large"]

[models.small]
credits = { input = 1, output = 5 }

[models.large]
credits = { input = 15, output = 75, cache_read = 3, cache_write = 20 }

[plans.pro]
"""


def test_minimal_policy_takes_every_default() -> None:
    policy = parse_policy(MINIMAL, "minimal.toml")
    assert policy.source == "minimal.toml"
    g = policy.gateway
    assert (g.host, g.port, g.state, g.timezone) == ("127.0.0.1", 8080, "memory://", "UTC")
    assert g.on_state_error == "closed"
    assert g.state_timeout_s == 2.0
    assert g.reservation_ttl_s == 600.0
    assert g.max_body_bytes == 4_000_000
    assert g.admin_token_env == "GIGAWATT_ADMIN_TOKEN"

    (sim,) = policy.upstreams
    assert sim.url is None
    assert (sim.max_inflight, sim.timeout_s, sim.forward_priority) == (64, 600.0, False)
    assert sim.api_key_env is None

    plan = policy.plans["pro"]
    assert plan.priority == 0
    assert plan.models == ("small", "large")
    assert dict(plan.rate) == {"small": Rate(), "large": Rate()}
    assert plan.windows == ()
    assert plan.peak is None and plan.degrade is None
    assert plan.queue_timeout_s == 30.0
    assert plan.output_estimate == 1024


def test_cache_weights_default_from_input() -> None:
    policy = parse_policy(MINIMAL)
    small = policy.models["small"].credits
    assert (small.cache_read, small.cache_write) == pytest.approx((0.1, 1.25))
    large = policy.models["large"].credits
    assert (large.cache_read, large.cache_write) == (3.0, 20.0)


def test_gateway_keys() -> None:
    text = (
        """
[gateway]
listen = "[::1]:9000"
state = "redis://cache:6379/2"
timezone = "Europe/Paris"
on_state_error = "open"
state_timeout = "250ms"
reservation_ttl = "1h"
max_body_bytes = 1_000
admin_token_env = "ADMIN"
"""
        + MINIMAL
    )
    g = parse_policy(text).gateway
    assert (g.host, g.port, g.state, g.timezone) == (
        "::1",
        9000,
        "redis://cache:6379/2",
        "Europe/Paris",
    )
    assert (g.on_state_error, g.state_timeout_s, g.reservation_ttl_s) == ("open", 0.25, 3600.0)
    assert (g.max_body_bytes, g.admin_token_env) == (1_000, "ADMIN")


def test_rate_merges_model_rates_over_the_plan_rate() -> None:
    text = MINIMAL.replace(
        "[plans.pro]",
        """[plans.pro]
rate = { rpm = 50, input_tpm = 30_000 }
model_rates = { large = { rpm = 10, output_tpm = 2_000 } }""",
    )
    rate = parse_policy(text).plans["pro"].rate
    assert rate["small"] == Rate(rpm=50, input_tpm=30_000)
    assert rate["large"] == Rate(rpm=10, input_tpm=30_000, output_tpm=2_000)


def test_window_defaults_and_names() -> None:
    text = MINIMAL.replace(
        "[plans.pro]",
        """[plans.pro]
windows = [
    { kind = "session", length = "5h", limit = 1_000 },
    { kind = "rolling", length = "24h", limit = 2_000 },
    { kind = "weekly", limit = 10_000 },
    { kind = "weekly", limit = 5_000, models = ["large"] },
    { kind = "session", length = "1h30m", limit = 500, models = ["small", "large"] },
    { kind = "weekly", length = "7d", limit = 9_000, anchor = "Mon 09:30", name = "billing" },
]""",
    )
    windows = parse_policy(text).plans["pro"].windows
    assert [w.name for w in windows] == [
        "session-5h",
        "rolling-24h",
        "weekly",
        "weekly-large",
        "session-1h30m-small+large",
        "billing",
    ]
    assert [w.length_s for w in windows] == [18_000, 86_400, 604_800, 604_800, 5_400, 604_800]
    assert windows[3].models == ("large",) and windows[0].models == ()
    assert windows[5].anchor == WeeklyAnchor(weekday=0, seconds_into_day=9 * 3600 + 1800)
    assert all(isinstance(w.limit, float) for w in windows)


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("Mon-Fri", {0, 1, 2, 3, 4}),
        ("Mon,Wed,Fri", {0, 2, 4}),
        ("mon-wed,sat", {0, 1, 2, 5}),
        ("Fri-Mon", {4, 5, 6, 0}),
        ("daily", set(range(7))),
        ("all", set(range(7))),
        ("weekends", {5, 6}),
        ("Sunday", {6}),
    ],
)
def test_peak_days(days: str, expected: set[int]) -> None:
    text = MINIMAL.replace(
        "[plans.pro]",
        f'[plans.pro]\npeak = {{ hours = "05:00-11:00", days = "{days}", factor = 0.5 }}',
    )
    assert parse_policy(text).plans["pro"].peak.days == frozenset(expected)  # type: ignore[union-attr]


def test_peak_defaults_to_gateway_zone_and_every_day() -> None:
    text = '[gateway]\ntimezone = "Asia/Tokyo"\n' + MINIMAL.replace(
        "[plans.pro]", '[plans.pro]\npeak = { hours = "22:00-02:00", factor = 1.5 }'
    )
    peak = parse_policy(text).plans["pro"].peak
    assert peak is not None
    assert (peak.start_s, peak.end_s, peak.timezone, peak.factor) == (
        79_200,
        7_200,
        "Asia/Tokyo",
        1.5,
    )
    assert peak.days == frozenset(range(7))


def test_whole_day_peak() -> None:
    text = MINIMAL.replace(
        "[plans.pro]", '[plans.pro]\npeak = { hours = "00:00-24:00", days = "Sat", factor = 0.5 }'
    )
    peak = parse_policy(text).plans["pro"].peak
    assert peak is not None and (peak.start_s, peak.end_s) == (0, 0)


def test_degrade() -> None:
    text = MINIMAL.replace(
        "[plans.pro]",
        "[plans.pro]\n"
        'degrade = { above_load = 0.9, thinking_budget = 0, fallback_model = "small" }',
    )
    degrade = parse_policy(text).plans["pro"].degrade
    assert degrade is not None
    assert (degrade.above_load, degrade.max_tokens, degrade.thinking_budget) == (0.9, None, 0)
    assert degrade.fallback_model == "small"


def test_policy_is_immutable() -> None:
    policy = parse_policy(MINIMAL)
    assert isinstance(policy.models, MappingProxyType)
    assert isinstance(policy.plans, MappingProxyType)
    assert isinstance(policy.plans["pro"].rate, MappingProxyType)
    with pytest.raises(TypeError):
        policy.plans["free"] = policy.plans["pro"]  # type: ignore[index]
    with pytest.raises(TypeError):
        policy.plans["pro"].rate["small"] = Rate(rpm=1)  # type: ignore[index]
    with pytest.raises(AttributeError):
        policy.gateway.port = 1  # type: ignore[misc]


def test_load_policy_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    assert load_policy(path).source == str(path)


def test_load_policy_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.source == str(path)
    assert [p.reason for p in info.value.problems] == ["no such file"]


def test_load_policy_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(path)


def test_key_path_quotes_keys_that_are_not_bare() -> None:
    assert key_path("plans", "max-5x") == "plans.max-5x"
    assert key_path("plans", "my plan") == 'plans."my plan"'
    assert key_path("", "gateway") == "gateway"
