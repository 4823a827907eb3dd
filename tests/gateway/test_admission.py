"""The admission queue: capacity, priority then arrival, timeouts, cancellation."""

from __future__ import annotations

import asyncio

from gigawatt.gateway.admission import Pool


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_slots_up_to_capacity_then_waiting_in_priority_order() -> None:
    async def scenario() -> list[str]:
        pool = Pool("p", 2)
        assert await pool.acquire(0, 1) and await pool.acquire(0, 1)
        order: list[str] = []

        async def waiter(name: str, priority: int) -> None:
            assert await pool.acquire(priority, 5)
            order.append(name)

        tasks = []
        for name, priority in [("low-1", 0), ("high", 5), ("low-2", 0), ("mid", 2)]:
            tasks.append(asyncio.create_task(waiter(name, priority)))
            await asyncio.sleep(0)
        assert pool.queued == 4 and pool.load == 3.0
        for _ in range(4):
            pool.release()
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        assert pool.inflight == 2
        return order

    assert run(scenario()) == ["high", "mid", "low-1", "low-2"]


def test_a_wait_past_the_timeout_gives_up_and_leaves_no_trace() -> None:
    async def scenario() -> tuple[bool, int, int]:
        pool = Pool("p", 1)
        await pool.acquire(0, 1)
        got = await pool.acquire(0, 0.05)
        pool.release()
        return got, pool.inflight, pool.queued

    assert run(scenario()) == (False, 0, 0)


def test_a_cancelled_waiter_does_not_hold_a_slot() -> None:
    async def scenario() -> tuple[int, bool]:
        pool = Pool("p", 1)
        await pool.acquire(0, 1)
        task = asyncio.create_task(pool.acquire(0, 5))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        pool.release()
        return pool.inflight, await pool.acquire(0, 0)

    assert run(scenario()) == (0, True)


def test_zero_timeout_never_queues() -> None:
    async def scenario() -> tuple[bool, int]:
        pool = Pool("p", 1)
        await pool.acquire(0, 0)
        return await pool.acquire(9, 0), pool.queued

    assert run(scenario()) == (False, 0)
