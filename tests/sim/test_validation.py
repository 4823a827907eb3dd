"""The two checks the simulator is held to: queueing theory and the planner's throughput."""

from __future__ import annotations

import math

import numpy as np

from gigawatt.capacity.catalog import gpu_named, model_named
from gigawatt.capacity.fleet import Fleet, Pool
from gigawatt.capacity.throughput import Replica, workload_throughput
from gigawatt.sim.demand import Retry
from gigawatt.sim.fleet_model import MeanRequest, exponential_pool, plan_fleet
from gigawatt.sim.run import SERVED, Simulation
from tests.sim.helpers import START, policy, workload

NO_RETRY = Retry(probability=0.0, max_wait_s=0.0, max_attempts=0)


def erlang_c_wait(arrivals_per_s: float, service_s: float, servers: int) -> float:
    """Mean wait in queue of M/M/c: C(c, a) / (c * mu - lambda), a = lambda / mu.

    With lambda = 3.2/s, 1/mu = 1 s, c = 4: a = 3.2, rho = 0.8,
    sum_{k<4} a^k/k! = 1 + 3.2 + 5.12 + 5.4613 = 14.7813; a^4/4! / (1 - rho) = 4.3691 / 0.2
    = 21.8453; C = 21.8453 / (14.7813 + 21.8453) = 0.59643; W = 0.59643 / 0.8 = 0.7455 s.
    """
    a = arrivals_per_s * service_s
    rho = a / servers
    head = sum(a**k / math.factorial(k) for k in range(servers))
    tail = a**servers / math.factorial(servers) / (1 - rho)
    return tail / (head + tail) / (servers / service_s - arrivals_per_s)


def test_erlang_c_by_hand() -> None:
    assert math.isclose(erlang_c_wait(3.2, 1.0, 4), 0.7455, rel_tol=1e-3)


def test_exponential_service_reproduces_the_erlang_c_mean_wait() -> None:
    # M/M/4 at 80% load, no limits: 240,000 Poisson arrivals (about 21 hours of virtual time).
    rate, service_s, servers, n = 3.2, 1.0, 4, 240_000
    rng = np.random.default_rng(7)
    t = START + np.cumsum(rng.exponential(1 / rate, n))
    work = workload(t, users=1000, end=t[-1] + 1000)
    sim = Simulation(
        policy(),
        work,
        (exponential_pool("m", servers, service_s),),
        NO_RETRY,
        np.random.default_rng(8),
    )
    out = sim.run()
    served = out.outcome == SERVED
    assert served.sum() == n
    # Skip the first hour, when the queue starts empty.
    steady = served & (out.t > START + 3600)
    measured = float(out.wait[steady].mean())
    expected = erlang_c_wait(rate, service_s, servers)
    assert abs(measured / expected - 1) < 0.05, (measured, expected)


def test_served_tokens_under_saturation_match_the_planner() -> None:
    # Two Llama-3.1-8B replicas on one H100 each, 1,000 tokens in and 200 out per request,
    # asked for a quarter more than they can serve, for 12 minutes; measured after 3.
    replica = Replica(model_named("llama-3.1-8b"), gpu_named("h100-sxm"), 1, "fp8")
    planner = workload_throughput(replica, 1000, 200)
    capacity_tps = 2 * planner.output_tokens_per_s
    fleet = Fleet("test", (Pool("m", replica, 2),))
    pools = plan_fleet(fleet, {"m": MeanRequest(1000, 1000, 200)})
    assert pools[0].capacity == 2 * planner.batch
    asked_rps = 1.25 * capacity_tps / 200
    duration_s = 720.0
    t = START + np.arange(0, duration_s, 1 / asked_rps)
    work = workload(t, users=500, context=1000, answer=200, end=START + duration_s)
    out = Simulation(policy(), work, pools, NO_RETRY, np.random.default_rng(1)).run()
    done = (out.outcome == SERVED) & (out.end > START + 180)
    measured_tps = out.output_tokens[done].sum() / (duration_s - 180)
    assert abs(measured_tps / capacity_tps - 1) < 0.05, (measured_tps, capacity_tps)
