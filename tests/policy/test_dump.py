"""`policy_to_toml` writes text that loads back to an equal policy."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gigawatt.policy import load_default_policy, load_policy, parse_policy
from gigawatt.policy.dump import policy_to_toml
from gigawatt.policy.model import Policy

EXAMPLE = Path(__file__).parents[2] / "examples" / "policy.toml"


def same(a: Policy, b: Policy) -> bool:
    return dataclasses.replace(a, source="") == dataclasses.replace(b, source="")


@pytest.mark.parametrize(
    "policy", [load_policy(EXAMPLE), load_default_policy()], ids=["example", "default"]
)
def test_shipped_policies_round_trip(policy: Policy) -> None:
    text = policy_to_toml(policy)
    assert same(parse_policy(text, "dumped.toml"), policy)


def test_edge_cases_round_trip() -> None:
    policy = parse_policy(
        """
        [gateway]
        listen = "[::1]:9000"
        state = "sqlite:///tmp/x.db"
        state_timeout = "250ms"
        reservation_ttl = "1.5s"
        timezone = "Europe/Paris"

        [[upstreams]]
        name = "engine"
        protocol = "openai"
        url = "http://10.0.0.1:8000/v1"
        models = ["gpt-4.1", "mini"]
        api_key_env = "ENGINE_KEY"

        [models."gpt-4.1"]
        credits = { input = 2.5, output = 10 }

        [models.mini]
        credits = { input = 0.15, output = 0.6, cache_read = 0.075 }

        [plans."team.eu"]
        priority = -1
        models = ["gpt-4.1", "mini"]
        rate = { rpm = 10 }
        model_rates.mini = { input_tpm = 5000 }
        windows = [
            { kind = "rolling", length = "1h30m", limit = 1234.5 },
            { kind = "weekly", limit = 1e9, anchor = "Sun 23:30", models = ["gpt-4.1"] },
        ]
        peak = { hours = "00:00-24:00", days = "weekends", factor = 1.25 }
        degrade = { above_load = 0.75, thinking_budget = 0, fallback_model = "mini" }
        queue_timeout = "0s"
        """,
        "edge.toml",
    )
    text = policy_to_toml(policy, header="Emitted by a test.\nSecond line.")
    assert text.startswith("# Emitted by a test.\n# Second line.\n")
    assert '[plans."team.eu"]' in text
    assert same(parse_policy(text, "dumped.toml"), policy)


def test_wrapping_peak_round_trips() -> None:
    policy = parse_policy(
        """
        [models.m]
        credits = { input = 1, output = 1 }
        [plans.p]
        peak = { hours = "22:00-06:00", days = "Fri-Mon", factor = 0.5 }
        """
    )
    assert 'hours = "22:00-06:00", days = "Mon,Fri,Sat,Sun"' in policy_to_toml(policy)
    assert same(parse_policy(policy_to_toml(policy)), policy)


def test_non_finite_numbers_are_refused() -> None:
    policy = load_default_policy()
    model = next(iter(policy.models.values()))
    broken = dataclasses.replace(
        model, credits=dataclasses.replace(model.credits, output=float("inf"))
    )
    with pytest.raises(ValueError, match="finite"):
        policy_to_toml(dataclasses.replace(policy, models={model.name: broken}))
