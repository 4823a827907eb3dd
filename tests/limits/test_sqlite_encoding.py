"""An account's state survives the SQLite row format, reservations and all, any number of times."""

from __future__ import annotations

import pytest

from gigawatt.errors import StateError
from gigawatt.limits.storage.sqlite import decode_state, encode_state
from gigawatt.limits.types import AccountState, BucketCharge, ReservationRecord, WindowCharge


def a_state(reservations: int) -> AccountState:
    state = AccountState(
        tats={"b:pro:rpm": 1_796_000_000.5},
        starts={"w:session-5h": 1_796_000_000.0},
        used={"w:session-5h": 120.0},
        slots={"w:rolling-24h": {7: 3.5, 8: 1.0}},
    )
    for i in range(reservations):
        state.reservations[f"r{i}"] = ReservationRecord(
            1_796_000_600.0 + i,
            (
                BucketCharge("b:pro:rpm", "rpm", 1, 0.1),
                BucketCharge("b:pro:in", "input_tpm", i, 1e-3),
            ),
            (WindowCharge("w:session-5h", False, 2.5 * i, 1_796_000_000.0, 1_796_018_000.0),),
        )
    return state


@pytest.mark.parametrize("reservations", [0, 1, 64])
def test_a_state_reads_back_as_written_again_and_again(reservations: int) -> None:
    state = a_state(reservations)
    once = decode_state(encode_state(state))
    assert once == state
    # A decoded state is written from the forms it was read with; that reads back the same too.
    twice = decode_state(encode_state(once))
    assert twice == state
    assert all(isinstance(r.buckets[0], BucketCharge) for r in twice.reservations.values())


def test_a_reservation_added_after_a_write_is_written_too() -> None:
    state = a_state(2)
    encode_state(state)  # the first two are now kept in their written form
    state.reservations["late"] = a_state(3).reservations["r2"]
    del state.reservations["r0"]
    assert decode_state(encode_state(state)) == state


def test_a_row_in_an_unknown_format_is_a_state_error() -> None:
    with pytest.raises(StateError, match="unknown limiter state format"):
        decode_state(b"\x09" + encode_state(a_state(1))[1:])
