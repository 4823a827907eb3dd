"""One call from files to summaries: draw the workload, scale the fleet, run, summarise.

Each scenario gets the same draws (the seed is split into a demand stream and a behaviour
stream, each restarted per scenario), so two scenarios differ only by what was changed.
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection as mp_connection
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gigawatt.capacity.fleet import Fleet
from gigawatt.policy.model import Policy
from gigawatt.sim.demand import Demand
from gigawatt.sim.fleet_model import plan_fleet
from gigawatt.sim.metrics import Scenario, summarise
from gigawatt.sim.run import Simulation
from gigawatt.sim.workload import build_workload, mean_requests


@dataclass(frozen=True, slots=True)
class Setup:
    """What one scenario runs: a policy and a fleet (None: unlimited capacity)."""

    label: str
    policy: Policy
    fleet: Fleet | None


def simulate(
    setup: Setup,
    demand: Demand,
    *,
    days: int,
    seed: int,
    fraction: float,
    progress: Callable[[float], None] | None = None,
) -> tuple[dict[str, Any], int]:
    """Run one scenario; return its summary and the number of requests sent."""
    demand_seed, behaviour_seed = np.random.SeedSequence(seed).spawn(2)
    workload = build_workload(
        demand, setup.policy, days, fraction, np.random.default_rng(demand_seed)
    )
    pools = None
    fleet_name, fleet_gpus = "none", 0
    if setup.fleet is not None:
        fleet = setup.fleet.scaled(fraction) if fraction < 1 else setup.fleet
        pools = plan_fleet(fleet, mean_requests(workload))
        fleet_name, fleet_gpus = setup.fleet.name, setup.fleet.gpus
    sim = Simulation(
        setup.policy,
        workload,
        pools,
        demand.retry,
        np.random.default_rng(behaviour_seed),
        max_tokens={name: plan.max_tokens for name, plan in demand.plans.items()},
        progress=progress,
    )
    outcome = sim.run()
    scenario = Scenario(setup.label, setup.policy.source, fleet_name, fleet_gpus, pools)
    return summarise(scenario, workload, outcome, demand.timezone), len(outcome.t)


@dataclass(frozen=True, slots=True)
class Result:
    summary: dict[str, Any]
    sent: int  # requests sent (attempts the limiter decided)
    seconds: float  # wall time of this scenario's run


def simulate_all(
    setups: list[Setup],
    demand: Demand,
    *,
    days: int,
    seed: int,
    fraction: float,
    workers: int = 1,
    progress: Callable[[int, float], None] | None = None,
) -> list[Result]:
    """Every scenario; with `workers` > 1, that many at a time, each in a process of its own.

    Scenarios share nothing while they run, so processes change no result, only the wall time.
    The children are forked: they inherit the loaded policy, demand and fleet rather than
    pickling them. Where fork is unavailable, scenarios run one after another.
    """
    if workers <= 1 or len(setups) == 1 or "fork" not in mp.get_all_start_methods():
        return [
            _timed(setup, demand, days, seed, fraction, _bind(progress, i))
            for i, setup in enumerate(setups)
        ]
    context = mp.get_context("fork")
    results: dict[int, Result] = {}
    pending = list(enumerate(setups))
    running: dict[Any, tuple[int, Any]] = {}
    while pending or running:
        while pending and len(running) < workers:
            index, setup = pending.pop(0)
            parent, child = context.Pipe(duplex=False)
            process = context.Process(
                target=_child, args=(child, setup, demand, days, seed, fraction), daemon=True
            )
            process.start()
            child.close()
            running[parent] = (index, process)
        for conn in mp_connection.wait(list(running)):
            index, process = running[conn]  # type: ignore[index]
            try:
                kind, value = conn.recv()  # type: ignore[union-attr]
            except EOFError:
                process.join()
                raise RuntimeError(
                    f"the process simulating {setups[index].label!r} died "
                    f"(exit code {process.exitcode})"
                ) from None
            if kind == "progress":
                if progress is not None:
                    progress(index, value)
                continue
            del running[conn]
            process.join()
            if kind == "error":
                raise value
            results[index] = value
    return [results[i] for i in range(len(setups))]


def _bind(
    progress: Callable[[int, float], None] | None, index: int
) -> Callable[[float], None] | None:
    if progress is None:
        return None
    return lambda done: progress(index, done)


def _timed(
    setup: Setup,
    demand: Demand,
    days: int,
    seed: int,
    fraction: float,
    progress: Callable[[float], None] | None,
) -> Result:
    started = time.perf_counter()
    summary, sent = simulate(
        setup, demand, days=days, seed=seed, fraction=fraction, progress=progress
    )
    return Result(summary, sent, time.perf_counter() - started)


def _child(conn: Any, setup: Setup, demand: Demand, days: int, seed: int, fraction: float) -> None:
    try:
        result = _timed(
            setup, demand, days, seed, fraction, lambda done: conn.send(("progress", done))
        )
        conn.send(("result", result))
    except BaseException:  # the parent raises it; exceptions do not all survive pickling
        conn.send(("error", RuntimeError(traceback.format_exc())))
    finally:
        conn.close()
