"""Simulator throughput and memory with the example policy, demand and fleet.

    .venv/bin/python benchmarks/simulate.py [--users N] [--days D] [--week-users N] [--skip-week]
                                            [--out FILE.md]

One run measures, on examples/policy.toml, examples/demand.toml and examples/fleet.toml:

1. One scenario in one process: requests sent (every one decided by the real limiter on the
   memory store) per second of the event loop, and per second end to end (drawing the workload
   and summarising included).
2. The same scenario again with the limiter's admit, reconcile and release calls timed, to
   split a request's cost between the limiter and the rest of the loop.
3. The README's comparison, the fleet with and without the 300 MW site, as two processes at
   once (`--workers 2`): requests of both scenarios per second of wall time.
4. A week of `--week-users` users (default 100,000) through `gigawatt simulate` in a
   subprocess: its peak resident memory and wall time.

It prints tables and rewrites the `## Simulator` section of the output file between its markers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from gigawatt.capacity.fleet import Fleet, load_fleet
from gigawatt.capacity.sites import site_gpus, site_named
from gigawatt.limits.types import Decision, Reservation
from gigawatt.policy.load import load_policy
from gigawatt.sim.demand import Demand
from gigawatt.sim.demand_load import load_demand
from gigawatt.sim.fleet_model import plan_fleet
from gigawatt.sim.metrics import Scenario, summarise
from gigawatt.sim.run import Simulation
from gigawatt.sim.simulate import Setup, simulate_all
from gigawatt.sim.workload import build_workload, mean_requests, sample_fraction
from report import library_version, md_table, run_stamp, write_section

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "examples" / "policy.toml"
DEMAND = ROOT / "examples" / "demand.toml"
FLEET = ROOT / "examples" / "fleet.toml"
SITE = "site-300mw"
SEED = 1
START, END = "<!-- simulate:start -->", "<!-- simulate:end -->"

TARGET_RPS = 25_000
TARGET_MEMORY_GIB = 8.0


@dataclass(frozen=True, slots=True)
class LoopRun:
    drawn: int
    sent: int
    loop_s: float
    total_s: float
    limiter_s: float | None  # time inside limiter calls (timed run only)
    limiter_calls: int

    @property
    def per_s(self) -> float:
        return self.sent / self.loop_s


@dataclass(frozen=True, slots=True)
class Results:
    users: int
    days: int
    clean: LoopRun
    timed: LoopRun
    no_fleet: LoopRun
    stand_in: LoopRun
    large: LoopRun | None
    large_users: int
    pair_sent: int
    pair_wall_s: float
    pair_rates: tuple[float, ...]
    week: dict[str, Any] | None
    machine: dict[str, str]


def loop_run(
    demand: Demand,
    fleet: Fleet | None,
    users: int,
    days: int,
    *,
    time_limiter: bool = False,
    stand_in: bool = False,
) -> LoopRun:
    """One scenario in this process. `stand_in` swaps the limiter for one that admits every
    request at no cost, to see what the rest of the loop costs alone (a diagnostic only)."""
    policy = load_policy(POLICY)
    started = time.perf_counter()
    fraction = sample_fraction(demand, users)
    demand_seed, behaviour_seed = np.random.SeedSequence(SEED).spawn(2)
    workload = build_workload(demand, policy, days, fraction, np.random.default_rng(demand_seed))
    pools = None
    if fleet is not None:
        pools = plan_fleet(fleet.scaled(fraction), mean_requests(workload))
    sim = Simulation(
        policy,
        workload,
        pools,
        demand.retry,
        np.random.default_rng(behaviour_seed),
        max_tokens={name: plan.max_tokens for name, plan in demand.plans.items()},
    )
    spent = [0.0, 0]
    if stand_in:
        sim.limiter = _StandIn()  # type: ignore[assignment]
    if time_limiter:
        limiter = sim.limiter
        for name in ("admit", "reconcile", "release"):
            setattr(limiter, name, _timed(getattr(limiter, name), spent))
    loop_started = time.perf_counter()
    outcome = sim.run()
    loop_s = time.perf_counter() - loop_started
    if fleet is not None:
        scenario = Scenario("today", policy.source, fleet.name, fleet.gpus, pools)
    else:
        scenario = Scenario("today", policy.source, "none", 0, None)
    summarise(scenario, workload, outcome, demand.timezone)
    return LoopRun(
        drawn=len(workload),
        sent=len(outcome.t),
        loop_s=loop_s,
        total_s=time.perf_counter() - started,
        limiter_s=spent[0] if time_limiter else None,
        limiter_calls=int(spent[1]),
    )


class _StandIn:
    """Admits everything, keeps nothing."""

    def admit(self, account: str, plan: Any, model: str, estimate: Any, now: float) -> Any:
        reservation = Reservation("-", account, plan.name, model, estimate, now, now, (), ())
        return Decision(True, reservation, ())

    def reconcile(self, reservation: Any, actual: Any, now: float) -> bool:
        return True

    def release(self, reservation: Any, now: float) -> bool:
        return True


def _timed(call: Callable[..., Any], spent: list[Any]) -> Callable[..., Any]:
    clock = time.perf_counter

    def timed(*args: Any) -> Any:
        started = clock()
        try:
            return call(*args)
        finally:
            spent[0] += clock() - started
            spent[1] += 1

    return timed


def pair_run(demand: Demand, fleet: Fleet, users: int, days: int) -> tuple[int, float, tuple]:
    policy = load_policy(POLICY)
    gpu, count = site_gpus(site_named(SITE))
    setups = [
        Setup("today", policy, fleet),
        Setup(f"today + {SITE}", policy, fleet.with_added_gpus(gpu, count)),
    ]
    started = time.perf_counter()
    results = simulate_all(
        setups, demand, days=days, seed=SEED, fraction=sample_fraction(demand, users), workers=2
    )
    wall = time.perf_counter() - started
    return (
        sum(r.sent for r in results),
        wall,
        tuple(r.sent / r.seconds for r in results),
    )


def week_run(users: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable, "-m", "gigawatt", "simulate",
            "--policy", str(POLICY), "--demand", str(DEMAND), "--fleet", str(FLEET),
            "--days", "7", "--seed", str(SEED), "--sample-users", str(users),
            "--report", str(Path(tmp) / "report"), "--json",
        ]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"gigawatt simulate failed:\n{done.stderr}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    sent = json.loads(done.stdout)["scenarios"][0]["totals"]["requests_sent"]
    return {"users": users, "sent": sent, "wall_s": wall, "peak_gib": peak_kib / 2**20}


def machine_info() -> dict[str, str]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu or platform.processor() or "?",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load": "/".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def benchmark(args: argparse.Namespace, console: Console) -> Results:
    machine = machine_info()
    demand = load_demand(DEMAND, load_policy(POLICY))
    fleet = load_fleet(FLEET)
    console.print(f"one scenario, {args.users:,} users, {args.days} day(s)...")
    clean = loop_run(demand, fleet, args.users, args.days, time_limiter=False)
    console.print("the same, limiter calls timed...")
    timed = loop_run(demand, fleet, args.users, args.days, time_limiter=True)
    console.print("the same without a fleet...")
    no_fleet = loop_run(demand, None, args.users, args.days)
    console.print("the same with a stand-in for the limiter...")
    stand_in = loop_run(demand, fleet, args.users, args.days, stand_in=True)
    large = None
    if args.large_users:
        console.print(f"one scenario, {args.large_users:,} users...")
        large = loop_run(demand, fleet, args.large_users, args.days)
    console.print(f"with and without {SITE}, two processes...")
    pair_sent, pair_wall, pair_rates = pair_run(demand, fleet, args.users, args.days)
    week = None
    if not args.skip_week:
        console.print(f"a week of {args.week_users:,} users through gigawatt simulate...")
        week = week_run(args.week_users)
    return Results(
        args.users,
        args.days,
        clean,
        timed,
        no_fleet,
        stand_in,
        large,
        args.large_users,
        pair_sent,
        pair_wall,
        pair_rates,
        week,
        machine,
    )


def rows(results: Results) -> tuple[tuple[str, ...], list[list[str]]]:
    c, t = results.clean, results.timed
    limiter_us = (t.limiter_s or 0.0) / t.sent * 1e6
    rest_us = (t.loop_s - (t.limiter_s or 0.0)) / t.sent * 1e6
    columns = ("run", "processes", "requests sent", "seconds", "requests/s", "µs/request")
    body = [
        [
            "one scenario: event loop",
            "1",
            f"{c.sent:,}",
            f"{c.loop_s:.1f}",
            f"{c.per_s:,.0f}",
            f"{1e6 / c.per_s:.1f}",
        ],
        [
            "one scenario: end to end (drawing and summarising too)",
            "1",
            f"{c.sent:,}",
            f"{c.total_s:.1f}",
            f"{c.sent / c.total_s:,.0f}",
            f"{1e6 * c.total_s / c.sent:.1f}",
        ],
        [
            "one scenario, limiter calls timed: in the limiter",
            "1",
            f"{t.sent:,}",
            f"{t.limiter_s or 0.0:.1f}",
            "",
            f"{limiter_us:.1f}",
        ],
        [
            "one scenario, limiter calls timed: the rest of the loop",
            "1",
            f"{t.sent:,}",
            f"{t.loop_s - (t.limiter_s or 0.0):.1f}",
            "",
            f"{rest_us:.1f}",
        ],
        *(
            [
                [
                    f"one scenario, {results.large_users:,} users: event loop",
                    "1",
                    f"{results.large.sent:,}",
                    f"{results.large.loop_s:.1f}",
                    f"{results.large.per_s:,.0f}",
                    f"{1e6 / results.large.per_s:.1f}",
                ]
            ]
            if results.large is not None
            else []
        ),
        [
            "diagnostic: one scenario without a fleet (limiter and loop)",
            "1",
            f"{results.no_fleet.sent:,}",
            f"{results.no_fleet.loop_s:.1f}",
            f"{results.no_fleet.per_s:,.0f}",
            f"{1e6 / results.no_fleet.per_s:.1f}",
        ],
        [
            "diagnostic: one scenario, a stand-in admitting everything (loop and fleet)",
            "1",
            f"{results.stand_in.sent:,}",
            f"{results.stand_in.loop_s:.1f}",
            f"{results.stand_in.per_s:,.0f}",
            f"{1e6 / results.stand_in.per_s:.1f}",
        ],
        [
            f"two scenarios (with and without {SITE}) at once",
            "2",
            f"{results.pair_sent:,}",
            f"{results.pair_wall_s:.1f}",
            f"{results.pair_sent / results.pair_wall_s:,.0f}",
            "",
        ],
    ]
    return columns, body


def markdown(results: Results, command: str, when: str) -> str:
    m = results.machine
    c, t = results.clean, results.timed
    columns, body = rows(results)
    limiter_us = (t.limiter_s or 0.0) / t.sent * 1e6
    rest_us = (t.loop_s - (t.limiter_s or 0.0)) / t.sent * 1e6
    pair_rps = results.pair_sent / results.pair_wall_s
    lines = [
        START,
        "## Simulator",
        "",
        "Requests per second through `gigawatt simulate`'s event loop with the example policy "
        "(nine plans: session, rolling and weekly windows, peak hours, degradation, per-model "
        "rate buckets), the example demand and the example fleet, every request admitted or "
        "refused by the real `Limiter` on the memory store and every admitted one reconciled "
        "(or released) on the virtual clock. A request is one attempt the limiter decided; "
        f"retries count, requests users held back do not. {results.users:,} users sampled, "
        f"{results.days} day(s), seed {SEED}.",
        "",
        "```console",
        f"$ {command}",
        "```",
        "",
        f"Run {when}, library at {library_version()}, on {m['nproc']} CPUs ({m['cpu']}), "
        f"{m['os']}, Python {m['python']}, numpy {m['numpy']}; load average before: "
        f"{m['load']}.",
        "",
        *md_table(columns, body),
        "",
    ]
    targets = [
        [
            f"one scenario of {results.users:,} users >= {TARGET_RPS:,} requests/s, one process",
            f"{c.per_s:,.0f}",
            "yes" if c.per_s >= TARGET_RPS else "**no**",
        ],
    ]
    if results.large is not None:
        large = results.large
        targets.append(
            [
                f"one scenario of {results.large_users:,} users >= {TARGET_RPS:,} requests/s, "
                "one process",
                f"{large.per_s:,.0f}",
                "yes" if large.per_s >= TARGET_RPS else "**no**",
            ]
        )
    targets += [
        [
            f"the machine >= {TARGET_RPS:,} requests/s, two scenarios in two processes",
            f"{pair_rps:,.0f}",
            "yes" if pair_rps >= TARGET_RPS else "**no**",
        ],
    ]
    if results.week is not None:
        week = results.week
        targets.append(
            [
                f"a week of {week['users']:,} users within {TARGET_MEMORY_GIB:g} GiB",
                f"{week['peak_gib']:.2f} GiB",
                "yes" if week["peak_gib"] <= TARGET_MEMORY_GIB else "**no**",
            ]
        )
    lines += [*md_table(("target", "measured", "met"), targets), ""]
    lines.append(
        f"**Where the time goes.** With its calls timed, the limiter takes {limiter_us:.1f} µs "
        f"of a request ({limiter_us / (limiter_us + rest_us):.0%}) and everything else, the "
        f"event heap, the fleet model, degradation, retries and the attempt log, "
        f"{rest_us:.1f} µs; timed, the two add up to {limiter_us + rest_us:.1f} µs against "
        f"{c.loop_s / c.sent * 1e6:.1f} µs untimed (the clock reads and the noise of a shared "
        "machine). The limiter's cost is that of "
        "the example policy: a free request checks three windows, one of them rolling, and "
        "every account holds its own open reservations, which each call sweeps; the limiter "
        "benchmark's pairs are one plan with two windows and one request in flight per "
        "account. The parts cost more together "
        f"than apart: without a fleet a request costs {1e6 / results.no_fleet.per_s:.1f} µs "
        "in all, and with a stand-in that admits everything at no cost (the diagnostic rows) "
        f"the loop and the fleet model cost {1e6 / results.stand_in.per_s:.1f} µs, though the "
        "loop's own work is in both: open reservations stay in the accounts while requests are "
        "served (every limiter call sweeps them), and the two share the processor's caches, "
        f"more so with more accounts. {TARGET_RPS:,} requests/s allows "
        f"{1e6 / TARGET_RPS:.0f} µs a request in all; at {limiter_us:.0f} µs in the limiter "
        f"alone the ceiling is {1e6 / limiter_us:,.0f} requests/s."
    )
    lines.append("")
    lines.append(
        f"**Two processes.** Scenarios share nothing while they run, so `--compare`, "
        "`--compare-fleet` and `--compare-site` run them in parallel processes (`--workers`, "
        f"default one per scenario up to the CPUs) with the same results: "
        f"{pair_rps:,.0f} requests/s of wall time for both together "
        f"({', '.join(f'{r:,.0f}' for r in results.pair_rates)} each, counting each "
        "process's own time)."
    )
    if results.week is not None:
        week = results.week
        lines.append("")
        lines.append(
            f"**A week.** `gigawatt simulate --days 7 --sample-users {week['users']}` sent "
            f"{week['sent']:,} requests in {week['wall_s']:.0f} s end to end (report "
            f"included) with a peak resident set of {week['peak_gib']:.2f} GiB: the workload "
            "is numpy arrays drawn at once, the attempt log typed arrays, and only requests in "
            "flight are Python objects."
        )
    lines.append("")
    lines.append(
        "One run on 2 CPUs shared with other work; repeated runs differ by several percent."
    )
    lines.append(END)
    return "\n".join(lines) + "\n"


def print_tables(results: Results, console: Console) -> None:
    columns, body = rows(results)
    table = Table(title="Simulator")
    for column in columns:
        table.add_column(column, justify="left" if column == "run" else "right")
    for row in body:
        table.add_row(*row)
    console.print(table)
    if results.week is not None:
        week = results.week
        console.print(
            f"a week of {week['users']:,} users: {week['sent']:,} requests, "
            f"{week['wall_s']:.0f} s, peak {week['peak_gib']:.2f} GiB"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--users", type=int, default=20_000, help="users sampled (20,000, the command's default)"
    )
    parser.add_argument(
        "--large-users",
        type=int,
        default=100_000,
        help="users in a second, larger one-scenario run (100,000; 0 leaves it out)",
    )
    parser.add_argument("--days", type=int, default=1, help="days simulated (1)")
    parser.add_argument(
        "--week-users", type=int, default=100_000, help="users in the week's run (100,000)"
    )
    parser.add_argument("--skip-week", action="store_true", help="leave out the week's run")
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "benchmarks.md",
        help="markdown file whose Simulator section is rewritten (default: docs/benchmarks.md)",
    )
    args = parser.parse_args(argv)
    console = Console()
    command, when = run_stamp("simulate.py", argv)
    results = benchmark(args, console)
    print_tables(results, console)
    write_section(args.out, markdown(results, command, when), START, END)
    console.print(f"wrote the Simulator section of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
