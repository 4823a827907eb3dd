"""The limit headers, byte for byte, in both dialects."""

from __future__ import annotations

from gigawatt.gateway.headers import anthropic_headers, openai_duration, openai_headers
from gigawatt.limits.engine import statuses_of
from gigawatt.limits.types import BucketSpec, LimitReading, WindowSpec

NOW = 1_796_070_000.25


def bucket(kind: str, name: str, limit: int) -> BucketSpec:
    return BucketSpec(f"b:m:{kind}", name, "m", kind, limit, 60.0 / limit)  # type: ignore[arg-type]


def window(name: str, limit: float) -> WindowSpec:
    return WindowSpec(f"w:{name}", name, "session", 18_000.0, limit)


BUCKETS = (
    bucket("rpm", "requests", 600),
    bucket("input_tpm", "input-tokens", 100_000),
    bucket("output_tpm", "output-tokens", 20_000),
)
WINDOWS = (window("session-5h", 1_000_000.0), window("weekly", 9_000_000.0))
# Each bucket's theoretical arrival time and each window's (used, reset): requests 599 of 600
# left, input 96,000 of 100,000, output 12,000 of 20,000; the session window 85% used.
VIEW = (
    (NOW + 0.1, NOW + 2.4, NOW + 24.0),
    ((850_500.0, NOW + 3600.7), (900_000.0, None)),
)
LIMITS = LimitReading(VIEW, BUCKETS, WINDOWS, NOW)


def test_the_reading_is_what_the_headers_say() -> None:
    """The fixture, as statuses: what the expected values below are read from."""
    statuses = {s.name: (s.limit, s.remaining) for s in statuses_of(VIEW, BUCKETS, WINDOWS, NOW)}
    assert statuses == {
        "requests": (600, 599),
        "input-tokens": (100_000, 96_000),
        "output-tokens": (20_000, 12_000),
        "session-5h": (1_000_000.0, 149_500.0),
        "weekly": (9_000_000.0, 8_100_000.0),
    }


def test_openai_headers() -> None:
    assert dict(openai_headers(LIMITS)) == {
        b"x-ratelimit-limit-requests": b"600",
        b"x-ratelimit-remaining-requests": b"599",
        b"x-ratelimit-reset-requests": b"100ms",
        # the tightest token bucket: output, 12,000 left
        b"x-ratelimit-limit-tokens": b"20000",
        b"x-ratelimit-remaining-tokens": b"12000",
        b"x-ratelimit-reset-tokens": b"24s",
        b"gigawatt-bucket-input-tokens": b"limit=100000; remaining=96000; reset=1796070002.650",
        b"gigawatt-bucket-output-tokens": b"limit=20000; remaining=12000; reset=1796070024.250",
        b"gigawatt-window-session-5h": (
            b"limit=1000000; remaining=149500; utilization=0.8505; reset=1796073600"
        ),
        b"gigawatt-window-weekly": b"limit=9000000; remaining=8100000; utilization=0.1000",
    }


def test_anthropic_headers() -> None:
    headers = anthropic_headers(LIMITS)
    assert len(headers) == len(dict(headers))  # no name twice
    assert dict(headers) == {
        b"anthropic-ratelimit-requests-limit": b"600",
        b"anthropic-ratelimit-requests-remaining": b"599",
        b"anthropic-ratelimit-requests-reset": b"2026-11-30T20:20:00Z",
        b"anthropic-ratelimit-input-tokens-limit": b"100000",
        b"anthropic-ratelimit-input-tokens-remaining": b"96000",
        b"anthropic-ratelimit-input-tokens-reset": b"2026-11-30T20:20:02Z",
        b"anthropic-ratelimit-output-tokens-limit": b"20000",
        b"anthropic-ratelimit-output-tokens-remaining": b"12000",
        b"anthropic-ratelimit-output-tokens-reset": b"2026-11-30T20:20:24Z",
        b"anthropic-ratelimit-tokens-limit": b"20000",
        b"anthropic-ratelimit-tokens-remaining": b"12000",
        b"anthropic-ratelimit-tokens-reset": b"2026-11-30T20:20:24Z",
        # the session window is past the warning line, the weekly one is not
        b"anthropic-ratelimit-unified-5h-utilization": b"0.8505",
        b"anthropic-ratelimit-unified-5h-status": b"allowed_warning",
        b"anthropic-ratelimit-unified-5h-reset": b"1796073600",
        b"anthropic-ratelimit-unified-7d-utilization": b"0.1000",
        b"anthropic-ratelimit-unified-7d-status": b"allowed",
        b"gigawatt-window-session-5h": (
            b"limit=1000000; remaining=149500; utilization=0.8505; reset=1796073600"
        ),
        b"gigawatt-window-weekly": b"limit=9000000; remaining=8100000; utilization=0.1000",
    }


def test_refused_window_is_rejected() -> None:
    headers = dict(anthropic_headers(LIMITS, refused_by="weekly"))
    assert headers[b"anthropic-ratelimit-unified-7d-status"] == b"rejected"
    assert headers[b"anthropic-ratelimit-unified-5h-status"] == b"allowed_warning"


def test_remembered_parts_follow_changed_limits() -> None:
    """A window's limit or reset that changes (peak hours, a new period) shows at once."""
    first = dict(openai_headers(LIMITS))[b"gigawatt-window-session-5h"]
    lowered = (window("session-5h", 500_000.0),)
    reading = LimitReading(((), ((0.0, NOW + 9000),)), (), lowered, NOW)
    second = dict(openai_headers(reading))[b"gigawatt-window-session-5h"]
    assert first.startswith(b"limit=1000000;")
    assert second == b"limit=500000; remaining=500000; utilization=0.0000; reset=1796079000"


def test_openai_duration() -> None:
    assert [openai_duration(s) for s in (0.0124, 1.2, 61, 3600 * 5 + 7)] == [
        "12ms",
        "1s",
        "1m1s",
        "5h0m7s",
    ]
