"""Test directives: `[[sim:key=value]]` in the last user message steers the simulated answer.

    [[sim:status=500]]       answer with this HTTP status (400-599) at once, in the API's format
    [[sim:delay=2.5]]        wait this many real seconds (never scaled) before the response headers
    [[sim:tokens=12]]        answer with exactly this many tokens (still capped by max_tokens)
    [[sim:drop_after=5]]     send this many tokens, then close the connection without finishing

Several may share one bracket, separated by commas or spaces: `[[sim:tokens=40, drop_after=5]]`.
A misspelt or out-of-range directive is a 400, so a test cannot silently test nothing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_DIRECTIVE = re.compile(r"\[\[sim:([^\]]*)\]\]")
_ITEM_SEPARATOR = re.compile(r"[,\s]+")
MAX_TOKENS_DIRECTIVE = 100_000
MAX_DELAY_S = 3_600.0


class DirectiveError(ValueError):
    """A `[[sim:...]]` directive that cannot be obeyed; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Directives:
    status: int | None = None
    delay_s: float = 0.0
    tokens: int | None = None
    drop_after: int | None = None


NONE = Directives()


def parse_directives(text: str) -> Directives:
    """The directives in `text`; a key given twice keeps its last value."""
    if "[[sim:" not in text:
        return NONE
    values: dict[str, str] = {}
    for match in _DIRECTIVE.finditer(text):
        for item in _ITEM_SEPARATOR.split(match.group(1).strip()):
            if not item:
                continue
            key, sep, value = item.partition("=")
            if not sep:
                raise DirectiveError(f"simulator directive {item!r} needs the form key=value")
            values[key] = value
    unknown = sorted(set(values) - {"status", "delay", "tokens", "drop_after"})
    if unknown:
        raise DirectiveError(
            f"unknown simulator directive {unknown[0]!r}; known: status, delay, tokens, drop_after"
        )
    return Directives(
        status=_integer(values, "status", 400, 599),
        delay_s=_seconds(values, "delay"),
        tokens=_integer(values, "tokens", 0, MAX_TOKENS_DIRECTIVE),
        drop_after=_integer(values, "drop_after", 0, MAX_TOKENS_DIRECTIVE),
    )


def _integer(values: dict[str, str], key: str, low: int, high: int) -> int | None:
    if key not in values:
        return None
    try:
        number = int(values[key])
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise DirectiveError(
            f"simulator directive {key}={values[key]!r} must be a whole number from {low} to {high}"
        )
    return number


def _seconds(values: dict[str, str], key: str) -> float:
    if key not in values:
        return 0.0
    try:
        seconds = float(values[key])
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= MAX_DELAY_S:
        raise DirectiveError(
            f"simulator directive {key}={values[key]!r} must be seconds from 0 to {MAX_DELAY_S:g}"
        )
    return seconds
