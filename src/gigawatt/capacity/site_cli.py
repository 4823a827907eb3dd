"""`gigawatt plan site` (one site worked out) and `gigawatt plan compare` (sites side by side)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from gigawatt.capacity.catalog import PRECISIONS
from gigawatt.capacity.site_plan import DEFAULT_SERVING, Serving, SitePlan, plan_site
from gigawatt.capacity.sites import OrbitalSite, Site, TerrestrialSite, site_named
from gigawatt.errors import PlanError, PolicyError
from gigawatt.exits import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from gigawatt.cli import Subparsers


_D = DEFAULT_SERVING


def add_site(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "site",
        help="a site's GPUs, power, mass and cost per MW-year and per million tokens",
        description="Work a catalog site through: on Earth, the GPUs and servers its power runs "
        "and its IT and facility power; in orbit, the sunlight its orbit gets, the solar array, "
        "battery and radiators each satellite needs, their mass and the launch. Both: what a "
        "year of the site's power costs per MW, and per million output tokens of one model and "
        "workload (GPUs left out unless the site prices them).",
    )
    parser.add_argument("--site", required=True, metavar="NAME", help="a catalog site")
    _add_common(parser)
    parser.set_defaults(run=plan_site_command)


def add_compare(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="sites side by side: GPUs, power, cost per MW-year and per million tokens",
        description="Work two or more catalog sites through, as `plan site` does, and show "
        "them side by side.",
    )
    parser.add_argument(
        "--site",
        required=True,
        action="append",
        metavar="NAME",
        help="a catalog site; give --site twice or more",
    )
    _add_common(parser)
    parser.set_defaults(run=plan_compare_command)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--catalog", type=Path, metavar="FILE", help="extra GPUs, models and sites (TOML)"
    )
    tokens = parser.add_argument_group(
        "cost per token",
        f"The model and workload output tokens are priced on (default: {_D.model} at "
        f"{_D.precision} on {_D.gpus_per_replica} GPUs per replica, {_D.input_tokens:,} tokens "
        f"in, {_D.output_tokens:,} out, at most {_tpot_ms(_D):g} ms per output token).",
    )
    tokens.add_argument("--model", default=_D.model, help="a catalog model")
    tokens.add_argument("--precision", default=_D.precision, help=" | ".join(PRECISIONS))
    tokens.add_argument("--gpus-per-replica", type=int, default=_D.gpus_per_replica, metavar="N")
    tokens.add_argument("--input", type=int, default=_D.input_tokens, metavar="TOKENS")
    tokens.add_argument("--output", type=int, default=_D.output_tokens, metavar="TOKENS")
    tokens.add_argument(
        "--tpot-ms",
        type=float,
        default=_tpot_ms(_D),
        metavar="MS",
        help="time-per-output-token target; 0 for none (the largest batch that fits)",
    )
    prices = parser.add_argument_group("prices (override the site's)")
    prices.add_argument("--launch-usd-per-kg", type=float, metavar="USD", help="orbital sites")
    prices.add_argument(
        "--electricity-usd-per-kwh", type=float, metavar="USD", help="terrestrial sites"
    )
    prices.add_argument(
        "--gpu-usd", type=float, metavar="USD", help="one GPU with its server share"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def plan_site_command(args: argparse.Namespace) -> int:
    plans = _plans([args.site], args)
    if isinstance(plans, int):
        return plans
    [plan] = plans
    if args.json:
        print(json.dumps(plan.as_json()))
        return EXIT_OK
    table = Table(title=f"{plan.site.name} ({plan.site.kind})", show_header=False)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for rows in site_sections(plan).values():
        for label, value in rows:
            table.add_row(label, value)
        table.add_section()
    console = Console(file=sys.stdout)
    console.print(table)
    console.print(f"source: {plan.site.source}", highlight=False)
    return EXIT_OK


def plan_compare_command(args: argparse.Namespace) -> int:
    if len(args.site) < 2:
        return _usage("compare needs two sites or more: --site A --site B")
    plans = _plans(args.site, args)
    if isinstance(plans, int):
        return plans
    if args.json:
        print(json.dumps({"sites": [plan.as_json() for plan in plans]}))
        return EXIT_OK
    table = Table(title="sites side by side")
    table.add_column("quantity")
    for plan in plans:
        table.add_column(plan.site.name, justify="right")
    sections = [site_sections(plan) for plan in plans]
    for section in SECTIONS:
        labels: list[str] = []  # every site's rows of this section, in first-seen order
        for site in sections:
            labels += [label for label, _ in site.get(section, []) if label not in labels]
        if not labels:
            continue
        values = [dict(site.get(section, [])) for site in sections]
        for label in labels:
            table.add_row(label, *[v.get(label, "-") for v in values])
        table.add_section()
    console = Console(file=sys.stdout)
    console.print(table)
    for plan in plans:
        console.print(f"{plan.site.name}: {plan.site.source}", highlight=False)
    return EXIT_OK


SECTIONS = ("site", "terrestrial", "orbital", "cost", "tokens")


def site_sections(plan: SitePlan) -> dict[str, list[tuple[str, str]]]:
    """The table rows of one site, (label, value), by section in `SECTIONS` order."""
    site = plan.site
    sections: dict[str, list[tuple[str, str]]] = {
        "site": [
            ("kind", site.kind),
            ("GPU", plan.gpu.name),
            ("GPUs", f"{plan.gpus:,}"),
            ("servers", f"{plan.servers:,}"),
            ("power to the servers", _power(plan.power_mw)),
        ]
    }
    if plan.fleet is not None:
        assert isinstance(site, TerrestrialSite)
        fleet = plan.fleet
        sections["terrestrial"] = [
            ("IT power", f"{fleet.it_mw:,.1f} MW"),
            ("facility power (at the meter)", f"{fleet.facility_mw:,.1f} MW"),
            ("PUE", f"{fleet.pue:g}"),
            ("provisioned share of nameplate", f"{site.servers.utilisation:g}"),
            ("watts per GPU at the meter", f"{fleet.facility_watts_per_gpu:,.0f} W"),
        ]
    if plan.satellite is not None:
        assert isinstance(site, OrbitalSite)
        sections["orbital"] = _orbital_rows(plan, site)
    cost = plan.cost
    sections["cost"] = [
        ("lifetime", f"{plan.lifetime_years:g} years"),
        ("build per year", _usd(cost.build_usd)),
        ("electricity per year", _usd(cost.energy_usd)),
        ("launch per year", _usd(cost.launch_usd)),
        ("cost per MW-year (GPUs excluded)", _usd(cost.usd_per_mw_year)),
        ("cost per kW-year", _usd(cost.usd_per_kw_year)),
    ]
    if plan.tokens is not None:
        t = plan.tokens
        s = t.serving
        target = "no target" if s.tpot_target_s is None else f"<= {_tpot_ms(s):g} ms/token"
        gpus = "GPUs included" if cost.gpus_usd else "GPUs excluded"
        sections["tokens"] = [
            ("model", f"{s.model} at {s.precision}, {s.gpus_per_replica} GPUs per replica"),
            ("workload", f"{s.input_tokens:,} in / {s.output_tokens:,} out, {target}"),
            ("replicas", f"{t.replicas:,}"),
            ("output tokens/s (site)", f"{t.output_tokens_per_s:,.0f}"),
            ("time per output token", f"{t.replica.tpot_s * 1e3:,.1f} ms"),
            ("share of the year running", f"{plan.availability:.3f}"),
            (f"per million output tokens ({gpus})", f"${t.usd_per_million_output_tokens:,.4f}"),
        ]
    return sections


def _orbital_rows(plan: SitePlan, site: OrbitalSite) -> list[tuple[str, str]]:
    sizing, design = plan.satellite, site.design
    assert sizing is not None and plan.satellite_kg is not None and plan.launch_kg is not None
    sun, orbit, radiator = sizing.sunlight, design.orbit, design.radiator
    kind = "dawn-dusk sun-synchronous" if orbit.kind == "dawn-dusk" else "ordinary low orbit"
    given = " (given)" if site.satellite_kg is not None else ""
    battery = (
        "none: compute idles in eclipse"
        if design.eclipse == "idle"
        else (f"{sizing.battery_wh / 1e3:,.1f} kWh, {sizing.battery_kg:,.0f} kg")
    )
    return [
        (
            "orbit",
            f"{kind}, {orbit.altitude_km:g} km, {math.degrees(orbit.inclination_rad):.1f} deg",
        ),
        ("satellites", f"{site.satellites:,}"),
        ("compute per satellite", f"{design.compute_watts / 1e3:,.1f} kW"),
        ("GPUs per satellite", f"{plan.gpus // site.satellites:,}"),
        (
            "sunlit: year / darkest orbit",
            f"{sun.mean_sunlit_fraction:.3f} / {sun.worst_sunlit_fraction:.3f}",
        ),
        ("longest eclipse", f"{sun.longest_eclipse_s / 60:,.1f} min"),
        (
            "array per satellite (end of life)",
            f"{sizing.array_watts / 1e3:,.1f} kW, "
            f"{sizing.array_m2:,.0f} m^2, {sizing.array_kg:,.0f} kg",
        ),
        ("battery per satellite", battery),
        (
            "radiator emits / absorbs / nets",
            f"{radiator.emitted_w_per_m2:,.0f} / "
            f"{radiator.absorbed_w_per_m2:,.0f} / {radiator.net_w_per_m2:,.0f} W/m^2",
        ),
        ("radiator per satellite", f"{sizing.radiator_m2:,.0f} m^2, {sizing.radiator_kg:,.0f} kg"),
        (
            "compute + structure per satellite",
            f"{sizing.compute_kg:,.0f} + {sizing.structure_kg:,.0f} kg",
        ),
        ("mass budget per satellite", f"{sizing.total_kg:,.0f} kg"),
        ("satellite mass", f"{plan.satellite_kg:,.0f} kg{given}"),
        ("compute watts per kg launched", f"{design.compute_watts / plan.satellite_kg:,.1f}"),
        ("launch mass", f"{plan.launch_kg / 1e3:,.1f} t"),
        (
            "launch",
            f"{_usd(plan.launch_kg * site.launch_usd_per_kg)} at ${site.launch_usd_per_kg:,.0f}/kg",
        ),
    ]


def _plans(names: list[str], args: argparse.Namespace) -> list[SitePlan] | int:
    """Each named site worked out, or the exit status after printing why not."""
    if args.tpot_ms < 0:
        return _usage(f"--tpot-ms must be 0 (no target) or above, not {args.tpot_ms:g}")
    serving = Serving(
        model=args.model,
        precision=args.precision,
        gpus_per_replica=args.gpus_per_replica,
        input_tokens=args.input,
        output_tokens=args.output,
        tpot_target_s=args.tpot_ms / 1e3 if args.tpot_ms > 0 else None,
    )
    try:
        sites = [_with_prices(site_named(name, args.catalog), args) for name in names]
        return [plan_site(site, serving, args.catalog) for site in sites]
    except PlanError as exc:
        return _usage(str(exc))
    except PolicyError as exc:
        for problem in exc.problems:
            print(f"{exc.source}: {problem}", file=sys.stderr)
        return EXIT_USAGE


def _with_prices(site: Site, args: argparse.Namespace) -> Site:
    for flag, value in (
        ("--launch-usd-per-kg", args.launch_usd_per_kg),
        ("--electricity-usd-per-kwh", args.electricity_usd_per_kwh),
        ("--gpu-usd", args.gpu_usd),
    ):
        if value is not None and not (value >= 0 and math.isfinite(value)):
            raise PlanError(f"{flag} must be 0 or more, not {value:g}")
    if args.gpu_usd is not None:
        site = replace(site, gpu_usd=args.gpu_usd)
    if isinstance(site, OrbitalSite) and args.launch_usd_per_kg is not None:
        site = replace(site, launch_usd_per_kg=args.launch_usd_per_kg)
    if isinstance(site, TerrestrialSite) and args.electricity_usd_per_kwh is not None:
        site = replace(site, electricity_usd_per_kwh=args.electricity_usd_per_kwh)
    return site


def _power(mw: float) -> str:
    return f"{mw:,.1f} MW" if mw >= 1 else f"{mw * 1e3:,.1f} kW"


def _usd(value: float) -> str:
    return f"${value:,.0f}"


def _tpot_ms(serving: Serving) -> float:
    return 0.0 if serving.tpot_target_s is None else serving.tpot_target_s * 1e3


def _usage(message: str) -> int:
    print(f"gigawatt: {message}", file=sys.stderr)
    return EXIT_USAGE
