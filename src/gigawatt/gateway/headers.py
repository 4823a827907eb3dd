"""Rate-limit and usage-window headers, in each provider's convention and gigawatt's own.

Every response carries ten or more of these, made afresh from the limits as they stand after its
decision, so the parts that stay the same from one response to the next (names, limits, a window's
reset) are encoded once and kept; only the counts that move are formatted per response.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from gigawatt.limits.engine import bucket_levels
from gigawatt.limits.types import BucketSpec, LimitReading, WindowSpec

# Windows at or above this utilization are reported as `allowed_warning`.
WARNING_UTILIZATION = 0.8


Header = tuple[bytes, bytes]

# The tables of remembered values below (times, durations, each set of limits' fixed parts, each
# window's resets) are cleared once one holds this many entries. A policy has a few limits, so
# most stay small; a window's resets number one per account's current period, so with many
# accounts that table is refilled now and then, at the cost of formatting a reset again.
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


class _BucketParts(NamedTuple):
    """What a bucket's headers share from one response to the next, encoded once."""

    requests: bool  # the requests bucket (the others count tokens)
    limit: bytes
    mine: bytes  # gigawatt-bucket-<name>
    head: bytes  # its value up to the count: b"limit=<limit>; remaining="
    anthropic: tuple[bytes, bytes, bytes]  # anthropic-ratelimit-<name>-{limit,remaining,reset}


class _WindowParts(NamedTuple):
    """The same for a window; only the reset differs between accounts, kept by its value."""

    name: str
    limit: float
    mine: bytes  # gigawatt-window-<name>
    head: bytes  # b"limit=<limit>; remaining="
    unified: bytes  # the Anthropic unified group it belongs to: b"5h", b"7d", or b"" for none
    tails: dict[float | None, bytes]  # reset -> b"; reset=<epoch s>" (b"" while none is open)


def _parts(
    buckets: tuple[BucketSpec, ...], windows: tuple[WindowSpec, ...]
) -> tuple[list[_BucketParts], list[_WindowParts]]:
    """The parts for one set of limits. A set is the same objects for every request of a plan
    and model until the limits change (`LimitBook`), so they are found by identity; the entry
    holds the set, so no other object can take its identity while the entry lasts."""
    key = (id(buckets), id(windows))
    found = _PARTS.get(key)
    if found is None:
        if len(_PARTS) >= _KEEP:
            _PARTS.clear()
        made = ([_bucket_parts(spec) for spec in buckets], [_window_parts(s) for s in windows])
        found = _PARTS[key] = (buckets, windows, *made)
    return found[2], found[3]


_PARTS: dict[
    tuple[int, int],
    tuple[tuple[BucketSpec, ...], tuple[WindowSpec, ...], list[_BucketParts], list[_WindowParts]],
] = {}


def _bucket_parts(spec: BucketSpec) -> _BucketParts:
    name, limit = spec.name, spec.limit
    anthropic = tuple(
        f"anthropic-ratelimit-{name}-{part}".encode("latin-1")
        for part in ("limit", "remaining", "reset")
    )
    return _BucketParts(
        name == "requests",
        b"%d" % limit,
        f"gigawatt-bucket-{name}".encode("latin-1"),
        b"limit=%d; remaining=" % limit,
        anthropic,  # type: ignore[arg-type]
    )


def _window_parts(spec: WindowSpec) -> _WindowParts:
    name = spec.name
    unified = b"5h" if name.startswith(("session", "rolling")) else b""
    if name.startswith("weekly"):
        unified = b"7d"
    return _WindowParts(
        name,
        spec.limit,
        f"gigawatt-window-{name}".encode("latin-1"),
        b"limit=%.0f; remaining=" % spec.limit,
        unified,
        {},
    )


def _window_header(window: _WindowParts, used: float, reset_at: float | None) -> Header:
    """`gigawatt-window-<name>: limit=..; remaining=..; utilization=..; reset=<epoch s>` (reset
    left out while no window is open).

    One header a window rather than one per figure: a response already carries a dozen rate-limit
    headers, and the server checks every header it sends.
    """
    _, limit, mine, head, _, tails = window
    tail = tails.get(reset_at)
    if tail is None:
        if len(tails) >= _KEEP:
            tails.clear()
        tail = tails[reset_at] = b"" if reset_at is None else b"; reset=%d" % int(reset_at)
    left = limit - used
    utilization = used / limit if limit else 0.0
    value = b"%s%.0f; utilization=%.4f%s" % (head, left if left > 0.0 else 0.0, utilization, tail)
    return mine, value


def openai_headers(reading: LimitReading, refused_by: str | None = None) -> list[Header]:
    """OpenAI's six: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, where tokens is the
    tightest token bucket. OpenAI's convention has one token bucket and gigawatt two (input and
    output), so each of those is also given in full in gigawatt's own `gigawatt-bucket-<name>`;
    then each window in `gigawatt-window-<name>`."""
    (tats, usage), buckets, windows, now = reading
    bucket_parts, window_parts = _parts(buckets, windows)
    out: list[Header] = []
    tokens: tuple[int, float, bytes] | None = None  # the tightest: remaining, backlog, limit
    levels = bucket_levels(tats, buckets, now)
    for (remaining, backlog), (requests, limit, mine, head, _) in zip(
        levels, bucket_parts, strict=True
    ):
        if requests:
            out += (
                (b"x-ratelimit-limit-requests", limit),
                (b"x-ratelimit-remaining-requests", b"%d" % remaining),
                (b"x-ratelimit-reset-requests", _duration(backlog)),
            )
            continue
        out.append((mine, b"%s%d; reset=%.3f" % (head, remaining, now + backlog)))
        if tokens is None or remaining < tokens[0]:
            tokens = (remaining, backlog, limit)
    for (used, reset_at), window in zip(usage, window_parts, strict=True):
        out.append(_window_header(window, used, reset_at))
    if tokens is not None:
        remaining, backlog, limit = tokens
        out += (
            (b"x-ratelimit-limit-tokens", limit),
            (b"x-ratelimit-remaining-tokens", b"%d" % remaining),
            (b"x-ratelimit-reset-tokens", _duration(backlog)),
        )
    return out


def anthropic_headers(reading: LimitReading, refused_by: str | None = None) -> list[Header]:
    """`anthropic-ratelimit-<bucket>-{limit,remaining,reset}` for each bucket, then the same for
    `tokens` (the tightest token bucket), the unified windows, and gigawatt's window headers."""
    (tats, usage), buckets, windows, now = reading
    bucket_parts, window_parts = _parts(buckets, windows)
    out: list[Header] = []
    tokens: tuple[int, float, bytes] | None = None
    levels = bucket_levels(tats, buckets, now)
    for (remaining, backlog), (requests, limit, _, _, names) in zip(
        levels, bucket_parts, strict=True
    ):
        limit_name, remaining_name, reset_name = names
        out += (
            (limit_name, limit),
            (remaining_name, b"%d" % remaining),
            (reset_name, rfc3339(now + backlog)),
        )
        if not requests and (tokens is None or remaining < tokens[0]):
            tokens = (remaining, backlog, limit)
    if tokens is not None:
        remaining, backlog, limit = tokens
        out += (
            (b"anthropic-ratelimit-tokens-limit", limit),
            (b"anthropic-ratelimit-tokens-remaining", b"%d" % remaining),
            (b"anthropic-ratelimit-tokens-reset", rfc3339(now + backlog)),
        )
    out += unified_headers(window_parts, usage, refused_by)
    for (used, reset_at), window in zip(usage, window_parts, strict=True):
        out.append(_window_header(window, used, reset_at))
    return out


def unified_headers(
    windows: list[_WindowParts],
    usage: tuple[tuple[float, float | None], ...],
    refused_by: str | None,
) -> list[Header]:
    """Anthropic's `anthropic-ratelimit-unified-{5h,7d}-*`: the tightest session or rolling window
    as "5h", the tightest weekly window as "7d"."""
    out: list[Header] = []
    for label, (utilization_name, status_name, reset_name) in _UNIFIED_NAMES.items():
        tightest: tuple[float, float | None] | None = None  # utilization, reset
        refused = False
        for (used, reset_at), window in zip(usage, windows, strict=True):
            if window.unified != label:
                continue
            utilization = used / window.limit if window.limit else 0.0
            if tightest is None or utilization > tightest[0]:
                tightest = (utilization, reset_at)
            refused = refused or window.name == refused_by
        if tightest is None:
            continue
        utilization, reset_at = tightest
        state = (
            b"rejected"
            if refused
            else b"allowed_warning"
            if utilization >= WARNING_UTILIZATION
            else b"allowed"
        )
        out += [
            (utilization_name, b"%.4f" % min(utilization, 1.0)),
            (status_name, state),
        ]
        if reset_at is not None:
            out.append((reset_name, b"%d" % int(reset_at)))
    return out


_UNIFIED_NAMES = {
    label: tuple(
        f"anthropic-ratelimit-unified-{label.decode()}-{part}".encode()
        for part in ("utilization", "status", "reset")
    )
    for label in (b"5h", b"7d")
}
