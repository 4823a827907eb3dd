"""`degrade`: what a plan's request keeps when its pool is busy (gateway and simulator alike)."""

from __future__ import annotations

from gigawatt.policy.model import Degrade
from gigawatt.policy.overload import Degraded, degrade

RULE = Degrade(above_load=0.8, max_tokens=2048, thinking_budget=1024, fallback_model="small")


def test_every_part_applies_where_it_changes_something() -> None:
    assert degrade(RULE, "large", 4096, 8000) == Degraded(
        "small", 2048, 1024, ("model=small", "max_tokens=2048", "thinking_budget=1024")
    )


def test_a_request_naming_no_max_tokens_is_capped() -> None:
    assert degrade(RULE, "small", None, None) == Degraded("small", 2048, None, ("max_tokens=2048",))


def test_nothing_to_change_means_no_notes() -> None:
    # Already on the fallback model, under both caps, so nothing is said to be degraded.
    assert degrade(RULE, "small", 100, 500) == Degraded("small", 100, 500, ())


def test_a_rule_without_caps_only_moves_the_model() -> None:
    rule = Degrade(above_load=0.5, fallback_model="small")
    assert degrade(rule, "medium", None, 9000) == Degraded("small", None, 9000, ("model=small",))
