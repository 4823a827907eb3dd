"""The limiter's values: what it is asked to enforce, what it decides, what it keeps per account."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from gigawatt.limits.usage import Usage

BucketKind = Literal["rpm", "input_tpm", "output_tpm"]
WindowMode = Literal["session", "anchored", "rolling"]

# A bucket holds one minute's worth: that is the burst the policy promises.
BURST_S = 60.0
# A rolling window is kept as this many slots, so it is exact to 1/60 of its length.
ROLLING_SLOTS = 60
# Float slack. Epoch seconds near 1.8e9 are spaced 2.4e-7 s apart, so a bucket's theoretical arrival
# time carries rounding of that order per charge. A charge fits if it overshoots by at most a
# thousandth of a token or 10 microseconds, whichever is more: never a whole token below 6 million
# per minute, and never a refusal caused by rounding alone. Window credits get a relative slack.
TOKEN_SLACK = 1e-3
TIME_SLACK_S = 1e-5
CREDIT_SLACK = 1e-9


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """A GCRA token bucket for one (account, model): `limit` per minute, burst `limit`."""

    key: str
    name: str  # requests | input-tokens | output-tokens
    model: str
    kind: BucketKind
    limit: int
    interval_s: float  # 60 / limit: the time one token takes to drip back


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """A usage window as it stands at one instant (peak factor and calendar period applied)."""

    key: str
    name: str
    mode: WindowMode
    length_s: float
    limit: float  # credits, with the peak factor applied
    start: float = 0.0  # anchored only: this period's start
    end: float = 0.0  # anchored only: this period's end
    relief_at: float = 0.0  # when a peak-lowered limit rises again (0: not lowered)
    relief_limit: float = 0.0  # the limit from relief_at on


# A NamedTuple's own constructor is a Python function, a call more than this: the limiter's hot
# paths make their tuples with it, values in field order.
new_tuple = tuple.__new__


class BucketCharge(NamedTuple):
    key: str
    kind: BucketKind
    tokens: int
    interval_s: float


class WindowCharge(NamedTuple):
    """Credits put into one period of a window: a session/anchored start, or a rolling slot."""

    key: str
    rolling: bool
    credits: float
    period: float
    end: float  # when that period stops counting


class Reservation(NamedTuple):
    """What an admitted request holds until it is reconciled, released or expires.

    A NamedTuple rather than a frozen dataclass: one is made per request, and this is 5x cheaper.
    """

    id: str
    account: str
    plan: str
    model: str
    estimate: Usage
    admitted_at: float
    deadline: float
    buckets: tuple[BucketCharge, ...]
    windows: tuple[WindowCharge, ...]


class LimitStatus(NamedTuple):
    """One limit as the caller should see it: for headers, the usage API and refusals.

    A NamedTuple: every response's headers are built from five or more of these.
    """

    name: str
    scope: Literal["bucket", "window"]
    limit: float
    used: float
    remaining: float
    reset_at: float | None  # bucket: when full again; window: when it closes (None: none open)
    model: str | None = None  # the model a bucket belongs to; None for windows

    @property
    def utilization(self) -> float:
        return self.used / self.limit if self.limit else 0.0

    def as_json(self) -> dict[str, object]:
        """The fields as plain JSON values (reset time in epoch seconds), for APIs and the CLI."""
        return {
            "name": self.name,
            "scope": self.scope,
            "model": self.model,
            "used": self.used,
            "limit": self.limit,
            "remaining": self.remaining,
            "resets_at": self.reset_at,
        }


# The raw numbers behind a decision's statuses: each bucket's TAT, each window's (used, reset_at).
LimitView = tuple[tuple[float, ...], tuple[tuple[float, float | None], ...]]


class LimitReading(NamedTuple):
    """A decision's limits as raw numbers, with the specs and the instant to read them by: what
    `engine.statuses_of` makes statuses of, and what the gateway makes its headers from (one
    response's worth of headers costs less made straight from these than from statuses)."""

    view: LimitView
    buckets: tuple[BucketSpec, ...]
    windows: tuple[WindowSpec, ...]
    now: float


class Decision:
    """Admitted with a reservation, or refused by `refused_by` until `retry_after` seconds pass.

    `retry_after` is None on a refusal that waiting cannot cure: the request alone is too big.
    `limits` (every limit as it stands after the decision) is made from `reading` on first
    access, since the simulator makes millions of decisions and reads few of them, and the
    gateway makes its headers from the reading itself.
    """

    __slots__ = ("_limits", "admitted", "reading", "refused_by", "reservation", "retry_after")

    def __init__(
        self,
        admitted: bool,
        reservation: Reservation | None,
        limits: tuple[LimitStatus, ...] | None = None,
        refused_by: str | None = None,
        retry_after: float | None = None,
        reading: LimitReading | None = None,
    ) -> None:
        if limits is None and reading is None:
            raise ValueError("a decision needs its limits or the reading to make them from")
        self.admitted = admitted
        self.reservation = reservation
        self.refused_by = refused_by
        self.retry_after = retry_after
        self.reading = reading
        self._limits = limits

    @property
    def limits(self) -> tuple[LimitStatus, ...]:
        if self._limits is None:
            from gigawatt.limits.engine import statuses_of  # the engine imports this module

            assert self.reading is not None
            self._limits = statuses_of(*self.reading)
        return self._limits

    def __repr__(self) -> str:
        return (
            f"Decision(admitted={self.admitted}, refused_by={self.refused_by!r}, "
            f"retry_after={self.retry_after!r}, reservation={self.reservation!r})"
        )


class AdmitResult(NamedTuple):
    """What a store answers to an admission: the engine's verdict and every limit after it."""

    admitted: bool
    buckets: tuple[BucketCharge, ...]
    windows: tuple[WindowCharge, ...]
    refused_by: str | None
    retry_after: float | None
    view: LimitView


@dataclass(slots=True)
class ReservationRecord:
    """What the store keeps of an open reservation: enough to undo it at its deadline. Never
    changed once made, so a store that serialises it may keep its serialisable form in `plain`
    (an account with many requests in flight is written with every one of them, each time)."""

    deadline: float
    buckets: tuple[BucketCharge, ...]
    windows: tuple[WindowCharge, ...]
    plain: Any = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class AccountState:
    """Everything stored for one account. Mutated in place by `engine`, under the store's lock."""

    tats: dict[str, float] = field(default_factory=dict)  # bucket key -> theoretical arrival time
    starts: dict[str, float] = field(default_factory=dict)  # window key -> period start
    used: dict[str, float] = field(default_factory=dict)  # window key -> credits in that period
    slots: dict[str, dict[int, float]] = field(default_factory=dict)  # rolling key -> slot credits
    reservations: dict[str, ReservationRecord] = field(default_factory=dict)
