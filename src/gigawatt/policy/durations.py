"""Durations written the way people write them: "90s", "5h", "1h30m", "7d", "2w".

`parse_duration` gives whole seconds (window lengths, where a fraction of a second means nothing);
`parse_seconds` also takes milliseconds and decimals ("250ms", "1.5s") and gives float seconds
(timeouts). Parts go from the largest unit to the smallest, each unit at most once, so "1h30m" is
read one way only and a typo such as "30m1h" is caught rather than guessed at.
"""

from __future__ import annotations

import re

_UNIT_SECONDS: dict[str, float] = {
    "w": 604_800,
    "d": 86_400,
    "h": 3_600,
    "m": 60,
    "s": 1,
    "ms": 0.001,
}
_UNIT_ORDER = tuple(_UNIT_SECONDS)
# A unit may not run on into letters: "250ms" is an error here, not 250 minutes and an "s".
_WHOLE_PART = re.compile(r"\s*(\d+)\s*(w|d|h|m|s)(?![a-z])")
# "ms" comes before "m" in the alternation so "250ms" is 250 milliseconds.
_DECIMAL_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|w|d|h|m|s)(?![a-z])")
_FORMAT_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))
# People say "24h" and "36h" windows but "7d", so days are only used from two days up.
_DAYS_FROM = 2 * 86_400


def parse_duration(text: str, *, positive: bool = True) -> int:
    """Whole seconds in `text`, such as "90s", "5h", "1h30m", "7d" or "2w".

    Raises ValueError for anything else, and for a zero duration unless `positive` is False.
    """
    parts = _parse_parts(text, _WHOLE_PART, "s, m, h, d or w", "'90s', '5h' or '1h30m'")
    total = sum(int(amount) * int(_UNIT_SECONDS[unit]) for amount, unit in parts)
    if positive and total == 0:
        raise ValueError(f"duration {text!r} must be longer than zero")
    return total


def parse_seconds(text: str, *, positive: bool = True) -> float:
    """Seconds in `text` as a float; like `parse_duration` but also "250ms" and "1.5s"."""
    parts = _parse_parts(text, _DECIMAL_PART, "ms, s, m, h, d or w", "'250ms', '2s' or '10m'")
    # Sum whole milliseconds first so "1s500ms" is exactly 1.5, not 1.5000000000000002.
    total_ms = sum(float(amount) * _UNIT_SECONDS[unit] * 1000 for amount, unit in parts)
    total = round(total_ms, 6) / 1000
    if positive and total == 0:
        raise ValueError(f"duration {text!r} must be longer than zero")
    return total


def format_duration(seconds: int) -> str:
    """Text that `parse_duration` reads back as `seconds`: "5h", "1h30m", "24h", "7d"."""
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise TypeError(f"expected whole seconds as an int, got {seconds!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {seconds}")
    if seconds == 0:
        return "0s"
    out = []
    for unit, size in _FORMAT_UNITS if seconds >= _DAYS_FROM else _FORMAT_UNITS[1:]:
        amount, seconds = divmod(seconds, size)
        if amount:
            out.append(f"{amount}{unit}")
    return "".join(out)


def format_seconds(seconds: float) -> str:
    """`format_duration` for float seconds, to the millisecond: 0.25 -> "250ms", 2.0 -> "2s"."""
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {seconds}")
    whole, ms = divmod(round(seconds * 1000), 1000)
    if not ms:
        return format_duration(whole)
    return (format_duration(whole) if whole else "") + f"{ms}ms"


def _parse_parts(
    text: str, part: re.Pattern[str], units: str, examples: str
) -> list[tuple[str, str]]:
    if not isinstance(text, str):
        raise TypeError(f"expected a duration as a string such as {examples}, got {text!r}")
    stripped = text.strip().lower()
    if not stripped:
        raise ValueError(f"empty duration; write one such as {examples}")
    parts: list[tuple[str, str]] = []
    pos = 0
    while pos < len(stripped):
        match = part.match(stripped, pos)
        if match is None:
            raise ValueError(
                f"invalid duration {text!r}: expected amounts with units {units},"
                f" such as {examples}"
            )
        amount, unit = match.groups()
        if parts and _UNIT_ORDER.index(unit) <= _UNIT_ORDER.index(parts[-1][1]):
            raise ValueError(
                f"invalid duration {text!r}: write units from largest to smallest, each once"
                f" (for example '1h30m')"
            )
        parts.append((amount, unit))
        pos = match.end()
    return parts
