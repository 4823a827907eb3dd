"""Replicas serving requests with continuous batching, modelled as processor sharing.

A replica holds at most `max_batch` sequences. Every decode step produces one token for each
sequence in flight and takes `decode_step_s(n, context)` with n in flight, so each sequence
advances at 1 / decode_step_s tokens per second; a new sequence's prefill stalls the whole batch
for `prefill_s(prompt)` (only the uncached part of the prompt is computed). This is the steady
state that `capacity.throughput.steady_state` assumes, run request by request: under
saturation a replica serves exactly B * O / (B * prefill_s(I) + O * decode_step_s(B, I + O/2))
output tokens per second.

Processor sharing is kept exact with a virtual clock per replica: `v` counts the tokens every
sequence in flight has received, growing at 1 / step_s outside prefill stalls. A sequence that
joins at `v0` with `w` tokens to make leaves when `v` reaches `v0 + w`, so only the next such
departure needs an event; it is rescheduled (and the old event left stale, recognised by a
version number) whenever the batch changes.

A model's replicas (across all the pools serving it) share one admission queue in plan-priority
order; a request starts on the least-loaded replica with a free slot.

`ExponentialService` replaces the replica model with single-request servers whose service
times are exponential: with Poisson arrivals that is the M/M/c queue, whose mean wait is known
(Erlang C), which is how the event loop is validated.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from heapq import heappop as _heappop
from heapq import heappush as _heappush
from math import log2 as _log2
from typing import Any

import numpy as np

from gigawatt.capacity.fleet import Fleet
from gigawatt.capacity.throughput import Replica

DONE = 0  # the event kind the run loop dispatches to `ModelPool.complete`
# Log-spaced buckets for memoising step and prefill times: 1/64 of a doubling, 1.1% apart, so a
# memoised time is within 0.6% of the exact one for any context or prompt length.
_BUCKETS_PER_DOUBLING = 64
_COMPACT_FACTOR = 8
_EPSILON_S = 1e-6


class Service:
    """How one kind of replica serves: its batch limit, and its prefill and step times memoised
    on a log grid (the event loop looks them up by bucket; `*_exact` fills a missing one)."""

    max_batch: int
    exponential_mean_s: float | None = None

    def __init__(self) -> None:
        self.prefill_memo: dict[int, float] = {}
        self.step_memo: dict[int, float] = {}

    def prefill_exact(self, bucket: int) -> float:
        raise NotImplementedError

    def step_exact(self, batch: int, bucket: int) -> float:
        raise NotImplementedError

    def prefill_s(self, prompt_tokens: int) -> float:
        """Seconds to prefill `prompt_tokens` (memoised: within 0.6% of the exact time)."""
        if prompt_tokens <= 0:
            return 0.0
        key = bucket_of(prompt_tokens)
        found = self.prefill_memo.get(key)
        if found is None:
            found = self.prefill_memo[key] = self.prefill_exact(key)
        return found

    def step_s(self, batch: int, context_tokens: float) -> float:
        """Seconds of one decode step of `batch` sequences of mean context `context_tokens`."""
        key = bucket_of(context_tokens)
        found = self.step_memo.get(batch * _STEP_KEY + key)
        if found is None:
            found = self.step_memo[batch * _STEP_KEY + key] = self.step_exact(batch, key)
        return found


class LlmService(Service):
    """A `capacity.throughput.Replica` holding at most `max_batch` sequences."""

    def __init__(self, replica: Replica, max_batch: int) -> None:
        super().__init__()
        if max_batch < 1:
            raise ValueError(f"a replica must hold at least one sequence, not {max_batch}")
        self.replica = replica
        self.max_batch = max_batch

    def prefill_exact(self, bucket: int) -> float:
        return self.replica.prefill_s(round(tokens_of(bucket)))

    def step_exact(self, batch: int, bucket: int) -> float:
        return self.replica.decode_step_s(batch, tokens_of(bucket))


class ExponentialService(Service):
    """A server that takes one request at a time for an exponential time of mean `mean_s`."""

    max_batch = 1

    def __init__(self, mean_s: float) -> None:
        super().__init__()
        if not mean_s > 0:
            raise ValueError(f"the mean service time must be positive, not {mean_s}")
        self.exponential_mean_s = mean_s

    def prefill_exact(self, bucket: int) -> float:
        return 0.0

    def step_exact(self, batch: int, bucket: int) -> float:
        return 1.0  # the virtual clock counts seconds of service


# Step times are memoised under batch * _STEP_KEY + context bucket (a bucket stays below 2,048
# up to 2^32 tokens).
_STEP_KEY = 4096


def bucket_of(tokens: float) -> int:
    """The log-grid bucket of a token count: 64 buckets per doubling, 1.1% apart."""
    return round(_log2(tokens if tokens > 1.0 else 1.0) * _BUCKETS_PER_DOUBLING)


def tokens_of(bucket: int) -> float:
    return float(2.0 ** (bucket / _BUCKETS_PER_DOUBLING))


class ReplicaState:
    """One replica's batch: the sequences in flight and its virtual clock."""

    __slots__ = (
        "cap",
        "index",
        "inv_cap",
        "jobs",
        "last_t",
        "n",
        "next_t",
        "pool",
        "service",
        "stall_end",
        "step",
        "sum_ctx",
        "v",
        "version",
    )

    def __init__(self, service: Service, index: int, pool: ModelPool) -> None:
        self.service = service
        self.index = index
        self.pool = pool
        self.cap = service.max_batch
        self.inv_cap = 1.0 / self.cap
        self.n = 0
        self.v = 0.0  # tokens each sequence in flight has received
        self.last_t = 0.0
        self.stall_end = 0.0  # prefills in progress stall decoding until then
        self.step = 0.0
        self.sum_ctx = 0.0
        self.jobs: list[tuple[float, int, Any]] = []  # (v at which it leaves, seq, request)
        self.version = 0  # of the one departure event that counts
        self.next_t = math.inf  # when that event fires


class ModelPool:
    """Every replica serving one policy model, with one admission queue in front of them."""

    def __init__(
        self,
        model: str,
        services: Iterable[tuple[Service, int]],
        heap: list[tuple[Any, ...]],
        counter: Callable[[], int],
        rng: np.random.Generator | None = None,
    ) -> None:
        self.model = model
        self.replicas: list[ReplicaState] = []
        for service, count in services:
            for _ in range(count):
                self.replicas.append(ReplicaState(service, len(self.replicas), self))
        if not self.replicas:
            raise ValueError(f"no replicas serve model {model!r}")
        self.capacity = sum(r.cap for r in self.replicas)
        self.inflight = 0
        self.queued = 0
        self.queue: list[tuple[int, int, Any]] = []  # (-priority, seq, request)
        self._heap = heap
        self._next = counter
        # Least loaded: replicas of one size sit in `_levels[n]` (n in flight, an insertion-
        # ordered dict as a set) with `_low` the lowest non-empty level; mixed sizes use a heap
        # of (n / size, index, n when pushed) whose stale entries are skipped.
        caps = {r.cap for r in self.replicas}
        self._uniform = len(caps) == 1
        self._levels: list[dict[ReplicaState, None]] = []
        self._low = 0
        if self._uniform:
            self._levels = [{} for _ in range(self.replicas[0].cap + 1)]
            self._levels[0] = dict.fromkeys(self.replicas)
        self._free = [(0.0, r.index, 0) for r in self.replicas]
        heapq.heapify(self._free)
        self._rng = rng
        self._draws: list[float] = []

    @property
    def load(self) -> float:
        """In flight plus queued, as a share of the batch slots (the gateway pool's `load`)."""
        return (self.inflight + self.queued) / self.capacity

    def least_loaded(self) -> ReplicaState | None:
        """The replica with a free slot and the fewest sequences for its size, or None."""
        if self._uniform:
            levels = self._levels
            low = self._low
            return next(iter(levels[low])) if low < len(levels) - 1 else None
        free, replicas = self._free, self.replicas
        while free:
            _, index, n = free[0]
            r = replicas[index]
            if r.n == n and n < r.cap:
                return r
            _heappop(free)
        return None

    def start(
        self, request: Any, r: ReplicaState, now: float, prompt: int, context: float, tokens: int
    ) -> float:
        """Put `request` on replica `r` at `now`; return its time to first token from now.

        `prompt` tokens are prefilled, `context` is its mean context while decoding, `tokens`
        the tokens it makes. The hot path: lookups are inlined rather than called.
        """
        since = r.last_t if r.last_t > r.stall_end else r.stall_end
        n = r.n
        if n and now > since:
            r.v += (now - since) / r.step
        r.last_t = now
        service = r.service
        if prompt > 1:
            key = round(_log2(prompt) * _BUCKETS_PER_DOUBLING)
            prefill = service.prefill_memo.get(key)
            if prefill is None:
                prefill = service.prefill_memo[key] = service.prefill_exact(key)
        else:
            prefill = service.prefill_s(prompt)
        stall = (r.stall_end if r.stall_end > now else now) + prefill
        r.stall_end = stall
        r.n = n = n + 1
        r.sum_ctx += context
        mean = r.sum_ctx / n
        key = n * _STEP_KEY + round(_log2(mean if mean > 1.0 else 1.0) * _BUCKETS_PER_DOUBLING)
        step = service.step_memo.get(key)
        if step is None:
            step = service.step_memo[key] = service.step_exact(n, key % _STEP_KEY)
        r.step = step
        mean_s = service.exponential_mean_s
        if mean_s is None:
            leaves = r.v + tokens
        else:
            if not self._draws:
                assert self._rng is not None
                self._draws = self._rng.exponential(1.0, 65_536).tolist()
            leaves = r.v + self._draws.pop() * mean_s
        jobs = r.jobs
        _heappush(jobs, (leaves, self._next(), request))
        self.inflight += 1
        if self._uniform:
            levels = self._levels
            del levels[n - 1][r]
            levels[n][r] = None
            if self._low == n - 1 and not levels[n - 1]:
                low = n
                while low < r.cap and not levels[low]:
                    low += 1
                self._low = low
        elif n < r.cap:
            _heappush(self._free, (n * r.inv_cap, r.index, n))
        # The next departure: adding a sequence and a prefill only delays the ones already
        # scheduled, so an event already pending fires early and reschedules itself; a new
        # event is needed only when the newcomer leaves first or none is pending.
        t = stall + (jobs[0][0] - r.v) * step
        if t < r.next_t:
            r.version += 1
            r.next_t = t
            _heappush(self._heap, (t, self._next(), DONE, r, r.version))
        return stall - now + step if mean_s is None else 0.0

    def complete(self, r: ReplicaState, now: float) -> list[Any]:
        """The requests that leave `r` at `now`, when its departure event fires (possibly early:
        then none leave and the event is rescheduled)."""
        since = r.last_t if r.last_t > r.stall_end else r.stall_end
        if now > since:
            r.v += (now - since) / r.step
        r.last_t = now
        jobs = r.jobs
        v = r.v
        # Leaving within a microsecond counts as leaving now: epoch seconds are only exact to
        # 2.4e-7 s, so a shorter remainder could reschedule the same instant forever.
        limit = v + _EPSILON_S / r.step + 1e-9 * v
        done = []
        while jobs and jobs[0][0] <= limit:
            done.append(_heappop(jobs)[2])
        gone = len(done)
        if gone:
            was = r.n
            n = r.n = was - gone
            self.inflight -= gone
            if n:
                for req in done:
                    r.sum_ctx -= req.context_mean
                mean = r.sum_ctx / n
                key = n * _STEP_KEY + round(
                    _log2(mean if mean > 1.0 else 1.0) * _BUCKETS_PER_DOUBLING
                )
                step = r.service.step_memo.get(key)
                if step is None:
                    step = r.service.step_memo[key] = r.service.step_exact(n, key % _STEP_KEY)
                r.step = step
            else:
                r.sum_ctx = 0.0
                r.v = 0.0  # an idle replica restarts its clock: keeps `v` small and exact
            if self._uniform:
                levels = self._levels
                del levels[was][r]
                levels[n][r] = None
                if n < self._low:
                    self._low = n
            elif n < r.cap:
                _heappush(self._free, (n * r.inv_cap, r.index, n))
                if len(self._free) > _COMPACT_FACTOR * len(self.replicas) + 64:
                    self._compact()
        r.next_t = math.inf
        return done

    def reschedule(self, r: ReplicaState, now: float) -> None:
        """Schedule `r`'s next departure after its batch changed (call after `complete`)."""
        jobs = r.jobs
        if not jobs:
            r.next_t = math.inf
            return
        since = r.stall_end if r.stall_end > now else now
        left = jobs[0][0] - r.v
        t = since + (left * r.step if left > 0 else 0.0)
        if t < r.next_t:
            r.version += 1
            r.next_t = t
            _heappush(self._heap, (t, self._next(), DONE, r, r.version))

    def _compact(self) -> None:
        self._free = [(x.n * x.inv_cap, x.index, x.n) for x in self.replicas if x.n < x.cap]
        heapq.heapify(self._free)


@dataclass(frozen=True, slots=True)
class MeanRequest:
    """A model's mean request in the workload, which sizes its replicas' batch."""

    prompt_tokens: float  # the whole prompt
    prefill_tokens: float  # its uncached part
    output_tokens: float


@dataclass(frozen=True, slots=True)
class PoolPlan:
    """What serves one policy model: (service, replicas) per kind of replica, and the output
    tokens/s all of them serve at full batch on the model's mean request (the steady state of
    `capacity.throughput`, prefilling only the uncached prompt), which utilisation is taken of."""

    model: str
    services: tuple[tuple[Service, int], ...]
    capacity_tokens_per_s: float = math.nan

    @property
    def replicas(self) -> int:
        return sum(count for _, count in self.services)

    @property
    def capacity(self) -> int:
        """Batch slots over all replicas."""
        return sum(s.max_batch * count for s, count in self.services)


def plan_fleet(fleet: Fleet, means: dict[str, MeanRequest]) -> tuple[PoolPlan, ...]:
    """One `PoolPlan` per model `fleet` serves. A replica holds the batch its pool runs at on
    the model's mean request (`Pool.throughput`: the largest whose KV cache fits, or that meets
    the pool's time-per-token target)."""
    out = []
    for model in fleet.models:
        mean = means.get(model, MeanRequest(1.0, 1.0, 1.0))
        prompt = max(0, round(mean.prompt_tokens))
        output = max(1, round(mean.output_tokens))
        services: list[tuple[Service, int]] = []
        tokens_per_s = 0.0
        for pool in fleet.pools_for(model):
            if pool.replicas == 0:
                continue
            batch = pool.throughput(prompt, output).batch
            service = LlmService(pool.replica, batch)
            services.append((service, pool.replicas))
            cycle_s = batch * service.prefill_s(round(mean.prefill_tokens)) + output * (
                service.step_s(batch, prompt + output / 2)
            )
            tokens_per_s += pool.replicas * batch * output / cycle_s
        if services:
            out.append(PoolPlan(model, tuple(services), tokens_per_s))
    return tuple(out)


def exponential_pool(model: str, servers: int, mean_s: float) -> PoolPlan:
    """`servers` servers of exponential service time `mean_s`: an M/M/c queue under Poisson
    arrivals."""
    return PoolPlan(model, ((ExponentialService(mean_s), servers),), servers / mean_s)
