"""Peak hours follow the local wall clock, including across daylight-saving changes.

In America/Los_Angeles in 2026, clocks go from 02:00 PST to 03:00 PDT on Sunday 8 March and from
02:00 PDT back to 01:00 PST on Sunday 1 November.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from gigawatt.policy.model import Peak

LA = ZoneInfo("America/Los_Angeles")
WEEKDAY_MORNINGS = Peak(
    start_s=5 * 3600,
    end_s=11 * 3600,
    days=frozenset(range(5)),
    timezone="America/Los_Angeles",
    factor=0.5,
)


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def local(when: float) -> datetime:
    return datetime.fromtimestamp(when, LA)


def test_period_on_a_standard_time_friday() -> None:
    # Friday 6 March 2026, 10:00 PST = 18:00 UTC; the period is 05:00-11:00 PST.
    assert WEEKDAY_MORNINGS.period_at(utc(2026, 3, 6, 18)) == (
        utc(2026, 3, 6, 13),
        utc(2026, 3, 6, 19),
    )
    assert WEEKDAY_MORNINGS.next_change(utc(2026, 3, 6, 18)) == utc(2026, 3, 6, 19)


def test_next_change_over_the_spring_forward_weekend() -> None:
    # Friday 12:00 PST: the next period starts Monday 9 March 05:00 PDT = 12:00 UTC, not 13:00.
    now = utc(2026, 3, 6, 20)
    assert WEEKDAY_MORNINGS.period_at(now) is None
    assert WEEKDAY_MORNINGS.next_change(now) == utc(2026, 3, 9, 12)
    assert WEEKDAY_MORNINGS.period_at(utc(2026, 3, 9, 12)) == (
        utc(2026, 3, 9, 12),
        utc(2026, 3, 9, 18),
    )
    assert WEEKDAY_MORNINGS.period_at(utc(2026, 3, 9, 11, 59)) is None


def test_next_change_over_the_fall_back_weekend() -> None:
    # Friday 30 October 12:00 PDT: next start is Monday 2 November 05:00 PST = 13:00 UTC.
    now = utc(2026, 10, 30, 19)
    assert WEEKDAY_MORNINGS.period_at(now) is None
    assert WEEKDAY_MORNINGS.next_change(now) == utc(2026, 11, 2, 13)
    assert WEEKDAY_MORNINGS.period_at(utc(2026, 11, 2, 12, 30)) is None


def test_weekend_is_off_peak() -> None:
    saturday_morning = utc(2026, 3, 7, 15)  # 07:00 PST
    assert WEEKDAY_MORNINGS.period_at(saturday_morning) is None


def test_a_span_across_the_change_ends_on_the_wall_clock() -> None:
    # "00:00-06:00" on the spring-forward day lasts 5 hours; on the fall-back day, 7.
    nights = Peak(0, 6 * 3600, frozenset(range(7)), "America/Los_Angeles", 0.5)
    start, end = nights.period_at(utc(2026, 3, 8, 9))  # type: ignore[misc]
    assert (start, end) == (utc(2026, 3, 8, 8), utc(2026, 3, 8, 13))
    assert (local(start).hour, local(end).hour) == (0, 6)
    start, end = nights.period_at(utc(2026, 11, 1, 9))  # type: ignore[misc]
    assert (start, end) == (utc(2026, 11, 1, 7), utc(2026, 11, 1, 14))
    assert (local(start).hour, local(end).hour) == (0, 6)


def test_a_span_past_midnight_started_the_day_before() -> None:
    # Saturday 22:00 PST to Sunday 02:00, which does not exist on 8 March: it ends at the jump.
    late = Peak(22 * 3600, 2 * 3600, frozenset({5}), "America/Los_Angeles", 0.5)
    sunday_0130 = utc(2026, 3, 8, 9, 30)
    assert late.period_at(sunday_0130) == (utc(2026, 3, 8, 6), utc(2026, 3, 8, 10))
    assert late.next_change(sunday_0130) == utc(2026, 3, 8, 10)


YEAR_2026 = st.floats(min_value=utc(2026, 1, 1), max_value=utc(2027, 1, 1), allow_nan=False)


@given(YEAR_2026)
def test_periods_are_weekday_mornings_in_local_time(now: float) -> None:
    period = WEEKDAY_MORNINGS.period_at(now)
    if period is None:
        t = local(now)
        assert t.weekday() >= 5 or not 5 <= t.hour < 11
        return
    start, end = period
    assert start <= now < end
    assert (local(start).hour, local(start).minute, local(end).hour) == (5, 0, 11)
    assert local(start).weekday() < 5
    assert end - start == 6 * 3600


@given(YEAR_2026)
def test_next_change_is_where_peak_flips(now: float) -> None:
    change = WEEKDAY_MORNINGS.next_change(now)
    assert change > now
    inside = WEEKDAY_MORNINGS.period_at(now) is not None
    # Nothing flips before `change`, and it flips at `change`.
    assert (WEEKDAY_MORNINGS.period_at(change - 1) is not None) == inside
    assert (WEEKDAY_MORNINGS.period_at(change) is not None) != inside
