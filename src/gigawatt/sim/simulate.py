"""One call from files to summaries: draw the workload, scale the fleet, run, summarise.

Each scenario gets the same draws (the seed is split into a demand stream and a behaviour
stream, each restarted per scenario), so two scenarios differ only by what was changed.
"""

from __future__ import annotations

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
