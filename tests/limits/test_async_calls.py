"""The event-loop calls (`aadmit`, `areconcile`, `arelease`) decide exactly as the plain ones."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis

from gigawatt.errors import StateTimeout
from gigawatt.limits import Limiter, Usage, open_store
from gigawatt.policy.model import Rate, Window

from .conftest import MakeLimiter
from .policies import make_policy

T0 = 1_796_000_000.0


def run_on_a_loop(limiter: Limiter, steps: Callable[[], Awaitable[None]]) -> None:
    """`steps` on a fresh event loop, then the store's event-loop client closed on that loop."""

    async def scenario() -> None:
        try:
            await steps()
        finally:
            close = getattr(limiter.store, "aclose", None)
            if close is not None:
                await close()

    asyncio.run(scenario())


def test_async_calls_match_the_sync_ones(make_limiter: MakeLimiter) -> None:
    windows = (Window("session-5h", "session", 5 * 3600, 3000.0),)
    limiter = make_limiter(make_policy(rate=Rate(rpm=3), windows=windows))

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

    run_on_a_loop(limiter, steps)
    session = next(s for s in limiter.snapshot("a", "pro", T0) if s.name == "session-5h")
    assert session.used == 100 + 5 * 20 + 2 * (1 + 5)


def test_calls_made_together_on_an_event_loop_decide_one_by_one(make_limiter: MakeLimiter) -> None:
    """Many calls in one turn of the loop (the SQLite store commits them together): exactly the
    limit is admitted, a bad call fails alone, and every reconcile and release counts."""
    windows = (Window("session-5h", "session", 5 * 3600, 10_000.0),)
    limiter = make_limiter(make_policy(rate=Rate(rpm=10), windows=windows))

    async def steps() -> None:
        decisions = await asyncio.gather(
            *(limiter.aadmit(a, "pro", "small", Usage(10, 10), T0) for a in ["a", "b"] * 12)
        )
        admitted = [d for d in decisions if d.admitted]
        assert sum(d.reservation.account == "a" for d in admitted if d.reservation) == 10
        assert sum(d.reservation.account == "b" for d in admitted if d.reservation) == 10
        held = [d.reservation for d in admitted if d.reservation is not None]
        settled = await asyncio.gather(
            *(limiter.areconcile(r, Usage(10, 5), T0) for r in held[:8]),
            *(limiter.arelease(r, T0) for r in held[8:12]),
            limiter.areconcile(held[12], None, T0),  # type: ignore[arg-type]
            limiter.aadmit("a", "pro", "not-a-model", Usage(1, 1), T0),
            return_exceptions=True,
        )
        assert settled[:12] == [True] * 12
        assert isinstance(settled[12], ValueError) and isinstance(settled[13], ValueError)
        assert not await limiter.arelease(held[0], T0)

    run_on_a_loop(limiter, steps)
    used = {
        account: next(s for s in limiter.snapshot(account, "pro", T0) if s.name == "session-5h")
        for account in "ab"
    }
    # 20 admitted at 10+5*10 = 60 credits: 8 reconciled to 10+5*5 = 35, 4 released, 8 held.
    assert used["a"].used + used["b"].used == 8 * 35 + 8 * 60


def test_two_sqlite_stores_batching_on_one_file_admit_exactly_the_limit(tmp_path: Path) -> None:
    """Two stores on one file (as two gateway processes): each commits its loop turn's calls
    together, from states the other keeps changing; together they admit exactly the limit."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    policy = make_policy(rate=Rate(rpm=30), windows=())
    first, second = Limiter(policy, open_store(url)), Limiter(policy, open_store(url))

    async def burst() -> list[bool]:
        calls = []
        for i in range(40):
            limiter = first if i % 3 else second
            calls.append(limiter.aadmit("shared", "pro", "small", Usage(1, 1), T0 + i * 1e-3))
        return [d.admitted for d in await asyncio.gather(*calls)]

    try:
        admitted = asyncio.run(burst()) + asyncio.run(burst())
        assert sum(admitted) == 30
    finally:
        first.close()
        second.close()


def test_an_accounts_calls_in_one_turn_write_its_sqlite_row_once(tmp_path: Path) -> None:
    """A busy account's calls of one turn are made in order and its row written once; a call
    that fails part way through leaves nothing of itself, and the others count."""
    path = tmp_path / "state.db"
    limiter = Limiter(make_policy(rate=Rate(rpm=100), windows=()), open_store(f"sqlite:///{path}"))
    store = limiter.store

    async def steps() -> None:
        # The first call of a quiet loop runs at once (one write); the other nine of the turn
        # commit together.
        decisions = await asyncio.gather(
            *(limiter.aadmit("a", "pro", "small", Usage(1, 1), T0) for _ in range(10))
        )
        held = [d.reservation for d in decisions if d.reservation is not None]
        assert len(held) == 10
        rows = sqlite3.connect(path).execute("SELECT version FROM account_state").fetchall()
        assert rows == [(2,)]
        # In one turn: a good reconcile, one with a token count more than its one bucket (it
        # fails inside the engine, its reservation already off the state and its bucket
        # charged), and another good one.
        bad = store.areconcile(held[1], (1, 1), 0.0, {}, T0)  # type: ignore[attr-defined]
        settled = await asyncio.gather(
            limiter.areconcile(held[0], Usage(1, 1), T0),
            bad,
            limiter.areconcile(held[2], Usage(1, 1), T0),
            return_exceptions=True,
        )
        assert settled[0] is True and settled[2] is True
        assert isinstance(settled[1], ValueError)
        # The failed call left its reservation held: it can still be settled.
        assert await limiter.arelease(held[1], T0)
        assert not await limiter.arelease(held[0], T0)

    try:
        run_on_a_loop(limiter, steps)
    finally:
        limiter.close()


def test_redis_reloads_its_scripts_after_they_are_flushed(fresh_redis_url: str) -> None:
    """A restarted or flushed Redis forgets the scripts: single, pipelined and plain calls all
    load them again and decide as before."""
    limiter = Limiter(make_policy(rate=Rate(rpm=10), windows=()), open_store(fresh_redis_url))
    server = redis.Redis.from_url(fresh_redis_url)

    async def burst(count: int) -> int:
        try:
            calls = [limiter.aadmit("a", "pro", "small", Usage(1, 1), T0) for _ in range(count)]
            return sum(d.admitted for d in await asyncio.gather(*calls))
        finally:
            await limiter.store.aclose()  # type: ignore[attr-defined]

    try:
        assert limiter.admit("a", "pro", "small", Usage(1, 1), T0).admitted
        server.script_flush()
        assert asyncio.run(burst(4)) == 4  # pipelined
        server.script_flush()
        assert asyncio.run(burst(1)) == 1  # alone
        server.script_flush()
        assert limiter.admit("a", "pro", "small", Usage(1, 1), T0).admitted
        assert asyncio.run(burst(6)) == 3  # the limit of 10 reached
    finally:
        server.close()
        limiter.close()


def test_a_sqlite_file_held_by_another_process_is_waited_for_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    """While another connection holds the write lock, calls wait on the loop, which keeps
    running; they go through once the lock is let go, and time out if it never is."""
    path = tmp_path / "state.db"
    limiter = Limiter(make_policy(rate=Rate(rpm=100)), open_store(f"sqlite:///{path}", 1.0))
    limiter.admit("a", "pro", "small", Usage(1, 1), T0)  # the schema and a row exist
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")

    async def ticks_while(waiting: Awaitable[object], seconds: float) -> tuple[int, object]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.ensure_future(tick())
        try:
            outcome = await asyncio.wait_for(asyncio.shield(waiting), seconds)
        except Exception as exc:
            outcome = exc
        ticker.cancel()
        return ticks, outcome

    async def steps() -> None:
        # Alone on a quiet loop, and several in one turn.
        calls = [limiter.aadmit(a, "pro", "small", Usage(1, 1), T0) for a in ("a", "b", "c")]
        together = asyncio.gather(*calls, return_exceptions=True)
        threading.Timer(0.3, holder.execute, ("COMMIT",)).start()
        ticks, decisions = await ticks_while(together, 5.0)
        assert ticks >= 10  # the loop ran meanwhile: about 30 ticks of 10 ms
        assert [d.admitted for d in decisions] == [True, True, True]  # type: ignore[union-attr]
        holder.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        ticks, outcome = await ticks_while(limiter.aadmit("d", "pro", "small", Usage(1, 1), T0), 5)
        assert isinstance(outcome, StateTimeout)
        assert 0.9 < time.monotonic() - started < 3
        assert ticks >= 50

    try:
        asyncio.run(steps())
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()
    assert limiter.snapshot("d", "pro", T0)[0].used == 0  # the timed-out call did nothing
