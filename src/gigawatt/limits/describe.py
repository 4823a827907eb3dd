"""Refusals and limits in plain words, for people: "5-hour limit reached; resets at 14:05 UTC"."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from gigawatt.limits.types import Decision, LimitStatus

_BUCKET_WORDS = {
    "requests": "requests-per-minute",
    "input-tokens": "input-tokens-per-minute",
    "output-tokens": "output-tokens-per-minute",
}
_UNITS = {"m": ("minute", 60), "h": ("hour", 3600), "d": ("day", 86_400)}


def limit_label(status: LimitStatus) -> str:
    """'5-hour limit', 'weekly limit', 'weekly limit for large', 'requests-per-minute limit ...'."""
    if status.scope == "bucket":
        return f"{_BUCKET_WORDS.get(status.name, status.name)} limit for {status.model}"
    name = status.name
    kind, _, rest = name.partition("-")
    if kind not in ("session", "rolling", "weekly"):
        return f"{name} limit"
    length, _, models = rest.partition("-") if kind in ("session", "rolling") else ("", "", rest)
    words = "weekly" if kind == "weekly" else _length_words(length) or name
    if kind == "rolling":
        words = f"rolling {words}"
    label = f"{words} limit"
    return f"{label} for {models.replace('+', ' and ')}" if models else label


def _length_words(length: str) -> str | None:
    if len(length) < 2 or not length[:-1].isdigit() or length[-1] not in _UNITS:
        return None
    unit, _ = _UNITS[length[-1]]
    return f"{int(length[:-1])}-{unit}"


def refusal_message(decision: Decision, now: float, zone: str = "UTC") -> str:
    """Why a request was refused and when it may succeed, in one sentence."""
    status = next((s for s in decision.limits if s.name == decision.refused_by), None)
    label = limit_label(status) if status is not None else f"{decision.refused_by} limit"
    if decision.retry_after is None:
        return f"request exceeds the {label} on its own; it can never be admitted as sent"
    when = datetime.fromtimestamp(now + decision.retry_after, ZoneInfo(zone))
    if decision.retry_after < 60:
        return f"{label} reached; retry in {max(1, round(decision.retry_after))}s"
    stamp = (
        when.strftime("%H:%M %Z")
        if decision.retry_after < 86_400
        else when.strftime("%a %d %b %H:%M %Z")
    )
    return f"{label} reached; resets at {stamp}"
