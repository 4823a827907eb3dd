"""`gigawatt simulate`: a policy against a population and a fleet, with a report."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gigawatt.errors import PlanError, PolicyError
from gigawatt.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from gigawatt.capacity.fleet import Fleet
    from gigawatt.cli import Subparsers
    from gigawatt.sim.simulate import Setup

DEFAULT_SAMPLE_USERS = 20_000


def add_simulate(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="simulate a policy against a population and a fleet, and write a report",
        description="Draw a population's requests from a demand file, let the real limiter "
        "decide each one on a virtual clock, serve them on a modelled fleet, and write an HTML "
        "report with plots, CSV and JSON. A sample of the users is simulated against the fleet "
        "scaled by the same share. The same seed gives the same report.",
    )
    parser.add_argument("--policy", type=Path, required=True, help="the policy file")
    parser.add_argument("--demand", type=Path, required=True, help="the demand file")
    parser.add_argument(
        "--fleet", type=Path, help="the fleet file (default: none, capacity is unlimited)"
    )
    parser.add_argument("--days", type=int, default=1, help="days to simulate (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--report", type=Path, required=True, metavar="DIR", help="directory for the report"
    )
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument(
        "--sample-users",
        type=int,
        metavar="N",
        help=f"simulate about N users, the same share of every plan "
        f"(default: {DEFAULT_SAMPLE_USERS:,})",
    )
    scale.add_argument(
        "--scale", type=float, metavar="F", help="simulate this share of every plan's users"
    )
    compare = parser.add_mutually_exclusive_group()
    compare.add_argument(
        "--compare", type=Path, metavar="POLICY2", help="a second policy, side by side"
    )
    compare.add_argument(
        "--compare-fleet", type=Path, metavar="F2", help="a second fleet, side by side"
    )
    compare.add_argument(
        "--compare-site",
        metavar="SITE",
        help="side by side: the fleet, and the fleet with a catalog site's GPUs added",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="scenarios run at once, each in its own process (default: one per scenario, up "
        "to the CPUs); results do not depend on it",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run_simulate)


def run_simulate(args: argparse.Namespace) -> int:
    from gigawatt.cli import report_policy_error

    problem = _check_numbers(args)
    if problem:
        print(f"gigawatt: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        setups, demand = _load(args)
    except PolicyError as exc:
        report_policy_error(exc)
        return EXIT_USAGE
    except PlanError as exc:
        print(f"gigawatt: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from gigawatt.sim.report import write_report
    from gigawatt.sim.simulate import simulate_all
    from gigawatt.sim.workload import sample_fraction

    if args.scale is not None:
        fraction = args.scale
    else:
        fraction = sample_fraction(demand, args.sample_users or DEFAULT_SAMPLE_USERS)
    workers = args.workers or min(len(setups), os.cpu_count() or 1)
    err = Console(file=sys.stderr)
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=args.json or not err.is_terminal,
        ) as progress:
            tasks = [progress.add_task(f"simulating {setup.label}", total=1.0) for setup in setups]
            results = simulate_all(
                setups,
                demand,
                days=args.days,
                seed=args.seed,
                fraction=fraction,
                workers=workers,
                progress=lambda i, done: progress.update(tasks[i], completed=done),
            )
    except PlanError as exc:
        print(f"gigawatt: {exc}", file=sys.stderr)
        return EXIT_USAGE
    summaries = [r.summary for r in results]
    rates = [r.sent / max(r.seconds, 1e-9) for r in results]
    note = (
        f"Demand {args.demand.name}, seed {args.seed}. Simulated: "
        f"{fraction:.3g} of each plan's users against the fleet scaled by the same share "
        f"(replicas rounded, at least one per pool)."
    )
    try:
        index = write_report(args.report, summaries, note)
    except OSError as exc:
        print(f"gigawatt: cannot write the report in {args.report}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(_json_view(summaries, index), allow_nan=False))
    else:
        _print(summaries, index, rates)
    return EXIT_OK


def _check_numbers(args: argparse.Namespace) -> str | None:
    if args.workers is not None and args.workers < 1:
        return f"--workers must be at least 1, not {args.workers}"
    if args.days < 1:
        return f"--days must be at least 1, not {args.days}"
    if args.sample_users is not None and args.sample_users < 1:
        return f"--sample-users must be at least 1, not {args.sample_users}"
    if args.scale is not None and not 0 < args.scale <= 1:
        return f"--scale must be a share of the users in (0, 1], not {args.scale}"
    if args.compare_fleet is not None and args.fleet is None:
        return "--compare-fleet compares with --fleet: give both"
    if args.compare_site is not None and args.fleet is None:
        return "--compare-site adds a site to --fleet: give --fleet too"
    if args.report.exists() and not args.report.is_dir():
        return f"--report {args.report} is a file; give a directory"
    return None


def _load(args: argparse.Namespace) -> tuple[list[Setup], Any]:
    from gigawatt.capacity.fleet import load_fleet
    from gigawatt.policy.load import load_policy
    from gigawatt.sim.demand_load import load_demand
    from gigawatt.sim.simulate import Setup

    policy = load_policy(args.policy)
    demand = load_demand(args.demand, policy)
    if demand.trace is not None:
        from gigawatt.sim.trace import read_trace

        read_trace(demand.trace.path)  # its problems are reported before anything runs
    fleet: Fleet | None = load_fleet(args.fleet) if args.fleet is not None else None
    fleet_label = f" on {fleet.name}" if fleet is not None else ""
    setups = [Setup(f"{args.policy.stem}{fleet_label}", policy, fleet)]
    if args.compare is not None:
        other = load_policy(args.compare)
        load_demand(args.demand, other)  # its plans must be the demand's too
        label = args.compare.stem
        if label == args.policy.stem:
            label = str(args.compare)
        setups.append(Setup(f"{label}{fleet_label}", other, fleet))
    elif args.compare_fleet is not None:
        other_fleet = load_fleet(args.compare_fleet)
        name = (
            other_fleet.name
            if other_fleet.name != getattr(fleet, "name", None)
            else str(args.compare_fleet)
        )
        setups.append(Setup(f"{args.policy.stem} on {name}", policy, other_fleet))
    elif args.compare_site is not None:
        from gigawatt.capacity.sites import site_gpus, site_named

        assert fleet is not None
        gpu, count = site_gpus(site_named(args.compare_site))
        grown = fleet.with_added_gpus(gpu, count)
        setups.append(
            Setup(f"{args.policy.stem} on {fleet.name} + {args.compare_site}", policy, grown)
        )
    return setups, demand


def _json_view(summaries: list[dict[str, Any]], index: Path) -> dict[str, Any]:
    from gigawatt.sim.report import _clean

    scenarios = []
    for s in summaries:
        fleet = None
        if s["fleet"] is not None:
            fleet = [
                {k: pool[k] for k in ("model", "replicas", "batch_slots", "peak_utilisation")}
                for pool in s["fleet"]["pools"]
            ]
        scenarios.append(
            {
                "scenario": s["scenario"],
                "totals": s["totals"],
                "plans": s["plans"],
                "fleet": fleet,
            }
        )
    return _clean({"report": str(index), "scenarios": scenarios})


def _print(summaries: list[dict[str, Any]], index: Path, rates: list[float]) -> None:
    console = Console(file=sys.stdout)
    for s, rate in zip(summaries, rates, strict=True):
        sc, totals = s["scenario"], s["totals"]
        table = Table(
            title=f"{sc['label']}: {sc['days']} day(s), {sc['users']:,} users "
            f"({sc['sample_fraction']:.3g} of each plan)",
            title_justify="left",
        )
        for column in (
            "plan",
            "requests",
            "refused",
            "wait p99",
            "TTFT p99",
            "degraded",
            "hit 5h limit",
            "users affected/day",
        ):
            table.add_column(column, justify="left" if column == "plan" else "right")
        for name, row in s["plans"].items():
            table.add_row(
                name,
                f"{row['requests']:,}",
                _share(row["refused"], row["requests"]),
                _seconds(row["wait_p99_s"]),
                _seconds(row["ttft_p99_s"]),
                _percent(row["degraded_share"]),
                f"{row.get('users_hit_session_limit', 0):,}",
                _percent(row.get("users_affected_share")),
            )
        console.print(table)
        if s["fleet"] is not None:
            peaks = ", ".join(
                f"{p['model']} {p['peak_utilisation']:.0%}" for p in s["fleet"]["pools"]
            )
            console.print(f"peak-hour utilisation: {peaks}")
        console.print(
            f"{totals['requests_sent']:,} requests sent ({totals['retries']:,} retries), "
            f"{rate:,.0f} simulated per second"
        )
    console.print(f"report: {index}")


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.2%}" if whole else "-"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g} s"
