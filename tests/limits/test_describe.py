"""Refusals and limits in plain words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gigawatt.limits import Decision, LimitStatus
from gigawatt.limits.describe import limit_label, refusal_message


@pytest.mark.parametrize(
    "name, label",
    [
        ("session-5h", "5-hour limit"),
        ("session-90m", "90-minute limit"),
        ("weekly", "weekly limit"),
        ("weekly-large", "weekly limit for large"),
        ("rolling-24h", "rolling 24-hour limit"),
        ("rolling-24h-a+b", "rolling 24-hour limit for a and b"),
        ("house-rules", "house-rules limit"),
    ],
)
def test_window_labels(name: str, label: str) -> None:
    assert limit_label(LimitStatus(name, "window", 10, 0, 10, None)) == label


def test_bucket_labels_name_the_model() -> None:
    status = LimitStatus("output-tokens", "bucket", 10, 0, 10, None, "small")
    assert limit_label(status) == "output-tokens-per-minute limit for small"


def _refused(name: str, retry_after: float | None) -> Decision:
    status = LimitStatus(name, "window", 10, 10, 0, None)
    return Decision(False, None, (status,), name, retry_after)


NOW = datetime(2026, 11, 30, 9, 5, tzinfo=UTC).timestamp()


def test_a_refusal_says_which_limit_and_when_it_resets() -> None:
    message = refusal_message(_refused("session-5h", 5 * 3600), NOW)
    assert message == "5-hour limit reached; resets at 14:05 UTC"


def test_a_short_wait_is_given_in_seconds_and_a_long_one_with_the_day() -> None:
    assert refusal_message(_refused("session-5h", 2.2), NOW).endswith("retry in 2s")
    assert refusal_message(_refused("weekly", 3 * 86_400), NOW).endswith(
        "resets at Thu 03 Dec 09:05 UTC"
    )


def test_a_refusal_that_waiting_cannot_cure_says_so() -> None:
    assert "can never be admitted" in refusal_message(_refused("weekly", None), NOW)


def test_times_are_given_in_the_zone_asked_for() -> None:
    message = refusal_message(_refused("session-5h", 3600), NOW, "America/Los_Angeles")
    assert message.endswith("resets at 02:05 PST")


def test_a_decision_needs_its_limits_or_a_reading_to_make_them_from() -> None:
    with pytest.raises(ValueError, match="limits or the reading"):
        Decision(True, None)
