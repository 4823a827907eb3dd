"""The event loop's semantics, on workloads small enough to follow by hand."""

from __future__ import annotations

import numpy as np

from gigawatt.policy.load import parse_policy
from gigawatt.sim.demand import Retry
from gigawatt.sim.fleet_model import PoolPlan, Service, exponential_pool
from gigawatt.sim.run import (
    CAPPED,
    CUT,
    FALLBACK,
    REFUSED,
    SERVED,
    UNFINISHED,
    Simulation,
)
from tests.sim.helpers import START, policy, workload

ALWAYS = Retry(probability=1.0, max_wait_s=3600.0, max_attempts=3)
NEVER = Retry(probability=0.0, max_wait_s=3600.0, max_attempts=3)


def run(pol, work, pools=None, retry=NEVER, **kwargs):
    return Simulation(pol, work, pools, retry, np.random.default_rng(0), **kwargs).run()


def names(out, index):
    return out.limit_names[index]


def test_the_limiter_refuses_and_the_user_retries_after_retry_after() -> None:
    # rpm = 2: a bucket of 2 that refills one request every 30 s. Three requests at once:
    # the third is refused with retry-after 30 s, comes back at +30 s and is served.
    pol = policy("rate = { rpm = 2 }")
    t = np.full(3, START)
    out = run(pol, workload(t, end=START + 600), retry=ALWAYS)
    assert out.outcome.tolist() == [SERVED, SERVED, REFUSED, SERVED]
    assert names(out, out.limit[2]) == "requests"
    assert out.attempt.tolist() == [0, 0, 0, 1]
    assert out.t[3] - START == 30.0


def test_a_user_who_gives_up_sends_nothing_until_the_session_would_end() -> None:
    pol = policy("rate = { rpm = 1 }")
    t = START + np.array([0.0, 1.0, 2.0, 100.0])
    session_end = START + np.array([50.0, 50.0, 50.0, 100.0])
    out = run(pol, workload(t, end=START + 600, session_end=session_end))
    # The second is refused and given up; the third (same session) is never sent.
    assert out.outcome.tolist() == [SERVED, REFUSED, SERVED]
    assert out.suppressed == 1 and out.gave_up == 1


def test_waits_longer_than_max_wait_are_given_up() -> None:
    pol = policy('windows = [ { kind = "session", length = "5h", limit = 1000 } ]')
    # Each request costs 100 in + 5 * 10 out = 150 credits estimated (output_estimate 1024 caps
    # nothing: max_tokens unset, so 1024 * 5 = 5,120 is reserved: 5,220 > 1,000).
    out = run(pol, workload(np.array([START]), end=START + 10), retry=ALWAYS)
    assert out.outcome.tolist() == [REFUSED]
    assert out.gave_up == 1  # a request too big for the window can never be served


def test_session_window_hits_record_how_far_into_the_window() -> None:
    pol = policy(
        'output_estimate = 10\nwindows = [ { kind = "session", length = "5h", limit = 500 } ]'
    )
    # 100 in + 5 * 10 out = 150 credits each: three fit (450), the fourth at +2 h does not.
    t = START + np.array([0.0, 600.0, 1200.0, 7200.0])
    out = run(pol, workload(t, end=START + 8000))
    assert out.outcome.tolist() == [SERVED, SERVED, SERVED, REFUSED]
    assert names(out, out.limit[3]) == "session-5h"
    hits = out.session_hits
    assert hits["user"].tolist() == [0]
    assert hits["window_start"].tolist() == [START]
    assert hits["t"].tolist() == [START + 7200.0]


def test_higher_priority_is_served_first_from_the_queue() -> None:
    pol = parse_policy(
        """
[models.m]
credits = { input = 1, output = 1 }
[plans.low]
priority = 0
queue_timeout = "1000000s"
[plans.high]
priority = 5
queue_timeout = "1000000s"
"""
    )
    # One server. low at 0 takes it; low at 0.001 and high at 0.002 queue; high goes first.
    t = START + np.array([0.0, 0.001, 0.002])
    work = workload(t, users=3, end=START + 100_000, plan_names=("low", "high"))
    object.__setattr__(work, "user_plan", np.array([0, 0, 1], dtype=np.int16))
    out = run(pol, work, (exponential_pool("m", 1, 1.0),))
    assert out.outcome.tolist() == [SERVED] * 3
    order = np.argsort(out.end)
    assert out.user[order].tolist() == [0, 2, 1]


def test_a_queue_timeout_is_an_overload_refusal_and_releases_the_reservation() -> None:
    pol = policy(
        'windows = [ { kind = "session", length = "5h", limit = 1e9 } ]', queue_timeout="1s"
    )
    t = START + np.array([0.0, 0.5])
    out = run(pol, workload(t, users=2, end=START + 100), (exponential_pool("m", 1, 1e6),), ALWAYS)
    refused = out.outcome == REFUSED
    assert names(out, out.limit[refused][0]) == "overloaded"
    # Refused at 0.5 + 1 s; back after retry-after 2 s, refused again, and so on three times.
    assert out.end[refused].tolist() == [START + 1.5, START + 4.5, START + 7.5, START + 10.5]
    assert (out.outcome == UNFINISHED).sum() == 1
    # Released: user 1 never got served, so its window holds nothing.
    sim = Simulation(
        pol,
        workload(t, users=2, end=START + 100),
        (exponential_pool("m", 1, 1e6),),
        NEVER,
        np.random.default_rng(0),
    )
    sim.run()
    statuses = sim.limiter.snapshot("u1", "p", START + 100)
    assert statuses[0].used == 0.0


def test_degradation_falls_back_and_caps_under_load() -> None:
    pol = parse_policy(
        """
[models.big]
credits = { input = 1, output = 1 }
[models.small]
credits = { input = 1, output = 1 }
[plans.p]
queue_timeout = "1000000s"
degrade = { above_load = 0.5, max_tokens = 50, fallback_model = "small" }
"""
    )
    t = START + np.array([0.0, 1.0])
    work = workload(t, users=2, answer=80, end=START + 10_000, model_names=("big", "small"))
    pools = (exponential_pool("big", 1, 1e3), exponential_pool("small", 1, 1.0))
    out = run(pol, work, pools)
    first, second = np.argsort(out.t)
    # The first finds big idle; the second finds it full (load 1 >= 0.5): small, 50 tokens.
    assert out.model[first] == 0 and out.flags[first] == 0
    assert out.model[second] == 1
    assert out.flags[second] == FALLBACK | CAPPED | CUT
    assert out.output_tokens[second] == 50


def test_without_a_fleet_everything_admitted_is_served_at_once() -> None:
    t = START + np.arange(5.0)
    out = run(policy(), workload(t, end=START + 10))
    assert out.outcome.tolist() == [SERVED] * 5
    assert out.wait.tolist() == [0.0] * 5
    assert out.samples is None


class Flat(Service):
    """Prefill 1 s whatever the prompt; a decode step of 0.1 s per sequence in the batch."""

    max_batch = 4

    def prefill_exact(self, bucket: int) -> float:
        return 1.0

    def step_exact(self, batch: int, bucket: int) -> float:
        return 0.1 * batch


def test_processor_sharing_with_prefill_stalls_by_hand() -> None:
    # A (10 tokens) at 0: prefill to 1.0. B (5 tokens) at 0.5: waits for A's prefill, prefills
    # to 2.0. From 2.0 two sequences share 0.2 s steps: B's 5 tokens take 1 s, out at 3.0;
    # A alone then makes its last 5 tokens at 0.1 s each: out at 3.5.
    # TTFT: A 1.0 + one step (0.1) = 1.1; B (2.0 - 0.5) + one step of two (0.2) = 1.7.
    t = START + np.array([0.0, 0.5])
    work = workload(t, users=2, answer=np.array([10, 5]), end=START + 100)
    pools = (PoolPlan("m", ((Flat(), 1),)),)
    out = run(policy(), work, pools)
    by_user = dict(zip(out.user.tolist(), range(2), strict=True))
    a, b = by_user[0], by_user[1]
    assert np.isclose(out.end[a] - START, 3.5) and np.isclose(out.end[b] - START, 3.0)
    assert np.isclose(out.ttft[a], 1.1) and np.isclose(out.ttft[b], 1.7)
    assert out.wait.tolist() == [0.0, 0.0]


def test_least_loaded_replica_takes_the_request() -> None:
    # Two replicas of 4 slots: 6 requests at once spread 3 and 3. On each, three prefills
    # stall decoding until 3.0 s, then one step of three sequences (0.3 s): all leave at 3.3.
    # Filling one replica first (4 and 2) would end at 4.4 and 2.2.
    t = np.full(6, START)
    work = workload(t, users=6, answer=1, end=START + 100)
    out = run(policy(), work, (PoolPlan("m", ((Flat(), 2),)),))
    assert np.round(out.end - START, 6).tolist() == [3.3] * 6
