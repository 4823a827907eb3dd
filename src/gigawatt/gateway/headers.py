"""Rate-limit and usage-window headers, in each provider's convention and gigawatt's own."""

from __future__ import annotations

import time

from gigawatt.limits import LimitStatus

# Windows at or above this utilization are reported as `allowed_warning`.
WARNING_UTILIZATION = 0.8
_ANTHROPIC_BUCKETS = {
    "requests": "requests",
    "input-tokens": "input-tokens",
    "output-tokens": "output-tokens",
}


def rfc3339(t: float) -> str:
    """`t` to the second, in UTC. Most headers of a response name the same few seconds, so the
    last ones are remembered (formatting a time costs microseconds)."""
    second = int(t)
    text = _RFC3339.get(second)
    if text is None:
        if len(_RFC3339) >= 64:
            _RFC3339.clear()
        text = _RFC3339[second] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
    return text


_RFC3339: dict[int, str] = {}


def openai_duration(seconds: float) -> str:
    """OpenAI's reset format: '6m0s', '1s', '12ms'."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def gigawatt_window_headers(limits: tuple[LimitStatus, ...]) -> list[tuple[str, str]]:
    """One `gigawatt-window-<name>` header per window: `limit=..; remaining=..; utilization=..;
    reset=<epoch s>` (reset left out while no window is open).

    One header a window rather than one per figure: a response already carries a dozen rate-limit
    headers, and the server checks every header it sends.
    """
    out = []
    for status in limits:
        if status.scope != "window":
            continue
        value = (
            f"limit={status.limit:.0f}; remaining={status.remaining:.0f}; "
            f"utilization={status.utilization:.4f}"
        )
        if status.reset_at is not None:
            value += f"; reset={int(status.reset_at)}"
        out.append((f"gigawatt-window-{status.name}", value))
    return out


def unified_headers(
    limits: tuple[LimitStatus, ...], refused_by: str | None
) -> list[tuple[str, str]]:
    """Anthropic's `anthropic-ratelimit-unified-{5h,7d}-*`: the tightest session or rolling window
    as "5h", the tightest weekly window as "7d"."""
    out: list[tuple[str, str]] = []
    groups: dict[str, list[LimitStatus]] = {"5h": [], "7d": []}
    for status in limits:
        if status.scope != "window":
            continue
        if status.name.startswith(("session", "rolling")):
            groups["5h"].append(status)
        elif status.name.startswith("weekly"):
            groups["7d"].append(status)
    for label, members in groups.items():
        if not members:
            continue
        tightest = max(members, key=lambda s: s.utilization)
        refused = any(m.name == refused_by for m in members)
        state = (
            "rejected"
            if refused
            else "allowed_warning"
            if tightest.utilization >= WARNING_UTILIZATION
            else "allowed"
        )
        prefix = f"anthropic-ratelimit-unified-{label}"
        out += [
            (f"{prefix}-utilization", f"{min(tightest.utilization, 1.0):.4f}"),
            (f"{prefix}-status", state),
        ]
        if tightest.reset_at is not None:
            out.append((f"{prefix}-reset", str(int(tightest.reset_at))))
    return out


def anthropic_headers(
    limits: tuple[LimitStatus, ...], now: float, refused_by: str | None = None
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    tokens: LimitStatus | None = None
    for status in limits:
        if status.scope != "bucket":
            continue
        name = _ANTHROPIC_BUCKETS.get(status.name, status.name)
        reset = rfc3339(status.reset_at if status.reset_at is not None else now)
        out += [
            (f"anthropic-ratelimit-{name}-limit", f"{status.limit:.0f}"),
            (f"anthropic-ratelimit-{name}-remaining", f"{status.remaining:.0f}"),
            (f"anthropic-ratelimit-{name}-reset", reset),
        ]
        if status.name != "requests" and (tokens is None or status.remaining < tokens.remaining):
            tokens = status
    if tokens is not None:
        reset = rfc3339(tokens.reset_at if tokens.reset_at is not None else now)
        out += [
            ("anthropic-ratelimit-tokens-limit", f"{tokens.limit:.0f}"),
            ("anthropic-ratelimit-tokens-remaining", f"{tokens.remaining:.0f}"),
            ("anthropic-ratelimit-tokens-reset", reset),
        ]
    return out + unified_headers(limits, refused_by) + gigawatt_window_headers(limits)


def openai_headers(
    limits: tuple[LimitStatus, ...], now: float, refused_by: str | None = None
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    tokens: LimitStatus | None = None
    for status in limits:
        if status.scope != "bucket":
            continue
        wait = openai_duration(max(0.0, (status.reset_at or now) - now))
        if status.name == "requests":
            out += [
                ("x-ratelimit-limit-requests", f"{status.limit:.0f}"),
                ("x-ratelimit-remaining-requests", f"{status.remaining:.0f}"),
                ("x-ratelimit-reset-requests", wait),
            ]
            continue
        out += [
            (f"x-ratelimit-limit-{status.name}", f"{status.limit:.0f}"),
            (f"x-ratelimit-remaining-{status.name}", f"{status.remaining:.0f}"),
            (f"x-ratelimit-reset-{status.name}", wait),
        ]
        if tokens is None or status.remaining < tokens.remaining:
            tokens = status
    if tokens is not None:
        wait = openai_duration(max(0.0, (tokens.reset_at or now) - now))
        out += [
            ("x-ratelimit-limit-tokens", f"{tokens.limit:.0f}"),
            ("x-ratelimit-remaining-tokens", f"{tokens.remaining:.0f}"),
            ("x-ratelimit-reset-tokens", wait),
        ]
    return out + gigawatt_window_headers(limits)
