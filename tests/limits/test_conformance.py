"""What every store must decide, given the same calls at the same instants."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from gigawatt.limits import Decision, Limiter, LimitStatus, Usage
from gigawatt.policy.model import Peak, Rate, WeeklyAnchor, Window

from .conftest import MakeLimiter
from .policies import WEEK_S, make_policy

T0 = datetime(2026, 11, 30, tzinfo=UTC).timestamp()  # a Monday, 00:00 UTC
HOUR = 3600.0
SMALL = Usage(100, 100)  # 100*1 + 100*5 = 600 credits on "small"


def by_name(statuses: tuple[LimitStatus, ...], name: str, model: str | None = None) -> LimitStatus:
    return next(s for s in statuses if s.name == name and (model is None or s.model == model))


def use(limiter: Limiter, usage: Usage, now: float, model: str = "small") -> Decision:
    """Admit and reconcile at once, as a request that used exactly its estimate."""
    decision = limiter.admit("a", "pro", model, usage, now)
    if decision.reservation is not None:
        assert limiter.reconcile(decision.reservation, usage, now)
    return decision


def test_a_bucket_bursts_one_minute_then_refills(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(make_policy(rate=Rate(rpm=10)))
    admitted = [limiter.admit("a", "pro", "small", SMALL, T0).admitted for _ in range(12)]
    assert admitted == [True] * 10 + [False] * 2
    refused = limiter.admit("a", "pro", "small", SMALL, T0)
    assert refused.refused_by == "requests"
    assert refused.retry_after == pytest.approx(6.0)
    assert not limiter.admit("a", "pro", "small", SMALL, T0 + 5.9).admitted
    assert limiter.admit("a", "pro", "small", SMALL, T0 + 6.0).admitted
    # Buckets are per (account, model): another model and another account are untouched.
    assert limiter.admit("a", "pro", "big", SMALL, T0 + 6.0).admitted
    assert limiter.admit("b", "pro", "small", SMALL, T0 + 6.0).admitted


def test_bucket_statuses_report_remaining_and_reset(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(make_policy(rate=Rate(rpm=10, input_tpm=1000, output_tpm=600)))
    decision = limiter.admit("a", "pro", "small", Usage(250, 60), T0)
    requests = by_name(decision.limits, "requests")
    assert (requests.limit, requests.remaining, requests.reset_at) == (10, 9, T0 + 6.0)
    inputs = by_name(decision.limits, "input-tokens")
    assert (inputs.remaining, inputs.reset_at) == (750, pytest.approx(T0 + 15.0))
    outputs = by_name(decision.limits, "output-tokens")
    assert (outputs.remaining, outputs.reset_at) == (540, pytest.approx(T0 + 6.0))


def test_cache_reads_do_not_count_toward_input_tokens(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(make_policy(rate=Rate(input_tpm=1000)))
    assert limiter.admit("a", "pro", "small", Usage(900, 0, cache_read_tokens=50_000), T0).admitted
    refused = limiter.admit("a", "pro", "small", Usage(0, 0, cache_write_tokens=200), T0)
    assert refused.refused_by == "input-tokens"
    assert refused.retry_after == pytest.approx(6.0)


def test_a_refusal_changes_nothing(make_limiter: MakeLimiter) -> None:
    windows = (Window("session-5h", "session", 5 * 3600, 1000.0),)
    limiter = make_limiter(make_policy(windows=windows))
    assert limiter.admit("a", "pro", "small", SMALL, T0).admitted
    before = limiter.snapshot("a", "pro", T0)
    refused = limiter.admit("a", "pro", "small", SMALL, T0)
    assert refused.refused_by == "session-5h" and refused.reservation is None
    assert limiter.snapshot("a", "pro", T0) == before


def test_the_longest_refusal_is_the_one_reported(make_limiter: MakeLimiter) -> None:
    windows = (Window("session-5h", "session", 5 * 3600, 700.0),)
    limiter = make_limiter(make_policy(rate=Rate(rpm=1), windows=windows))
    assert limiter.admit("a", "pro", "small", SMALL, T0).admitted
    refused = limiter.admit("a", "pro", "small", SMALL, T0 + 1)
    # Both the 1-rpm bucket (59 s) and the window (5 h) refuse; the window lasts longer.
    assert refused.refused_by == "session-5h"
    assert refused.retry_after == pytest.approx(5 * HOUR - 1)


def test_reconcile_replaces_the_estimate_with_actual_usage(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(make_policy(rate=Rate(output_tpm=1000)))
    decision = limiter.admit("a", "pro", "small", Usage(100, 1000), T0)
    assert by_name(decision.limits, "output-tokens").remaining == 0
    assert by_name(decision.limits, "session-5h").used == 100 + 5000
    assert decision.reservation is not None
    assert limiter.reconcile(decision.reservation, Usage(120, 40, 10, 0), T0)
    snap = limiter.snapshot("a", "pro", T0)
    assert by_name(snap, "output-tokens", "small").remaining == 1000 - 40
    assert by_name(snap, "session-5h").used == pytest.approx(120 + 200 + 1)
    assert by_name(snap, "weekly").used == pytest.approx(321)
    # Settled once: a second reconcile or a release changes nothing.
    assert not limiter.reconcile(decision.reservation, Usage(500, 500), T0 + 3)
    assert not limiter.release(decision.reservation, T0 + 3)
    assert by_name(limiter.snapshot("a", "pro", T0 + 3), "weekly").used == pytest.approx(321)


def test_usage_beyond_the_estimate_is_charged_and_can_overdraw(make_limiter: MakeLimiter) -> None:
    windows = (Window("session-5h", "session", 5 * 3600, 1000.0),)
    limiter = make_limiter(make_policy(windows=windows))
    decision = limiter.admit("a", "pro", "small", SMALL, T0)
    assert decision.reservation is not None
    limiter.reconcile(decision.reservation, Usage(100, 400), T0 + 1)
    window = by_name(limiter.snapshot("a", "pro", T0 + 1), "session-5h")
    assert (window.used, window.remaining) == (2100.0, 0.0)
    refused = limiter.admit("a", "pro", "small", Usage(1, 0), T0 + 2)
    assert refused.refused_by == "session-5h"
    assert refused.retry_after == pytest.approx(5 * HOUR - 2)


def test_release_undoes_a_reservation(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(make_policy())
    fresh = limiter.snapshot("a", "pro", T0)
    decision = limiter.admit("a", "pro", "big", Usage(1000, 1000), T0)
    assert decision.reservation is not None
    assert limiter.release(decision.reservation, T0)
    after = limiter.snapshot("a", "pro", T0)
    for status in after:
        if status.scope == "bucket":
            assert status.remaining == by_name(fresh, status.name, status.model).remaining
        else:
            assert status.used == 0.0
    assert not limiter.release(decision.reservation, T0)


def test_a_session_window_opens_at_first_use_and_closes_later(make_limiter: MakeLimiter) -> None:
    windows = (Window("session-5h", "session", 5 * 3600, 1000.0),)
    limiter = make_limiter(make_policy(windows=windows))
    assert by_name(limiter.snapshot("a", "pro", T0), "session-5h").reset_at is None
    opened = use(limiter, SMALL, T0 + 100)
    assert by_name(opened.limits, "session-5h").reset_at == T0 + 100 + 5 * HOUR
    later = use(limiter, Usage(50, 0), T0 + 100 + 4 * HOUR)
    assert by_name(later.limits, "session-5h").used == 650.0
    reopened = use(limiter, Usage(10, 0), T0 + 100 + 5 * HOUR)
    window = by_name(reopened.limits, "session-5h")
    assert (window.used, window.reset_at) == (10.0, T0 + 100 + 10 * HOUR)


def test_a_weekly_window_can_open_on_a_calendar_anchor(make_limiter: MakeLimiter) -> None:
    anchor = WeeklyAnchor(weekday=0, seconds_into_day=9 * 3600)  # Monday 09:00
    windows = (Window("weekly", "weekly", WEEK_S, 1000.0, anchor=anchor),)
    limiter = make_limiter(make_policy(windows=windows, timezone="Europe/Paris"))
    monday_9_paris = T0 + 8 * HOUR  # 09:00 CET is 08:00 UTC
    before = use(limiter, SMALL, monday_9_paris - 1)
    assert by_name(before.limits, "weekly").reset_at == monday_9_paris
    assert not limiter.admit("a", "pro", "small", SMALL, monday_9_paris - 1).admitted
    after = use(limiter, SMALL, monday_9_paris)
    assert after.admitted
    window = by_name(after.limits, "weekly")
    assert (window.used, window.reset_at) == (600.0, monday_9_paris + WEEK_S)


def test_a_rolling_window_forgets_usage_older_than_its_length(make_limiter: MakeLimiter) -> None:
    windows = (Window("rolling-1h", "rolling", 3600, 1000.0),)
    limiter = make_limiter(make_policy(windows=windows))
    assert use(limiter, SMALL, T0).admitted
    assert use(limiter, Usage(300, 0), T0 + 1800).admitted
    refused = limiter.admit("a", "pro", "small", SMALL, T0 + 1800)
    assert refused.refused_by == "rolling-1h"
    # The first 600 credits leave the window one hour after they came in.
    assert refused.retry_after == pytest.approx(1800.0)
    assert by_name(refused.limits, "rolling-1h").used == 900.0
    assert limiter.admit("a", "pro", "small", SMALL, T0 + 3600).admitted


def test_a_per_model_cap_counts_only_that_model(make_limiter: MakeLimiter) -> None:
    windows = (
        Window("weekly", "weekly", WEEK_S, 100_000.0),
        Window("weekly-big", "weekly", WEEK_S, 3000.0, models=("big",)),
    )
    limiter = make_limiter(make_policy(windows=windows))
    assert limiter.admit("a", "pro", "big", SMALL, T0).admitted  # 500 + 2500 = 3000 credits
    assert limiter.admit("a", "pro", "small", SMALL, T0).admitted
    refused = limiter.admit("a", "pro", "big", Usage(1, 0), T0)
    assert refused.refused_by == "weekly-big"
    snap = limiter.snapshot("a", "pro", T0)
    assert by_name(snap, "weekly").used == 3600.0
    assert by_name(snap, "weekly-big").used == 3000.0


def test_peak_hours_lower_window_limits_until_they_end(make_limiter: MakeLimiter) -> None:
    peak = Peak(
        start_s=5 * 3600, end_s=11 * 3600, days=frozenset(range(5)), timezone="UTC", factor=0.5
    )
    windows = (Window("session-5h", "session", 5 * 3600, 1000.0),)
    limiter = make_limiter(make_policy(windows=windows, peak=peak))
    at_peak = T0 + 10 * HOUR
    first = limiter.admit("a", "pro", "small", SMALL, at_peak)
    assert first.admitted is False  # 600 credits > 1000 * 0.5
    assert first.refused_by == "session-5h"
    assert first.retry_after == pytest.approx(HOUR)  # at 11:00 the full limit is back
    assert by_name(first.limits, "session-5h").limit == 500.0
    assert limiter.admit("a", "pro", "small", SMALL, T0 + 11 * HOUR).admitted


def test_open_reservations_are_released_at_their_deadline(make_limiter: MakeLimiter) -> None:
    windows = (Window("session-5h", "session", 5 * 3600, 1000.0),)
    limiter = make_limiter(make_policy(windows=windows, ttl_s=60.0))
    decision = limiter.admit("a", "pro", "small", SMALL, T0)
    assert decision.reservation is not None and decision.reservation.deadline == T0 + 60
    assert not limiter.admit("a", "pro", "small", SMALL, T0 + 59).admitted
    assert by_name(limiter.snapshot("a", "pro", T0 + 60), "session-5h").used == 0.0
    late = limiter.admit("a", "pro", "small", Usage(10, 0), T0 + 61)
    assert late.admitted and by_name(late.limits, "session-5h").used == 10.0
    # A reconcile that arrives after the deadline still charges what was really used.
    assert limiter.reconcile(decision.reservation, Usage(100, 20), T0 + 62)
    assert by_name(limiter.snapshot("a", "pro", T0 + 62), "session-5h").used == 210.0


def test_a_request_larger_than_a_limit_is_refused_for_good(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(make_policy(rate=Rate(output_tpm=500)))
    decision = limiter.admit("a", "pro", "small", Usage(10, 501), T0)
    assert (decision.admitted, decision.refused_by, decision.retry_after) == (
        False,
        "output-tokens",
        None,
    )


@pytest.mark.parametrize(
    "bad",
    [
        lambda: Usage(-1, 0),
        lambda: Usage(0, math.nan),  # type: ignore[arg-type]
        lambda: Usage(1.5, 0),  # type: ignore[arg-type]
        lambda: Usage(True, 0),  # type: ignore[arg-type]
        lambda: Usage(0, 0, cache_read_tokens=-3),
    ],
)
def test_bad_usage_is_a_value_error(bad: object) -> None:
    with pytest.raises(ValueError):
        bad()  # type: ignore[operator]


def test_bad_calls_raise_and_leave_state_untouched(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(make_policy())
    decision = limiter.admit("a", "pro", "small", SMALL, T0)
    assert decision.reservation is not None
    before = limiter.snapshot("a", "pro", T0)
    with pytest.raises(ValueError):
        limiter.admit("a", "pro", "small", (100, 100), T0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        limiter.reconcile(decision.reservation, {"input_tokens": -1}, T0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown plan"):
        limiter.admit("a", "platinum", "small", SMALL, T0)
    assert limiter.snapshot("a", "pro", T0) == before
