"""Admission to an upstream pool: at most `max_inflight` requests in flight, the rest queued by
plan priority (higher first), then arrival, each for at most its plan's queue timeout."""

from __future__ import annotations

import asyncio
import heapq
import itertools


class Pool:
    def __init__(self, name: str, max_inflight: int) -> None:
        self.name = name
        self.max_inflight = max_inflight
        self.inflight = 0
        self._queue: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    @property
    def queued(self) -> int:
        if not self._queue:
            return 0
        return sum(1 for _, _, f in self._queue if not f.done())

    @property
    def load(self) -> float:
        """In flight plus queued, as a share of capacity: above 1 means requests are waiting."""
        return (self.inflight + self.queued) / self.max_inflight

    def try_acquire(self) -> bool:
        """Take a free slot at once, if one is free and nobody is waiting for one."""
        if self.inflight < self.max_inflight and not self.queued:
            self.inflight += 1
            return True
        return False

    async def acquire(self, priority: int, timeout_s: float) -> bool:
        """Take a slot, waiting up to `timeout_s`; False if none came in time."""
        if self.try_acquire():
            return True
        if timeout_s <= 0:
            return False
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (-priority, next(self._arrivals), future))
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout_s)
            return True
        except TimeoutError:
            if future.done():  # the slot arrived just as the wait ended: keep it
                return True
            future.cancel()
            return False
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # handed a slot, but the caller is gone: pass it on
            else:
                future.cancel()
            raise

    def release(self) -> None:
        """Give the slot to the first live waiter, or free it."""
        while self._queue:
            _, _, future = heapq.heappop(self._queue)
            if not future.done():
                future.set_result(None)
                return
        self.inflight -= 1
