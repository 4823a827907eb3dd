"""Rate-limit and usage-window headers, in each provider's convention and gigawatt's own.

Every response carries ten or more of these, made afresh from the limits as they stand after its
decision, so the parts that stay the same from one response to the next (names, limits, a window's
reset) are encoded once and kept; only the counts that move are formatted per response.
"""

from __future__ import annotations

import time

from gigawatt.limits import LimitStatus

# Windows at or above this utilization are reported as `allowed_warning`.
WARNING_UTILIZATION = 0.8


Header = tuple[bytes, bytes]

# The tables of remembered values below (durations, limits, a limit's fixed value parts) are
# cleared once one holds this many entries: a policy has a few limits, so only a long-running
# process ever gets there. Names are kept for good: there is one per limit of the policy.
_KEEP = 4096


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
    one a second above, and every response carries two."""
    key = max(0, round(seconds * 1000)) if seconds < 1 else 1000 + round(seconds)
    text = _DURATIONS.get(key)
    if text is None:
        if len(_DURATIONS) >= _KEEP:
            _DURATIONS.clear()
        text = _DURATIONS[key] = openai_duration(seconds).encode()
    return text


_DURATIONS: dict[int, bytes] = {}


def _count(value: float) -> bytes:
    """A limit as a whole number, remembered: a limit is the same in every response."""
    text = _COUNTS.get(value)
    if text is None:
        if len(_COUNTS) >= _KEEP:
            _COUNTS.clear()
        text = _COUNTS[value] = b"%.0f" % value
    return text


_COUNTS: dict[float, bytes] = {}


def _name(prefix: str, name: str) -> bytes:
    """`prefix` + `name` as a header name, encoded once."""
    encoded = _PREFIXED.get((prefix, name))
    if encoded is None:
        encoded = _PREFIXED[prefix, name] = (prefix + name).encode("latin-1")
    return encoded


_PREFIXED: dict[tuple[str, str], bytes] = {}


def _window_header(status: LimitStatus) -> Header:
    """`gigawatt-window-<name>: limit=..; remaining=..; utilization=..; reset=<epoch s>` (reset
    left out while no window is open).

    One header a window rather than one per figure: a response already carries a dozen rate-limit
    headers, and the server checks every header it sends.
    """
    name, _, limit, used, remaining, reset_at, _ = status
    parts = _WINDOW_PARTS.get((name, limit, reset_at))
    if parts is None:
        if len(_WINDOW_PARTS) >= _KEEP:
            _WINDOW_PARTS.clear()
        reset = b"" if reset_at is None else b"; reset=%d" % int(reset_at)
        parts = _WINDOW_PARTS[name, limit, reset_at] = (
            _name("gigawatt-window-", name),
            b"limit=%.0f; remaining=" % limit,
            reset,
        )
    header, head, tail = parts
    utilization = used / limit if limit else 0.0
    return header, b"%s%.0f; utilization=%.4f%s" % (head, remaining, utilization, tail)


# A window's (name, limit, reset) -> its header name, the value's start and the value's end.
_WINDOW_PARTS: dict[tuple[str, float, float | None], tuple[bytes, bytes, bytes]] = {}


def _bucket_header(status: LimitStatus, now: float) -> Header:
    """`gigawatt-bucket-<name>: limit=..; remaining=..; reset=<epoch s, to the ms>`."""
    name, _, limit, _, remaining, reset_at, _ = status
    parts = _BUCKET_PARTS.get((name, limit))
    if parts is None:
        if len(_BUCKET_PARTS) >= _KEEP:
            _BUCKET_PARTS.clear()
        parts = _BUCKET_PARTS[name, limit] = (
            _name("gigawatt-bucket-", name),
            b"limit=%.0f; remaining=" % limit,
        )
    header, head = parts
    reset = reset_at if reset_at is not None else now
    return header, b"%s%.0f; reset=%.3f" % (head, remaining, reset)


_BUCKET_PARTS: dict[tuple[str, float], tuple[bytes, bytes]] = {}


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
    windows: list[Header] = []
    tokens: LimitStatus | None = None
    for status in limits:
        if status.scope != "bucket":
            windows.append(_window_header(status))
            continue
        name, _, limit, _, remaining, reset_at, _ = status
        limit_name, remaining_name, reset_name = _anthropic_names(name)
        out += (
            (limit_name, _count(limit)),
            (remaining_name, b"%.0f" % remaining),
            (reset_name, rfc3339(reset_at if reset_at is not None else now)),
        )
        if name != "requests" and (tokens is None or remaining < tokens.remaining):
            tokens = status
    if tokens is not None:
        out += (
            (b"anthropic-ratelimit-tokens-limit", _count(tokens.limit)),
            (b"anthropic-ratelimit-tokens-remaining", b"%.0f" % tokens.remaining),
            (
                b"anthropic-ratelimit-tokens-reset",
                rfc3339(tokens.reset_at if tokens.reset_at is not None else now),
            ),
        )
    return out + unified_headers(limits, refused_by) + windows


def _anthropic_names(name: str) -> tuple[bytes, bytes, bytes]:
    """`anthropic-ratelimit-<name>-{limit,remaining,reset}`, encoded once."""
    names = _ANTHROPIC_NAMES.get(name)
    if names is None:
        limit, remaining, reset = (
            f"anthropic-ratelimit-{name}-{part}".encode("latin-1")
            for part in ("limit", "remaining", "reset")
        )
        names = _ANTHROPIC_NAMES[name] = (limit, remaining, reset)
    return names


_ANTHROPIC_NAMES: dict[str, tuple[bytes, bytes, bytes]] = {}


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
            out.append(_window_header(status))
        elif status.name == "requests":
            out += (
                (b"x-ratelimit-limit-requests", _count(status.limit)),
                (b"x-ratelimit-remaining-requests", b"%.0f" % status.remaining),
                (b"x-ratelimit-reset-requests", _duration((status.reset_at or now) - now)),
            )
        else:
            out.append(_bucket_header(status, now))
            if tokens is None or status.remaining < tokens.remaining:
                tokens = status
    if tokens is not None:
        out += (
            (b"x-ratelimit-limit-tokens", _count(tokens.limit)),
            (b"x-ratelimit-remaining-tokens", b"%.0f" % tokens.remaining),
            (b"x-ratelimit-reset-tokens", _duration((tokens.reset_at or now) - now)),
        )
    return out
