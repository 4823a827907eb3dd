"""Calls made during one turn of an event loop, run together when the turn ends.

A store whose cost is per round trip or per commit rather than per call (SQLite, Redis) queues a
gateway's calls here and runs them at once: a busy gateway makes many in one turn of its loop.
Each call is still decided on its own; only the trip to the state store is shared.

A store whose single call is cheap and synchronous (SQLite) may also run a call at once, when the
loop looks idle: `enter()` says so when the last turn that made calls made just one and this turn
has made none. Waiting for the end of the turn costs a gateway two extra turns of its loop per
call (the batch, then waking the caller), which at low load is most of a call's cost; under load
turns make many calls and every call waits for its batch, as before.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

Call = TypeVar("Call")
# What running a batch gives back: one result, or the exception it raised, per call, in order.
Outcomes = Sequence[Any]


class TurnBatch(Generic[Call]):
    """Queues calls until the end of the current turn of the running event loop, then hands them
    all to `run`, which returns (or, when it is a coroutine function, resolves to) one outcome
    per call: a result, or the exception that call raised. An exception from `run` itself goes to
    every call of the batch."""

    def __init__(self, run: Callable[[list[Call]], Outcomes | Awaitable[Outcomes]]) -> None:
        self._run = run
        self._queued: list[tuple[Call, asyncio.Future[Any]]] = []
        self._running: set[asyncio.Future[None]] = set()
        self._turn_calls = 0  # calls made during the current turn, run at once or queued
        self._last_turn_calls = 0  # the same, for the last turn that made any
        self._loop: asyncio.AbstractEventLoop | None = None

    def enter(self, call: Call) -> asyncio.Future[Any] | None:
        """None when the caller may run `call` at once, outside any batch: this turn has made no
        call yet and the last turn that made calls made only one (the call is counted in this
        turn, so a second call in the same turn is queued). Else `call` queued, and the future
        of its outcome."""
        loop = self._running_loop()
        alone = not self._turn_calls and self._last_turn_calls <= 1
        self._count_call(loop)
        return None if alone else self._queue(loop, call)

    def submit(self, call: Call) -> asyncio.Future[Any]:
        loop = self._running_loop()
        self._count_call(loop)
        return self._queue(loop, call)

    def _queue(self, loop: asyncio.AbstractEventLoop, call: Call) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = loop.create_future()
        self._queued.append((call, future))
        return future

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The running loop. On another loop than the last one, everything starts over: an
        end-of-turn callback left on a loop that stopped before running it never will."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._turn_calls, self._last_turn_calls = loop, 0, 0
            self._queued = []  # futures of a stopped loop: nobody can await them any more
        return loop

    def _count_call(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._turn_calls:
            loop.call_soon(self._end_of_turn)
        self._turn_calls += 1

    def _end_of_turn(self) -> None:
        self._last_turn_calls, self._turn_calls = self._turn_calls, 0
        queued, self._queued = self._queued, []
        if not queued:  # the turn's one call ran at once
            return
        futures = [future for _, future in queued]
        try:
            outcomes = self._run([call for call, _ in queued])
        except Exception as exc:  # every waiting caller must hear of it
            _deliver(futures, [exc] * len(futures))
            return
        if inspect.isawaitable(outcomes):
            task = asyncio.ensure_future(_deliver_when_done(futures, outcomes))
            self._running.add(task)  # a task nobody holds may be collected before it ends
            task.add_done_callback(self._running.discard)
        else:
            _deliver(futures, outcomes)


async def _deliver_when_done(
    futures: list[asyncio.Future[Any]], outcomes: Awaitable[Outcomes]
) -> None:
    try:
        done = await outcomes
    except Exception as exc:  # every waiting caller must hear of it
        done = [exc] * len(futures)
    _deliver(futures, done)


def _deliver(futures: list[asyncio.Future[Any]], outcomes: Outcomes) -> None:
    for future, outcome in zip(futures, outcomes, strict=True):
        if future.done():  # cancelled while queued; the call was made all the same
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
