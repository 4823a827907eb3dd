"""The limiter's decisions as pure functions over one account's state.

No clock, no I/O: every function takes `now` and mutates only the `AccountState` it is given, so the
memory and SQLite stores run exactly this code under their own lock or transaction. The Redis
store runs a line-for-line port of it in `lua/` (one script call per decision), and one
conformance suite holds all three to the same answers.

Admission checks every limit before it writes anything, so a refusal leaves the state untouched
(apart from releasing reservations whose deadline has passed, which every call does first).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from gigawatt.limits.types import (
    BURST_S,
    CREDIT_SLACK,
    ROLLING_SLOTS,
    TIME_SLACK_S,
    TOKEN_SLACK,
    AccountState,
    AdmitResult,
    BucketCharge,
    BucketSpec,
    LimitStatus,
    LimitView,
    Reservation,
    ReservationRecord,
    WindowCharge,
    WindowSpec,
    new_tuple,
)


def sweep(state: AccountState, now: float) -> None:
    """Release every reservation whose deadline has passed: a crashed caller leaks nothing."""
    if not state.reservations:
        return
    # Most calls find nothing expired: look before making a list.
    for rec in state.reservations.values():
        if rec.deadline <= now:
            break
    else:
        return
    expired = [rid for rid, rec in state.reservations.items() if rec.deadline <= now]
    for rid in expired:
        record = state.reservations.pop(rid)
        _undo(state, record.buckets, record.windows, now)


def admit(
    state: AccountState,
    buckets: Sequence[BucketSpec],
    bucket_costs: Sequence[int],
    windows: Sequence[WindowSpec],
    credits: float,
    now: float,
    reservation_id: str,
    deadline: float,
) -> AdmitResult:
    """Reserve `bucket_costs` in every bucket and `credits` in every window, or nothing at all."""
    sweep(state, now)
    refused_by: str | None = None
    retry_after: float | None = 0.0
    bucket_tats = state.tats
    for spec, cost in zip(buckets, bucket_costs, strict=True):
        if cost <= spec.limit:
            # _bucket_wait's answer when the cost fits, inlined.
            interval = spec.interval_s
            tat = bucket_tats.get(spec.key, now)
            over = (tat if tat > now else now) + cost * interval - now - BURST_S
            if over <= TIME_SLACK_S or over <= TOKEN_SLACK * interval:
                continue
        wait = _bucket_wait(state, spec, cost, now)
        if wait != 0.0:
            refused_by, retry_after = _worse(refused_by, retry_after, spec.name, wait)
    starts, used = state.starts, state.used
    for spec in windows:
        if spec.mode == "session":
            # The common case, inlined: a session window the request fits in.
            key = spec.key
            start = starts.get(key)
            held = 0.0 if start is None or now >= start + spec.length_s else used.get(key, 0.0)
            limit = spec.limit
            if held + credits <= limit + CREDIT_SLACK * (limit if limit > 1.0 else 1.0):
                continue
        wait = _window_wait(state, spec, credits, now)
        if wait != 0.0:
            refused_by, retry_after = _worse(refused_by, retry_after, spec.name, wait)
    if refused_by is not None:
        return AdmitResult(
            False, (), (), refused_by, retry_after, view(state, buckets, windows, now)
        )

    bucket_charges = []
    tats = []
    for spec, cost in zip(buckets, bucket_costs, strict=True):
        # _add_to_bucket, inlined.
        key, interval = spec.key, spec.interval_s
        bucket_charges.append(new_tuple(BucketCharge, (key, spec.kind, cost, interval)))
        tat = bucket_tats.get(key, now)
        new_tat = (tat if tat > now else now) + cost * interval
        if new_tat < now:
            new_tat = now
        bucket_tats[key] = new_tat
        tats.append(new_tat)
    window_charges = []
    usage = []
    for spec in windows:
        if spec.mode == "session":
            # _charge_current, inlined for the commonest window.
            key = spec.key
            start = starts.get(key)
            if start is None or now >= start + spec.length_s:
                starts[key] = start = now
                total = credits
            else:
                total = used.get(key, 0.0) + credits
            used[key] = total
            end = start + spec.length_s
            window_charges.append(new_tuple(WindowCharge, (key, False, credits, start, end)))
            usage.append((total, end))
            continue
        charge = _charge_current(state, spec, credits, now)
        window_charges.append(charge)
        # What the window holds now is known without a second look, except for a rolling one.
        usage.append(
            _open_usage(state, spec, now) if charge.rolling else (used[spec.key], charge.end)
        )
    b_charges, w_charges = tuple(bucket_charges), tuple(window_charges)
    state.reservations[reservation_id] = ReservationRecord(deadline, b_charges, w_charges)
    view_now = (tuple(tats), tuple(usage))
    return new_tuple(AdmitResult, (True, b_charges, w_charges, None, None, view_now))


def reconcile(
    state: AccountState,
    reservation: Reservation,
    actual_bucket_tokens: Sequence[int],
    actual_credits: float,
    windows_now: Mapping[str, WindowSpec],
    now: float,
) -> bool:
    """Replace a reservation with what was really used.

    A reservation released at its deadline is charged in full; one already reconciled or released
    (and not yet past its deadline) is left alone and False is returned. Each window is corrected
    in the period the reservation went into while that period is open; once it has closed, only
    usage beyond the reservation is charged, to the period open now (`windows_now`).
    """
    sweep(state, now)
    held = state.reservations.pop(reservation.id, None) is not None
    if not held and now < reservation.deadline:
        return False
    tats = state.tats
    for charge, actual in zip(reservation.buckets, actual_bucket_tokens, strict=True):
        delta = actual - charge.tokens if held else actual
        if delta:
            # _add_to_bucket, inlined: this runs for every bucket of every request.
            key = charge.key
            tat = tats.get(key, now)
            new_tat = (tat if tat > now else now) + delta * charge.interval_s
            tats[key] = new_tat if new_tat > now else now
    starts, used = state.starts, state.used
    for charge in reservation.windows:
        delta = actual_credits - charge.credits if held else actual_credits
        key = charge.key
        # _period_is_open and _add_to_period, inlined for session and anchored windows: this
        # runs for every window of every request.
        if charge.rolling:
            if _period_is_open(state, charge, now):
                _add_to_period(state, charge, delta)
                continue
        elif now < charge.end and starts.get(key) == charge.period:
            total = used.get(key, 0.0) + delta
            used[key] = total if total > 0.0 else 0.0
            continue
        if delta > 0 and key in windows_now:
            _charge_current(state, windows_now[key], delta, now)
    return True


def release(state: AccountState, reservation_id: str, now: float) -> bool:
    """Undo an open reservation (the upstream failed before producing anything)."""
    sweep(state, now)
    record = state.reservations.pop(reservation_id, None)
    if record is None:
        return False
    _undo(state, record.buckets, record.windows, now)
    return True


def view(
    state: AccountState, buckets: Sequence[BucketSpec], windows: Sequence[WindowSpec], now: float
) -> LimitView:
    """The raw numbers of every limit at `now`, cheap to take; `statuses_of` makes them readable."""
    tats = state.tats
    return (
        tuple(tats.get(spec.key, now) for spec in buckets),
        tuple(_open_usage(state, spec, now) for spec in windows),
    )


def statuses_of(
    raw: LimitView, buckets: Sequence[BucketSpec], windows: Sequence[WindowSpec], now: float
) -> tuple[LimitStatus, ...]:
    out = []
    levels = bucket_levels(raw[0], buckets, now)
    for (remaining, backlog), spec in zip(levels, buckets, strict=True):
        limit = spec.limit
        status = (
            spec.name,
            "bucket",
            limit,
            limit - remaining,
            remaining,
            now + backlog,
            spec.model,
        )
        out.append(new_tuple(LimitStatus, status))
    for (used, reset_at), spec in zip(raw[1], windows, strict=True):
        limit = spec.limit
        left = limit - used
        status = (spec.name, "window", limit, used, left if left > 0.0 else 0.0, reset_at, None)
        out.append(new_tuple(LimitStatus, status))
    return tuple(out)


def bucket_levels(
    tats: Sequence[float], buckets: Sequence[BucketSpec], now: float
) -> list[tuple[int, float]]:
    """Each bucket's whole tokens left and its backlog (seconds until full again), from its TAT.

    Every response's headers are made from these: one plain loop, no call per bucket."""
    out = []
    for tat, spec in zip(tats, buckets, strict=True):
        backlog = tat - now if tat > now else 0.0
        interval, limit = spec.interval_s, spec.limit
        slack = TOKEN_SLACK * interval  # the slack _bucket_wait allows
        remaining = math.floor(
            (BURST_S - backlog + (slack if slack > TIME_SLACK_S else TIME_SLACK_S)) / interval
        )
        out.append((0 if remaining < 0 else limit if remaining > limit else remaining, backlog))
    return out


def statuses(
    state: AccountState, buckets: Sequence[BucketSpec], windows: Sequence[WindowSpec], now: float
) -> tuple[LimitStatus, ...]:
    """Every limit as it stands at `now` (read only)."""
    return statuses_of(view(state, buckets, windows, now), buckets, windows, now)


# --- buckets -------------------------------------------------------------------------------


def _bucket_wait(state: AccountState, spec: BucketSpec, cost: int, now: float) -> float | None:
    """0.0 if `cost` fits now, else seconds until it does (None: it never will)."""
    if cost > spec.limit:
        return None
    tat = state.tats.get(spec.key, now)
    new_tat = (tat if tat > now else now) + cost * spec.interval_s
    over = new_tat - now - BURST_S
    # Within the slack (TOKEN_SLACK of a token's interval, at least TIME_SLACK_S): it fits.
    if over <= TIME_SLACK_S or over <= TOKEN_SLACK * spec.interval_s:
        return 0.0
    return over


def _add_to_bucket(
    state: AccountState, key: str, tokens: int | float, interval: float, now: float
) -> float:
    tat = state.tats.get(key, now)
    new_tat = (tat if tat > now else now) + tokens * interval
    if new_tat < now:
        new_tat = now
    state.tats[key] = new_tat
    return new_tat


# --- windows -------------------------------------------------------------------------------


def _fits(credits: float, limit: float) -> bool:
    return credits <= limit + CREDIT_SLACK * (limit if limit > 1.0 else 1.0)


def _slot_s(spec_length_s: float) -> float:
    return spec_length_s / ROLLING_SLOTS


def _open_usage(state: AccountState, spec: WindowSpec, now: float) -> tuple[float, float | None]:
    """(credits used, when the window resets) for the period open at `now`."""
    key = spec.key
    if spec.mode == "rolling":
        slots = state.slots.get(key)
        if not slots:
            return 0.0, None
        slot_s = _slot_s(spec.length_s)
        first = math.floor(now / slot_s) - ROLLING_SLOTS + 1
        # Summed in slot order, one by one, as the Lua port does: the same order gives the same
        # float (and a loop is cheaper here than a comprehension and a generator).
        used, oldest = 0.0, None
        for i in sorted(slots):
            if i >= first:
                used += slots[i]
                if oldest is None:
                    oldest = i
        if oldest is None:
            return 0.0, None
        return used, (oldest + ROLLING_SLOTS) * slot_s
    start = state.starts.get(key)
    if spec.mode == "anchored":
        return (state.used.get(key, 0.0) if start == spec.start else 0.0), spec.end
    if start is None or now >= start + spec.length_s:
        return 0.0, None
    return state.used.get(key, 0.0), start + spec.length_s


def _window_wait(state: AccountState, spec: WindowSpec, credits: float, now: float) -> float | None:
    used, reset_at = _open_usage(state, spec, now)
    limit = spec.limit
    if used + credits <= limit + CREDIT_SLACK * (limit if limit > 1.0 else 1.0):  # _fits, inlined
        return 0.0
    options: list[float] = []
    if _fits(credits, spec.limit):
        freed_at = (
            _rolling_fits_at(state, spec, credits, now) if spec.mode == "rolling" else reset_at
        )
        if freed_at is not None:
            options.append(freed_at)
    if spec.relief_at and _fits(credits, spec.relief_limit):
        if _fits(used + credits, spec.relief_limit):
            options.append(spec.relief_at)
        elif reset_at is not None:
            options.append(max(reset_at, spec.relief_at))
    if not options:
        return None
    return max(min(options) - now, TIME_SLACK_S)


def _rolling_fits_at(
    state: AccountState, spec: WindowSpec, credits: float, now: float
) -> float | None:
    """The first slot boundary at which enough old usage has left the window for `credits`."""
    slots = state.slots.get(spec.key, {})
    slot_s = _slot_s(spec.length_s)
    first = math.floor(now / slot_s) - ROLLING_SLOTS + 1
    live = sorted(i for i in slots if i >= first)
    remaining = sum(slots[i] for i in live)
    for i in live:
        remaining -= slots[i]
        if _fits(remaining + credits, spec.limit):
            return (i + ROLLING_SLOTS) * slot_s
    return None


def _charge_current(
    state: AccountState, spec: WindowSpec, credits: float, now: float
) -> WindowCharge:
    """Add credits to the period open at `now`, opening one if needed."""
    key = spec.key
    if spec.mode == "rolling":
        slot_s = _slot_s(spec.length_s)
        current = math.floor(now / slot_s)
        slots = state.slots.setdefault(key, {})
        stale = current - ROLLING_SLOTS
        if slots and min(slots) <= stale:  # rarely: look before making a list
            for i in [i for i in slots if i <= stale]:
                del slots[i]
        slots[current] = slots.get(current, 0.0) + credits
        return WindowCharge(key, True, credits, float(current), (current + ROLLING_SLOTS) * slot_s)
    start = state.starts.get(key)
    if spec.mode == "anchored":
        if start != spec.start:
            state.starts[key] = start = spec.start
            state.used[key] = 0.0
        end = spec.end
    else:
        if start is None or now >= start + spec.length_s:
            state.starts[key] = start = now
            state.used[key] = 0.0
        end = start + spec.length_s
    state.used[key] = state.used.get(key, 0.0) + credits
    return WindowCharge(key, False, credits, start, end)


def _period_is_open(state: AccountState, charge: WindowCharge, now: float) -> bool:
    if now >= charge.end:
        return False
    if charge.rolling:
        return int(charge.period) in state.slots.get(charge.key, {})
    return state.starts.get(charge.key) == charge.period


def _add_to_period(state: AccountState, charge: WindowCharge, delta: float) -> None:
    if charge.rolling:
        slots = state.slots[charge.key]
        slot = int(charge.period)
        slots[slot] = max(0.0, slots[slot] + delta)
    else:
        state.used[charge.key] = max(0.0, state.used.get(charge.key, 0.0) + delta)


# --- shared --------------------------------------------------------------------------------


def _undo(
    state: AccountState,
    buckets: Sequence[BucketCharge],
    windows: Sequence[WindowCharge],
    now: float,
) -> None:
    for charge in buckets:
        if charge.tokens:
            _add_to_bucket(state, charge.key, -charge.tokens, charge.interval_s, now)
    for charge in windows:
        if _period_is_open(state, charge, now):
            _add_to_period(state, charge, -charge.credits)


def _worse(
    name: str | None, wait: float | None, new_name: str, new_wait: float | None
) -> tuple[str, float | None]:
    """Keep the refusal that lasts longest: retrying before it ends would be refused again."""
    if name is None:
        return new_name, new_wait
    if wait is None:
        return name, wait
    if new_wait is None or new_wait > wait:
        return new_name, new_wait
    return name, wait
