"""The event-loop calls (`aadmit`, `areconcile`, `arelease`) decide exactly as the plain ones."""

from __future__ import annotations

import asyncio

import pytest

from gigawatt.limits import Usage
from gigawatt.policy.model import Rate, Window

from .conftest import MakeLimiter
from .policies import make_policy

T0 = 1_796_000_000.0


def test_async_calls_match_the_sync_ones(make_limiter: MakeLimiter) -> None:
    windows = (Window("session-5h", "session", 5 * 3600, 3000.0),)
    limiter = make_limiter(make_policy(rate=Rate(rpm=3), windows=windows))

    async def scenario() -> None:
        try:
            await steps()
        finally:
            close = getattr(limiter.store, "aclose", None)
            if close is not None:
                await close()

    async def steps() -> None:
        first = await limiter.aadmit("a", "pro", "small", Usage(100, 100), T0)
        assert first.admitted and first.reservation is not None
        assert await limiter.areconcile(first.reservation, Usage(100, 20), T0)
        assert not await limiter.areconcile(first.reservation, Usage(100, 20), T0)
        second = await limiter.aadmit("a", "pro", "small", Usage(100, 100), T0)
        assert second.reservation is not None
        assert await limiter.arelease(second.reservation, T0)
        assert not await limiter.arelease(second.reservation, T0)
        for _ in range(2):
            assert (await limiter.aadmit("a", "pro", "small", Usage(1, 1), T0)).admitted
        refused = await limiter.aadmit("a", "pro", "small", Usage(1, 1), T0)
        assert (refused.admitted, refused.refused_by) == (False, "requests")
        assert refused.retry_after == pytest.approx(20.0)

    asyncio.run(scenario())
    session = next(s for s in limiter.snapshot("a", "pro", T0) if s.name == "session-5h")
    assert session.used == 100 + 5 * 20 + 2 * (1 + 5)
