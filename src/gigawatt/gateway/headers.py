"""Rate-limit and usage-window headers, in each provider's convention and gigawatt's own."""

from __future__ import annotations

import time

from gigawatt.limits import LimitStatus

# Windows at or above this utilization are reported as `allowed_warning`.
WARNING_UTILIZATION = 0.8


Header = tuple[bytes, bytes]


def rfc3339(t: float) -> bytes:
    """`t` to the second, in UTC. Most headers of a response name the same few seconds, so the
    last ones are remembered (formatting a time costs microseconds)."""
    second = int(t)
    text = _RFC3339.get(second)
    if text is None:
        if len(_RFC3339) >= 64:
            _RFC3339.clear()
        text = _RFC3339[second] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)).encode()
    return text


_RFC3339: dict[int, bytes] = {}


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


def _duration(seconds: float) -> bytes:
    """`openai_duration` as header bytes, remembered: it has a thousand values under a second and
    one a second above, and every response carries four."""
    key = max(0, round(seconds * 1000)) if seconds < 1 else 1000 + round(seconds)
    text = _DURATIONS.get(key)
    if text is None:
        if len(_DURATIONS) >= 4096:
            _DURATIONS.clear()
        text = _DURATIONS[key] = openai_duration(seconds).encode()
    return text


_DURATIONS: dict[int, bytes] = {}


def _names(
    template: str, name: str, cache: dict[str, tuple[bytes, bytes, bytes]]
) -> tuple[bytes, bytes, bytes]:
    """The limit, remaining and reset header names of bucket `name`, encoded once."""
    names = cache.get(name)
    if names is None:
        names = cache[name] = tuple(  # type: ignore[assignment]
            template.format(part=part, name=name).encode("latin-1")
            for part in ("limit", "remaining", "reset")
        )
    return names  # type: ignore[return-value]


_ANTHROPIC_NAMES: dict[str, tuple[bytes, bytes, bytes]] = {}


def _name(prefix: str, name: str) -> bytes:
    """`prefix` + `name` as a header name, encoded once."""
    encoded = _PREFIXED.get((prefix, name))
    if encoded is None:
        encoded = _PREFIXED[prefix, name] = (prefix + name).encode("latin-1")
    return encoded


_PREFIXED: dict[tuple[str, str], bytes] = {}


def gigawatt_window_headers(limits: tuple[LimitStatus, ...]) -> list[Header]:
    """One `gigawatt-window-<name>` header per window: `limit=..; remaining=..; utilization=..;
    reset=<epoch s>` (reset left out while no window is open).

    One header a window rather than one per figure: a response already carries a dozen rate-limit
    headers, and the server checks every header it sends.
    """
    out = []
    for status in limits:
        if status.scope != "window":
            continue
        value = b"limit=%.0f; remaining=%.0f; utilization=%.4f" % (
            status.limit,
            status.remaining,
            status.utilization,
        )
        if status.reset_at is not None:
            value += b"; reset=%d" % int(status.reset_at)
        out.append((_name("gigawatt-window-", status.name), value))
    return out


def unified_headers(limits: tuple[LimitStatus, ...], refused_by: str | None) -> list[Header]:
    """Anthropic's `anthropic-ratelimit-unified-{5h,7d}-*`: the tightest session or rolling window
    as "5h", the tightest weekly window as "7d"."""
    out: list[Header] = []
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
            b"rejected"
            if refused
            else b"allowed_warning"
            if tightest.utilization >= WARNING_UTILIZATION
            else b"allowed"
        )
        utilization, status_name, reset = _UNIFIED_NAMES[label]
        out += [
            (utilization, b"%.4f" % min(tightest.utilization, 1.0)),
            (status_name, state),
        ]
        if tightest.reset_at is not None:
            out.append((reset, b"%d" % int(tightest.reset_at)))
    return out


_UNIFIED_NAMES = {
    label: tuple(
        f"anthropic-ratelimit-unified-{label}-{part}".encode()
        for part in ("utilization", "status", "reset")
    )
    for label in ("5h", "7d")
}


def anthropic_headers(
    limits: tuple[LimitStatus, ...], now: float, refused_by: str | None = None
) -> list[Header]:
    out: list[Header] = []
    tokens: LimitStatus | None = None
    for status in limits:
        if status.scope != "bucket":
            continue
        limit, remaining, reset = _names(
            "anthropic-ratelimit-{name}-{part}", status.name, _ANTHROPIC_NAMES
        )
        out += [
            (limit, b"%.0f" % status.limit),
            (remaining, b"%.0f" % status.remaining),
            (reset, rfc3339(status.reset_at if status.reset_at is not None else now)),
        ]
        if status.name != "requests" and (tokens is None or status.remaining < tokens.remaining):
            tokens = status
    if tokens is not None:
        out += [
            (b"anthropic-ratelimit-tokens-limit", b"%.0f" % tokens.limit),
            (b"anthropic-ratelimit-tokens-remaining", b"%.0f" % tokens.remaining),
            (
                b"anthropic-ratelimit-tokens-reset",
                rfc3339(tokens.reset_at if tokens.reset_at is not None else now),
            ),
        ]
    return out + unified_headers(limits, refused_by) + gigawatt_window_headers(limits)


def openai_headers(
    limits: tuple[LimitStatus, ...], now: float, refused_by: str | None = None
) -> list[Header]:
    """OpenAI's six: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, where tokens is the
    tightest token bucket. OpenAI's convention has one token bucket and gigawatt two (input and
    output), so each of those is also given in full in gigawatt's own `gigawatt-bucket-<name>`."""
    out: list[Header] = []
    tokens: LimitStatus | None = None
    for status in limits:
        if status.scope != "bucket":
            continue
        if status.name == "requests":
            out += [
                (b"x-ratelimit-limit-requests", b"%.0f" % status.limit),
                (b"x-ratelimit-remaining-requests", b"%.0f" % status.remaining),
                (b"x-ratelimit-reset-requests", _duration((status.reset_at or now) - now)),
            ]
            continue
        out.append(_bucket_header(status, now))
        if tokens is None or status.remaining < tokens.remaining:
            tokens = status
    if tokens is not None:
        out += [
            (b"x-ratelimit-limit-tokens", b"%.0f" % tokens.limit),
            (b"x-ratelimit-remaining-tokens", b"%.0f" % tokens.remaining),
            (b"x-ratelimit-reset-tokens", _duration((tokens.reset_at or now) - now)),
        ]
    return out + gigawatt_window_headers(limits)


def _bucket_header(status: LimitStatus, now: float) -> Header:
    """`gigawatt-bucket-<name>: limit=..; remaining=..; reset=<epoch s, to the ms>`."""
    reset = status.reset_at if status.reset_at is not None else now
    value = b"limit=%.0f; remaining=%.0f; reset=%.3f" % (status.limit, status.remaining, reset)
    return _name("gigawatt-bucket-", status.name), value
