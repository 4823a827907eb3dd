from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gigawatt.policy.durations import (
    format_duration,
    format_seconds,
    parse_duration,
    parse_seconds,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("5h", 18_000),
        ("1h30m", 5_400),
        ("7d", 604_800),
        ("2w", 1_209_600),
        ("1w2d3h4m5s", 604_800 + 2 * 86_400 + 3 * 3_600 + 4 * 60 + 5),
        (" 1h 30m ", 5_400),
        ("5H", 18_000),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration"),
        ("   ", "empty duration"),
        ("0s", "longer than zero"),
        ("0h0m", "longer than zero"),
        ("5", "expected amounts with units"),
        ("h", "expected amounts with units"),
        ("5x", "expected amounts with units"),
        ("-5h", "expected amounts with units"),
        ("1.5h", "expected amounts with units"),
        ("250ms", "expected amounts with units"),
        ("5 hours", "expected amounts with units"),
        ("30m1h", "largest to smallest"),
        ("1h1h", "largest to smallest"),
    ],
)
def test_parse_duration_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


def test_zero_is_allowed_when_asked() -> None:
    assert parse_duration("0s", positive=False) == 0
    assert parse_seconds("0s", positive=False) == 0.0


def test_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_duration(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("2s", 2.0), ("1.5s", 1.5), ("1s500ms", 1.5), ("10m", 600.0), ("5h", 18_000)],
)
def test_parse_seconds(text: str, seconds: float) -> None:
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (90, "1m30s"),
        (5_400, "1h30m"),
        (18_000, "5h"),
        (86_400, "24h"),
        (129_600, "36h"),
        (172_800, "2d"),
        (604_800, "7d"),
        (604_801, "7d1s"),
    ],
)
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_duration_rejects_negative_and_fractions() -> None:
    with pytest.raises(ValueError):
        format_duration(-1)
    with pytest.raises(TypeError):
        format_duration(1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.25, "250ms"), (2.0, "2s"), (1.5, "1s500ms"), (600.0, "10m")]
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


@given(st.integers(min_value=1, max_value=10**9))
def test_format_then_parse_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


_UNITS = ("w", "d", "h", "m", "s")


@given(st.lists(st.tuples(st.sampled_from(_UNITS), st.integers(1, 10_000)), min_size=1))
def test_parse_then_format_is_canonical(parts: list[tuple[str, int]]) -> None:
    # Build a valid text (units largest first, each once) and check it survives a round trip.
    amounts = dict(parts)
    text = "".join(f"{amounts[u]}{u}" for u in _UNITS if u in amounts)
    seconds = parse_duration(text)
    canonical = format_duration(seconds)
    assert parse_duration(canonical) == seconds
    assert format_duration(parse_duration(canonical)) == canonical


@given(st.integers(min_value=1, max_value=10**10))
def test_format_seconds_round_trips_to_the_millisecond(milliseconds: int) -> None:
    seconds = milliseconds / 1000
    assert parse_seconds(format_seconds(seconds)) == pytest.approx(seconds, abs=1e-9)
