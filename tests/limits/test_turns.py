"""TurnBatch: the calls of one turn of an event loop run together; alone, a call may run at once."""

from __future__ import annotations

import asyncio

from gigawatt.limits.storage.turns import TurnBatch


def test_calls_of_one_turn_run_as_one_batch_in_order() -> None:
    batches: list[list[int]] = []

    def run(calls: list[int]) -> list[object]:
        batches.append(calls)
        return [ValueError("odd") if c % 2 else c * 10 for c in calls]

    async def scenario() -> list[object]:
        turns: TurnBatch[int] = TurnBatch(run)
        return await asyncio.gather(*(turns.submit(i) for i in range(4)), return_exceptions=True)

    outcomes = asyncio.run(scenario())
    assert batches == [[0, 1, 2, 3]]
    assert outcomes[0] == 0 and outcomes[2] == 20
    assert isinstance(outcomes[1], ValueError) and isinstance(outcomes[3], ValueError)


def test_a_call_is_alone_only_while_the_loop_makes_one_call_a_turn() -> None:
    async def scenario() -> list[bool]:
        turns: TurnBatch[int] = TurnBatch(lambda calls: calls)
        seen = [turns.enter(0) is None]  # nothing yet: at once
        second = turns.enter(1)  # a second call in the same turn: queued
        seen.append(second is None)
        assert second is not None and await second == 1  # that turn made two calls
        third = turns.enter(2)  # after a busy turn: queued
        seen.append(third is None)
        assert third is not None and await third == 2  # a turn of one call
        seen.append(turns.enter(3) is None)  # quiet again: at once
        return seen

    assert asyncio.run(scenario()) == [True, False, False, True]


def test_a_loop_that_stopped_mid_turn_leaves_nothing_behind_for_the_next() -> None:
    turns: TurnBatch[int] = TurnBatch(lambda calls: [c * 2 for c in calls])
    first = asyncio.new_event_loop()
    seen: list[bool] = []

    def call_then_stop() -> None:
        seen.append(turns.enter(0) is None)  # schedules the end of this turn for the next...
        first.stop()  # ...iteration, which never comes

    first.call_soon(call_then_stop)
    first.run_forever()
    first.close()
    assert seen == [True]

    async def on_a_new_loop() -> tuple[bool, object]:
        alone = turns.enter(0) is None
        return alone, await asyncio.wait_for(turns.submit(21), timeout=2)

    assert asyncio.run(on_a_new_loop()) == (True, 42)
