"""The event loop: a workload's requests, the real limiter on a virtual clock, a modelled fleet.

Every request goes the way the gateway takes it (gateway/app.py):

1. Degradation (`policy/overload.degrade`, the gateway's own rule): when the plan has a
   `degrade` rule and its model's pool is at `above_load` or more (in flight plus queued over
   batch slots), the request moves to the fallback model,
   `max_tokens` is capped (a request that names none, or a larger one, is capped) and a request
   that thinks has its thinking capped; the answer is cut where it is longer than the cap.
2. Admission: `Limiter.admit` on the memory store reserves the prompt plus
   `min(max_tokens or output_estimate, output_estimate)` output tokens at the virtual `now`.
3. Queue: a slot on the model's pool, or a wait in plan-priority order for at most the plan's
   `queue_timeout`; past it the reservation is released and the request is refused as
   overloaded with a retry-after of 2 s.
4. Service on the least-loaded replica; at completion `Limiter.reconcile` with the real usage
   (uncached prompt, answer, cache reads).

A refused request is sent again after its retry-after (rounded up to whole seconds, as the
header says) with the demand's retry probability, unless the wait is longer than its
`max_wait` or the request was already retried `max_attempts` times. A user who retries sends
nothing else meanwhile; one who gives up sends nothing more until that session would have ended.
Trace accounts are replayed as recorded and retries are added to them.

Nothing here reads a clock: time is the workload's.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import math
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gigawatt.limits import Limiter, Usage, open_store
from gigawatt.policy.model import Policy
from gigawatt.policy.overload import OVERLOAD_RETRY_AFTER_S, degrade
from gigawatt.sim.demand import Retry
from gigawatt.sim.fleet_model import DONE, ModelPool, PoolPlan
from gigawatt.sim.workload import Workload

OVERLOADED = "overloaded"

# Event kinds, after the fleet's DONE.
_TIMEOUT = 1
_RETRY = 2
_SAMPLE = 3

# Outcomes of an attempt.
SERVED, REFUSED, UNFINISHED = 0, 1, 2
# Flags of an attempt.
FALLBACK, CAPPED, THINKING_CAPPED, CUT = 1, 2, 4, 8
DEGRADED = FALLBACK | CAPPED | THINKING_CAPPED

# Where a request is.
_QUEUED, _RUNNING, _DONE = 1, 2, 3

# Requests drawn per slice of the workload turned into Python lists at a time.
_CHUNK = 16_384


class Request:
    """One request across its attempts; mutable, one per request (slots keep it small)."""

    __slots__ = (
        "answer",
        "attempt",
        "cached",
        "context",
        "context_mean",
        "flags",
        "model",
        "model0",
        "output",
        "plan",
        "reservation",
        "session_end",
        "state",
        "t",
        "thinking",
        "ttft",
        "user",
        "wait",
    )


@dataclass(frozen=True, slots=True)
class Samples:
    """The pools' state every `interval_s`: one row per sample, one column per model pool."""

    models: tuple[str, ...]
    capacity: tuple[int, ...]  # batch slots per pool
    replicas: tuple[int, ...]
    t: np.ndarray
    inflight: np.ndarray  # (samples, pools)
    queued: np.ndarray


@dataclass(frozen=True, slots=True)
class Outcome:
    """Every attempt of every request, as columns (numpy arrays) in the order they ended."""

    t: np.ndarray  # when the attempt was sent
    end: np.ndarray  # when it was served, refused or cut off by the end of the run
    user: np.ndarray
    plan: np.ndarray
    model: np.ndarray
    outcome: np.ndarray  # SERVED, REFUSED, UNFINISHED
    limit: np.ndarray  # index into `limit_names` (0: none)
    wait: np.ndarray  # seconds queued before a replica took it
    ttft: np.ndarray  # seconds from being sent to the first token
    flags: np.ndarray
    attempt: np.ndarray  # 0 first, 1... retries
    output_tokens: np.ndarray  # produced
    limit_names: tuple[str, ...]
    session_hits: dict[str, np.ndarray]  # user, t, window_start, plan: session windows reached
    samples: Samples | None
    suppressed: int  # requests users held back after a refusal (not sent)
    gave_up: int  # refused requests not retried


class Simulation:
    """One scenario: a policy and a fleet (or none: unlimited capacity) against a workload."""

    def __init__(
        self,
        policy: Policy,
        workload: Workload,
        pools: tuple[PoolPlan, ...] | None,
        retry: Retry,
        rng: np.random.Generator,
        *,
        max_tokens: Mapping[str, int | None] | None = None,
        sample_s: float = 60.0,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        self.policy = policy
        self.workload = workload
        self.retry = retry
        self.rng = rng
        self.sample_s = sample_s
        self.progress = progress
        self.limiter = Limiter(policy, open_store("memory://"))
        self.heap: list[tuple[Any, ...]] = []
        counter = itertools.count()
        self._next = counter.__next__
        self.pools: list[ModelPool | None] = [None] * len(workload.model_names)
        self.pool_plans = pools
        if pools is not None:
            for spec in pools:
                index = workload.model_names.index(spec.model)
                self.pools[index] = ModelPool(spec.model, spec.services, self.heap, self._next, rng)
        self.max_tokens = [(max_tokens or {}).get(name) for name in workload.plan_names]

    def run(self) -> Outcome:
        """Run the whole workload; every attempt's fate, the pools' samples and the hits."""
        # The loop makes millions of short-lived objects and no reference cycles, so the cycle
        # collector would only rescan the limiter's growing state: 6% of the time, for nothing.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return _simulate(self)
        finally:
            if collecting:
                gc.enable()


# An attempt's small fields packed in one int64 of the log: plan, model, outcome, flags,
# attempt number and limit, at these bit offsets.
_MODEL_SHIFT, _OUTCOME_SHIFT, _FLAGS_SHIFT, _ATTEMPT_SHIFT, _LIMIT_SHIFT = 8, 16, 18, 22, 28


def _simulate(sim: Simulation) -> Outcome:
    """The loop. One function whose helpers are closures over its locals: this is the path
    every request takes, and local and closure lookups cost a fraction of attribute ones."""
    w = sim.workload
    policy = sim.policy
    plans = [policy.plans[name] for name in w.plan_names]
    model_names = w.model_names
    model_index = {m: i for i, m in enumerate(model_names)}
    accounts = w.accounts
    user_plan = w.user_plan.tolist()
    closed_loop = w.closed_loop.tolist()
    blocked = [0.0] * len(accounts)
    pools = sim.pools
    active_pools = [p for p in pools if p is not None]
    plan_max_tokens = sim.max_tokens
    limiter = sim.limiter
    admit, reconcile, release = limiter.admit, limiter.reconcile, limiter.release
    heap = sim.heap
    next_seq = sim._next
    push, pop = heapq.heappush, heapq.heappop
    retry = sim.retry
    rng = sim.rng
    uniform: list[float] = []
    limit_codes: dict[str | None, int] = {None: 0}
    session_windows = {
        (i, spec.name): float(spec.length_s)
        for i, plan in enumerate(plans)
        for spec in plan.windows
        if spec.kind == "session"
    }
    rules = [plan.degrade for plan in plans]
    estimate_cap = [plan.output_estimate for plan in plans]
    queue_timeout = [plan.queue_timeout_s for plan in plans]
    priority = [-plan.priority for plan in plans]

    # The attempt log.
    log_t, log_end, log_user = array("d"), array("d"), array("i")
    log_code, log_wait, log_ttft, log_out = array("q"), array("f"), array("f"), array("i")
    hit_user, hit_t, hit_start, hit_plan = array("i"), array("d"), array("d"), array("h")
    s_t: list[float] = []
    s_inflight: list[list[int]] = []
    s_queued: list[list[int]] = []
    counts = {"suppressed": 0, "gave_up": 0}

    def record(req: Request, now: float, code: int, wait: float, ttft: float, out: int) -> None:
        log_t.append(req.t)
        log_end.append(now)
        log_user.append(req.user)
        log_code.append(code)
        log_wait.append(wait)
        log_ttft.append(ttft)
        log_out.append(out)

    def refuse(req: Request, now: float, name: str | None, retry_after: float | None) -> None:
        code = limit_codes.get(name)
        if code is None:
            code = limit_codes[name] = len(limit_codes)
        record(
            req,
            now,
            req.plan
            | req.model << _MODEL_SHIFT
            | REFUSED << _OUTCOME_SHIFT
            | req.attempt << _ATTEMPT_SHIFT
            | code << _LIMIT_SHIFT,
            0.0,
            0.0,
            0,
        )
        u = req.user
        if retry_after is not None:
            wait = float(max(1, math.ceil(retry_after)))
            if wait <= retry.max_wait_s and req.attempt < retry.max_attempts:
                if not uniform:
                    uniform.extend(rng.random(65_536).tolist())
                if uniform.pop() < retry.probability:
                    push(heap, (now + wait, next_seq(), _RETRY, req, None))
                    if closed_loop[u]:
                        blocked[u] = now + wait
                    return
        counts["gave_up"] += 1
        if closed_loop[u] and req.session_end > blocked[u]:
            blocked[u] = req.session_end

    def session_hit(req: Request, decision: Any, now: float) -> None:
        length = session_windows.get((req.plan, decision.refused_by))
        if length is None:
            return
        for status in decision.limits:
            if status.name == decision.refused_by and status.reset_at is not None:
                hit_user.append(req.user)
                hit_t.append(now)
                hit_start.append(status.reset_at - length)
                hit_plan.append(req.plan)
                return

    def begin(pool: ModelPool, req: Request, now: float) -> None:
        req.state = _RUNNING
        output = req.output
        req.context_mean = context_mean = req.context + output * 0.5
        ttft = pool.start(
            req, pool.least_loaded(), now, req.context - req.cached, context_mean, output
        )
        req.wait = wait = now - req.t
        req.ttft = wait + ttft

    def attempt(req: Request, now: float) -> None:
        p = req.plan
        model = req.model0
        pool = pools[model]
        thinking = req.thinking
        max_tokens = plan_max_tokens[p]
        flags = 0
        rule = rules[p]
        if (
            rule is not None
            and pool is not None
            and (pool.inflight + pool.queued >= rule.above_load * pool.capacity)
        ):
            # The gateway's own rule (policy/overload.py), on the simulated request.
            change = degrade(rule, model_names[model], max_tokens, thinking or None)
            fallback = model_index[change.model]
            if fallback != model:
                model = fallback
                pool = pools[model]
                flags = FALLBACK
            if change.max_tokens != max_tokens:
                max_tokens = change.max_tokens
                flags |= CAPPED
            if thinking and change.thinking_budget != thinking:
                thinking = change.thinking_budget or 0
                flags |= THINKING_CAPPED
        output = req.answer + thinking
        if max_tokens is not None and output > max_tokens:
            output = max_tokens
            if flags & CAPPED:
                flags |= CUT
        req.model = model
        req.flags = flags
        req.output = output
        estimate_out = estimate_cap[p]
        if max_tokens is not None and max_tokens < estimate_out:
            estimate_out = max_tokens
        decision = admit(
            accounts[req.user], plans[p], model_names[model], Usage(req.context, estimate_out), now
        )
        if not decision.admitted:
            if session_windows:
                session_hit(req, decision, now)
            req.flags = 0
            refuse(req, now, decision.refused_by, decision.retry_after)
            return
        req.reservation = decision.reservation
        if pool is None:
            # No fleet: served at once, with nothing to wait for.
            req.state = _DONE
            reconcile(req.reservation, Usage(req.context - req.cached, output, req.cached), now)
            record(
                req,
                now,
                p | model << _MODEL_SHIFT | flags << _FLAGS_SHIFT | req.attempt << _ATTEMPT_SHIFT,
                0.0,
                0.0,
                output,
            )
            return
        if pool.inflight < pool.capacity and not pool.queued:
            req.state = _RUNNING
            req.context_mean = context_mean = req.context + output * 0.5
            ttft = pool.start(
                req, pool.least_loaded(), now, req.context - req.cached, context_mean, output
            )
            req.wait = wait = now - req.t
            req.ttft = wait + ttft
            return
        timeout = queue_timeout[p]
        if timeout <= 0:
            release(req.reservation, now)
            req.flags = 0
            refuse(req, now, OVERLOADED, float(OVERLOAD_RETRY_AFTER_S))
            return
        req.state = _QUEUED
        pool.queued += 1
        push(pool.queue, (priority[p], next_seq(), req))
        push(heap, (now + timeout, next_seq(), _TIMEOUT, req, None))

    def depart(r: Any, now: float) -> None:
        pool = r.pool
        for req in pool.complete(r, now):
            req.state = _DONE
            cached = req.cached
            output = req.output
            context = req.context
            reconcile(req.reservation, Usage(context - cached, output, cached), now)
            log_t.append(req.t)
            log_end.append(now)
            log_user.append(req.user)
            log_code.append(
                req.plan
                | req.model << _MODEL_SHIFT
                | req.flags << _FLAGS_SHIFT
                | req.attempt << _ATTEMPT_SHIFT
            )
            log_wait.append(req.wait)
            log_ttft.append(req.ttft)
            log_out.append(output)
        queue = pool.queue
        while queue and pool.inflight < pool.capacity:
            req = pop(queue)[2]
            if req.state != _QUEUED:
                continue
            pool.queued -= 1
            begin(pool, req, now)
        pool.reschedule(r, now)

    def handle(event: tuple[Any, ...]) -> None:
        now, _, kind, obj, arg = event
        if kind == DONE:
            if arg == obj.version:
                depart(obj, now)
        elif kind == _TIMEOUT:
            if obj.state == _QUEUED:
                pools[obj.model].queued -= 1
                obj.state = _DONE
                release(obj.reservation, now)
                obj.flags = 0
                refuse(obj, now, OVERLOADED, float(OVERLOAD_RETRY_AFTER_S))
        elif kind == _RETRY:
            if now < end:
                obj.attempt += 1
                obj.t = now
                attempt(obj, now)
        else:
            s_t.append(now)
            s_inflight.append([p.inflight for p in active_pools])
            s_queued.append([p.queued for p in active_pools])
            if now + sim.sample_s < end:
                push(heap, (now + sim.sample_s, next_seq(), _SAMPLE, None, None))

    end = w.end
    if active_pools:
        push(heap, (w.start, next_seq(), _SAMPLE, None, None))
    n = len(w)
    for lo in range(0, n, _CHUNK):
        hi = min(n, lo + _CHUNK)
        columns = (
            w.t[lo:hi].tolist(),
            w.user[lo:hi].tolist(),
            w.model[lo:hi].tolist(),
            w.context[lo:hi].tolist(),
            w.cached[lo:hi].tolist(),
            w.answer[lo:hi].tolist(),
            w.thinking[lo:hi].tolist(),
            w.session_end[lo:hi].tolist(),
        )
        for t, u, m, context, cached, answer, thinking, session_end in zip(*columns, strict=True):
            while heap and heap[0][0] <= t:
                event = pop(heap)
                if event[2] == DONE:
                    if event[4] == event[3].version:
                        depart(event[3], event[0])
                else:
                    handle(event)
            if t < blocked[u]:
                counts["suppressed"] += 1
                continue
            req = Request()
            req.t = t
            req.user = u
            req.plan = user_plan[u]
            req.model0 = m
            req.context = context
            req.cached = cached
            req.answer = answer
            req.thinking = thinking
            req.session_end = session_end
            req.attempt = 0
            attempt(req, t)
        if sim.progress is not None:
            sim.progress(hi / n)
    while heap and heap[0][0] <= end:
        handle(pop(heap))

    # What is still queued or in flight at the end is logged as unfinished.
    for pool in active_pools:
        for _, _, req in pool.queue:
            if req.state == _QUEUED:
                code = req.plan | req.model << _MODEL_SHIFT | UNFINISHED << _OUTCOME_SHIFT
                record(req, end, code | req.attempt << _ATTEMPT_SHIFT, end - req.t, 0.0, 0)
        for r in pool.replicas:
            for _, _, req in r.jobs:
                code = req.plan | req.model << _MODEL_SHIFT | UNFINISHED << _OUTCOME_SHIFT
                record(req, end, code | req.attempt << _ATTEMPT_SHIFT, req.wait, req.ttft, 0)
    if sim.progress is not None:
        sim.progress(1.0)

    names = [""] * len(limit_codes)
    for name, code in limit_codes.items():
        names[code] = name or ""
    samples = None
    if active_pools:
        samples = Samples(
            models=tuple(p.model for p in active_pools),
            capacity=tuple(p.capacity for p in active_pools),
            replicas=tuple(len(p.replicas) for p in active_pools),
            t=np.asarray(s_t),
            inflight=np.asarray(s_inflight, dtype=np.int32).reshape(-1, len(active_pools)),
            queued=np.asarray(s_queued, dtype=np.int32).reshape(-1, len(active_pools)),
        )
    code = np.frombuffer(log_code, dtype=np.int64)
    return Outcome(
        t=np.frombuffer(log_t, dtype=np.float64),
        end=np.frombuffer(log_end, dtype=np.float64),
        user=np.frombuffer(log_user, dtype=np.int32),
        plan=(code & 0xFF).astype(np.int16),
        model=((code >> _MODEL_SHIFT) & 0xFF).astype(np.int16),
        outcome=((code >> _OUTCOME_SHIFT) & 0x3).astype(np.int8),
        limit=(code >> _LIMIT_SHIFT).astype(np.int16),
        wait=np.frombuffer(log_wait, dtype=np.float32),
        ttft=np.frombuffer(log_ttft, dtype=np.float32),
        flags=((code >> _FLAGS_SHIFT) & 0xF).astype(np.int8),
        attempt=((code >> _ATTEMPT_SHIFT) & 0x3F).astype(np.int8),
        output_tokens=np.frombuffer(log_out, dtype=np.int32),
        limit_names=tuple(names),
        session_hits={
            "user": np.frombuffer(hit_user, dtype=np.int32),
            "t": np.frombuffer(hit_t, dtype=np.float64),
            "window_start": np.frombuffer(hit_start, dtype=np.float64),
            "plan": np.frombuffer(hit_plan, dtype=np.int16),
        },
        samples=samples,
        suppressed=counts["suppressed"],
        gave_up=counts["gave_up"],
    )
