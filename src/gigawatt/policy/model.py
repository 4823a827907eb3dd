"""The policy's typed, immutable objects. `load.py` builds them from TOML and checks them once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Protocol = Literal["openai", "anthropic", "sim"]
WindowKind = Literal["session", "rolling", "weekly"]
OnStateError = Literal["open", "closed"]

SECONDS_PER_DAY = 86_400
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY


@dataclass(frozen=True, slots=True)
class CreditWeights:
    """Credits charged per token of each kind, for one model."""

    input: float
    output: float
    cache_read: float
    cache_write: float


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    credits: CreditWeights


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    protocol: Protocol
    url: str | None  # None only for the built-in `sim` backend served in-process
    models: tuple[str, ...]
    max_inflight: int
    timeout_s: float
    forward_priority: bool  # send the plan's priority in the body (vLLM's `priority` field)
    api_key_env: str | None  # name of the environment variable holding the upstream's key


@dataclass(frozen=True, slots=True)
class Rate:
    """API rate limits for one model; None means that bucket does not apply."""

    rpm: int | None = None
    input_tpm: int | None = None
    output_tpm: int | None = None


@dataclass(frozen=True, slots=True)
class WeeklyAnchor:
    """A calendar start for weekly windows: a weekday (0 = Monday) and a time of day, local time."""

    weekday: int
    seconds_into_day: int


@dataclass(frozen=True, slots=True)
class Window:
    """A usage window counted in credits.

    `session` opens at the first request when none is open and lasts `length_s`; `rolling` sums the
    last `length_s` seconds; `weekly` lasts a week and opens at first use, or on `anchor` if set.
    `models` limits the window to some models' usage (a per-model cap); empty means every model.
    """

    name: str
    kind: WindowKind
    length_s: int
    limit: float
    models: tuple[str, ...] = ()
    anchor: WeeklyAnchor | None = None

    def applies_to(self, model: str) -> bool:
        return not self.models or model in self.models


@dataclass(frozen=True, slots=True)
class Peak:
    """Hours during which a plan's window limits are multiplied by `factor`.

    `start_s`/`end_s` are seconds into the local day; an end before the start wraps past midnight.
    `days` are weekdays (0 = Monday) on which a peak period starts.
    """

    start_s: int
    end_s: int
    days: frozenset[int]
    timezone: str
    factor: float

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def period_at(self, now: float) -> tuple[float, float] | None:
        """The (start, end) epoch seconds of the peak period containing `now`, or None."""
        local = datetime.fromtimestamp(now, self.zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        length_s = (self.end_s - self.start_s) % SECONDS_PER_DAY or SECONDS_PER_DAY
        # A period that wraps midnight may have started yesterday.
        for day_offset in (0, -1):
            day = midnight + timedelta(days=day_offset)
            if day.weekday() not in self.days:
                continue
            start = _local_epoch(day, self.start_s, self.zone)
            # The end is wall-clock time too: across a DST change "00:00-06:00" lasts 5 or 7 hours.
            end = _local_epoch(day, self.start_s + length_s, self.zone)
            if start <= now < end:
                return start, end
        return None

    def next_change(self, now: float) -> float:
        """The next epoch second after `now` at which being in or out of peak may change."""
        period = self.period_at(now)
        if period is not None:
            return period[1]
        local = datetime.fromtimestamp(now, self.zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        for day_offset in range(0, 8):
            day = midnight + timedelta(days=day_offset)
            if day.weekday() in self.days:
                start = _local_epoch(day, self.start_s, self.zone)
                if start > now:
                    return start
        return now + SECONDS_PER_WEEK


def _local_epoch(midnight: datetime, seconds_into_day: int, zone: ZoneInfo) -> float:
    """Epoch seconds of a wall-clock time on a local day (DST-correct: builds the wall time)."""
    wall = datetime(midnight.year, midnight.month, midnight.day, tzinfo=zone) + timedelta(
        seconds=seconds_into_day
    )
    # Adding a timedelta to an aware datetime keeps the wall offset of midnight; rebuild from
    # the wall-clock fields so a DST change that day is honoured.
    wall = datetime(
        wall.year, wall.month, wall.day, wall.hour, wall.minute, wall.second, tzinfo=zone
    )
    return wall.timestamp()


@dataclass(frozen=True, slots=True)
class Degrade:
    """What a plan may lose when its upstream pool is above `above_load` of its capacity."""

    above_load: float
    max_tokens: int | None = None
    thinking_budget: int | None = None
    fallback_model: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    priority: int  # higher is served first under load
    models: tuple[str, ...]  # models this plan may use
    rate: Mapping[str, Rate]  # per model; a model missing here has no API rate limits
    windows: tuple[Window, ...]
    peak: Peak | None
    degrade: Degrade | None
    queue_timeout_s: float
    output_estimate: int  # output tokens reserved when a request names no max_tokens

    def windows_for(self, model: str) -> tuple[Window, ...]:
        return tuple(w for w in self.windows if w.applies_to(model))


@dataclass(frozen=True, slots=True)
class Gateway:
    host: str
    port: int
    state: str  # memory:// | sqlite:///path | redis://host:port/db
    timezone: str
    on_state_error: OnStateError
    state_timeout_s: float
    reservation_ttl_s: float  # an open reservation is released this long after admission
    max_body_bytes: int
    admin_token_env: str


@dataclass(frozen=True, slots=True)
class Policy:
    source: str
    gateway: Gateway
    upstreams: tuple[Upstream, ...]
    models: Mapping[str, Model]
    plans: Mapping[str, Plan]
