"""`gigawatt plan limits`: the limits a fleet sustains, before and after a site comes or goes."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from gigawatt.capacity.fleet import Fleet, load_fleet
from gigawatt.capacity.sites import site_gpus, site_named
from gigawatt.capacity.sustain import UNBOUNDED_SCALE, ModelDemand, PlanDemand
from gigawatt.capacity.whatif import DEFAULT_TARGET, Assessment, assess, sustainable_policy
from gigawatt.errors import PlanError, PolicyError
from gigawatt.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from gigawatt.cli import Subparsers
    from gigawatt.policy.model import Policy
    from gigawatt.sim.demand import Demand


def add_limits(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "limits",
        help="which limits a fleet sustains under a demand, before and after a site change",
        description="Given a policy, a demand (users per plan, daily curve, request sizes) and a "
        "fleet, find the peak-hour utilisation of each model's GPUs under the policy, the largest "
        "multiplier on every window limit that keeps it under the target, whether peak-hour "
        "throttling can go, and how far each model's API rate limits can rise. With --add-site "
        "or --remove-site, the same before and after, side by side.",
    )
    parser.add_argument("--policy", type=Path, required=True, help="the policy file")
    parser.add_argument("--demand", type=Path, required=True, help="the demand file")
    parser.add_argument("--fleet", type=Path, required=True, help="the fleet file")
    parser.add_argument(
        "--add-site",
        action="append",
        default=[],
        metavar="SITE",
        help="a catalog site whose GPUs join the fleet (repeatable)",
    )
    parser.add_argument(
        "--remove-site",
        action="append",
        default=[],
        metavar="SITE",
        help="a catalog site whose GPUs leave the fleet (repeatable)",
    )
    parser.add_argument(
        "--target",
        type=float,
        default=DEFAULT_TARGET,
        help=f"peak-hour utilisation to stay under (default: {DEFAULT_TARGET})",
    )
    parser.add_argument("--catalog", type=Path, help="extra GPUs, models and sites (TOML)")
    parser.add_argument(
        "--emit-policy",
        type=Path,
        metavar="FILE",
        help="write the policy with the limits the (new) fleet sustains",
    )
    parser.add_argument(
        "--credits",
        choices=("policy", "gpu-time"),
        default="policy",
        help="credit weights in the emitted policy: the policy's own (default), or each "
        "model's GPU-time per input and output token on the fleet, limits converted",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run_limits)


def run_limits(args: argparse.Namespace) -> int:
    from gigawatt.cli import report_policy_error
    from gigawatt.policy.load import load_policy
    from gigawatt.sim.demand_load import load_demand

    try:
        policy = load_policy(args.policy)
        demand = load_demand(args.demand, policy)
        fleet = load_fleet(args.fleet)
    except PolicyError as exc:
        report_policy_error(exc)
        return EXIT_USAGE
    try:
        demands = plan_demands(policy, demand)
        after = changed_fleet(fleet, args.add_site, args.remove_site, args.catalog)
        before_assessment = assess(policy, demands, fleet, target=args.target)
        after_assessment = (
            assess(policy, demands, after, target=args.target) if after is not None else None
        )
        final = after_assessment or before_assessment
        emitted: Policy | None = None
        changes: list[str] = []
        if args.emit_policy is not None:
            emitted, changes = sustainable_policy(
                policy, demands, after or fleet, final, gpu_time_credits=args.credits == "gpu-time"
            )
    except PlanError as exc:
        print(f"gigawatt: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if emitted is not None:
        from gigawatt.policy.dump import policy_to_toml

        header = (
            f"Limits that fleet {final.fleet!r} ({final.gpus:,} GPUs) sustains under the demand "
            f"{args.demand.name}, keeping peak-hour utilisation under {args.target:.0%}.\n"
            f"Written by `gigawatt plan limits` from {args.policy.name}:\n"
            + "\n".join(f"- {change}" for change in changes)
        )
        try:
            args.emit_policy.write_text(policy_to_toml(emitted, header=header), "utf-8")
        except OSError as exc:
            print(f"gigawatt: cannot write {args.emit_policy}: {exc.strerror}", file=sys.stderr)
            return EXIT_FAILED
    if args.json:
        print(
            json.dumps(
                {
                    "target": args.target,
                    "before": assessment_json(before_assessment),
                    "after": assessment_json(after_assessment) if after_assessment else None,
                    "emitted_policy": str(args.emit_policy) if emitted is not None else None,
                    "changes": changes,
                }
            )
        )
    else:
        console = Console(file=sys.stdout)
        print_assessments(console, before_assessment, after_assessment)
        print_window_limits(console, policy, before_assessment, after_assessment)
        if emitted is not None:
            console.print(f"Wrote {args.emit_policy}:")
            for change in changes:
                console.print(f"  - {change}")
    return EXIT_OK


def plan_demands(policy: Policy, demand: Demand) -> tuple[PlanDemand, ...]:
    """The planner's mean view of a demand file: the same file the simulator draws from."""
    if not demand.plans:
        raise PlanError(
            "the demand file describes no population (a trace alone); the planner needs users "
            "per plan, a daily curve and request sizes"
        )
    out = []
    for name, plan in demand.plans.items():
        if name not in policy.plans:
            raise PlanError(f"the demand names plan {name!r}, which the policy does not have")
        models = []
        for model, share in plan.models.items():
            if share <= 0:
                continue
            output = plan.mean_output_tokens(model)
            if plan.max_tokens is not None:
                output = min(output, plan.max_tokens)
            cached = plan.mean_cached_tokens(model)
            models.append(
                ModelDemand(
                    model=model,
                    share=share,
                    input_tokens=plan.mean_input_tokens(model) - cached,
                    output_tokens=output,
                    cache_read_tokens=cached,
                )
            )
        out.append(
            PlanDemand(
                plan=name,
                users=plan.users,
                active_share=plan.active_share,
                requests_per_active_day=plan.requests_per_active_day,
                intensity_sigma=plan.intensity.lognormal_sigma,
                hourly=plan.hourly,
                weekly=plan.weekly_factors,
                timezone=demand.timezone,
                models=tuple(models),
            )
        )
    return tuple(out)


def changed_fleet(
    fleet: Fleet, added: list[str], removed: list[str], catalog: Path | None
) -> Fleet | None:
    """The fleet with the named sites' GPUs added and removed; None when no site is named."""
    if not added and not removed:
        return None
    names = []
    for name in added:
        gpu, count = site_gpus(site_named(name, catalog), catalog)
        fleet = fleet.with_added_gpus(gpu, count)
        names.append(f"+{name}")
    for name in removed:
        gpu, count = site_gpus(site_named(name, catalog), catalog)
        fleet = fleet.with_removed_gpus(gpu, count)
        names.append(f"-{name}")
    return Fleet(name=f"{fleet.name} {' '.join(names)}", pools=fleet.pools)


def assessment_json(assessment: Assessment) -> dict[str, Any]:
    out = asdict(assessment)
    out["can_double_windows"] = assessment.can_double_windows
    out["can_double_sessions"] = assessment.can_double_sessions
    out["can_drop_peak"] = assessment.can_drop_peak
    # JSON has no infinity; a scale no limit reaches is reported as null.
    for key in ("window_scale", "session_scale", "weekly_scale", "window_scale_without_peak"):
        out[key] = _scale_or_none(out[key])
    out["api_scale"] = {m: _scale_or_none(s) for m, s in assessment.api_scale.items()}
    return out


def _scale_or_none(scale: float) -> float | None:
    return None if scale >= UNBOUNDED_SCALE else scale


def print_assessments(console: Console, before: Assessment, after: Assessment | None) -> None:
    columns = [before] if after is None else [before, after]
    fleet = Table(title="Fleet capacity at the demand's mean request", title_justify="left")
    fleet.add_column("", no_wrap=True)
    for a in columns:
        fleet.add_column(a.fleet, justify="right", no_wrap=True)
    fleet.add_row("GPUs", *(f"{a.gpus:,}" for a in columns))
    for model in before.capacity:
        fleet.add_row(f"[bold]{model}[/]", *("" for _ in columns))
        rows = (
            ("  replicas", lambda c: f"{c.replicas:,}"),
            ("  requests/s", lambda c: f"{c.requests_per_s:,.0f}"),
            ("  output tokens/s", lambda c: f"{c.output_tokens_per_s:,.0f}"),
            ("  credits/hour", lambda c: f"{c.credits_per_hour:,.3g}"),
            ("  GPU-s per 1M output tokens", lambda c: f"{c.gpu_s_per_output_token * 1e6:,.0f}"),
            ("  GPU-s per 1M input tokens", lambda c: f"{c.gpu_s_per_input_token * 1e6:,.0f}"),
        )
        for label, cell in rows:
            fleet.add_row(label, *(cell(a.capacity[model]) for a in columns))
    console.print(fleet)

    limits = Table(
        title=f"Limits under a peak-hour utilisation target of {before.target:.0%}",
        title_justify="left",
    )
    limits.add_column("", no_wrap=True)
    for a in columns:
        limits.add_column(a.fleet, justify="right", no_wrap=True)
    for model in before.peak_utilisation:
        limits.add_row(
            f"peak utilisation, {model}",
            *(_share(a.peak_utilisation[model], a.target) for a in columns),
        )
    limits.add_row("5-hour limits: most x", *(_scale(a.session_scale) for a in columns))
    limits.add_row("5-hour limits can double", *(_yes(a.can_double_sessions) for a in columns))
    limits.add_row("weekly limits: most x", *(_scale(a.weekly_scale) for a in columns))
    limits.add_row("all windows: most x", *(_scale(a.window_scale) for a in columns))
    for model in before.peak_utilisation_without_peak:
        limits.add_row(
            f"peak utilisation, {model}, no peak hours",
            *(_share(a.peak_utilisation_without_peak[model], a.target) for a in columns),
        )
    limits.add_row("peak-hour throttling can go", *(_yes(a.can_drop_peak) for a in columns))
    limits.add_row(
        "all windows, no peak hours: most x",
        *(_scale(a.window_scale_without_peak) for a in columns),
    )
    for model in before.api_scale:
        limits.add_row(
            f"API limits, {model}: most x",
            *(_scale(a.api_scale[model]) for a in columns),
        )
    console.print(limits)


def print_window_limits(
    console: Console, policy: Policy, before: Assessment, after: Assessment | None
) -> None:
    columns = [before] if after is None else [before, after]
    table = Table(
        title="Window limits per plan, in credits: now, and the largest each fleet sustains "
        "with every window scaled by one multiplier",
        title_justify="left",
    )
    table.add_column("plan", no_wrap=True)
    table.add_column("window", no_wrap=True)
    table.add_column("now", justify="right", no_wrap=True)
    for a in columns:
        table.add_column(a.fleet, justify="right", no_wrap=True)
    for plan in policy.plans.values():
        for window in plan.windows:
            table.add_row(
                plan.name,
                window.name,
                f"{window.limit:,.0f}",
                *(_limit(window.limit, a.window_scale) for a in columns),
            )
    console.print(table)


def _limit(limit: float, scale: float) -> str:
    if scale >= UNBOUNDED_SCALE:
        return "unbounded"
    if scale == 0:
        return "[red]none[/]"
    return f"{limit * scale:,.0f}"


def _share(value: float, target: float) -> str:
    text = f"{value:.0%}"
    return f"[red]{text}[/]" if value > target else text


def _scale(scale: float) -> str:
    if scale >= UNBOUNDED_SCALE:
        return "unbounded"
    if scale == 0:
        return "[red]none suffices[/]"
    return f"x{scale:.2f}"


def _yes(flag: bool) -> str:
    return "[green]yes[/]" if flag else "[red]no[/]"
