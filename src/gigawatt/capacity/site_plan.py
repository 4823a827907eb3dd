"""One site, worked through: its GPUs, its power and mass, what a year of it costs, and per token.

`plan_site` joins the arithmetic of `power`, `orbit` and `cost` for a catalog site, and prices
output tokens with the serving model of `throughput` for one workload (`Serving`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gigawatt.capacity.catalog import Gpu, gpu_named, model_named
from gigawatt.capacity.cost import (
    YearlyCost,
    orbital_yearly_cost,
    terrestrial_yearly_cost,
    usd_per_million_tokens,
)
from gigawatt.capacity.orbit import SatelliteSizing, size_satellite
from gigawatt.capacity.power import SiteFleet, terrestrial_fleet
from gigawatt.capacity.sites import OrbitalSite, Site, TerrestrialSite, gpus_per_satellite
from gigawatt.capacity.throughput import Replica, Throughput, workload_throughput
from gigawatt.errors import PlanError


@dataclass(frozen=True, slots=True)
class Serving:
    """The model and workload tokens are priced on.

    The default: Llama-3.3-70B at fp8 on 2 GPUs per replica, 2,000 tokens in and 500 out, at
    the largest batch that keeps 50 ms per output token (20 tokens/s for each reader).
    """

    model: str = "llama-3.3-70b"
    precision: str = "fp8"
    gpus_per_replica: int = 2
    input_tokens: int = 2000
    output_tokens: int = 500
    tpot_target_s: float | None = 0.05


DEFAULT_SERVING = Serving()


@dataclass(frozen=True, slots=True)
class Tokens:
    """The site's GPUs serving one workload, and what an output token costs."""

    serving: Serving
    replicas: int
    replica: Throughput
    output_tokens_per_s: float  # the whole site, while running
    usd_per_million_output_tokens: float


@dataclass(frozen=True, slots=True)
class SitePlan:
    site: Site
    gpu: Gpu
    gpus: int
    servers: int
    power_mw: float  # delivered to the servers: IT power, or the satellites' compute load
    availability: float  # share of the year the compute runs
    cost: YearlyCost
    tokens: Tokens | None
    fleet: SiteFleet | None = None  # terrestrial
    satellite: SatelliteSizing | None = None  # orbital: one satellite
    satellite_kg: float | None = None  # orbital: launched mass of one satellite
    launch_kg: float | None = None  # orbital: the whole site

    @property
    def lifetime_years(self) -> float:
        site = self.site
        return (
            site.lifetime_years if isinstance(site, TerrestrialSite) else site.design.lifetime_years
        )

    def as_json(self) -> dict[str, Any]:
        site = self.site
        out: dict[str, Any] = {
            "site": site.name,
            "kind": site.kind,
            "source": site.source,
            "gpu": self.gpu.name,
            "gpus": self.gpus,
            "servers": self.servers,
            "power_mw": self.power_mw,
            "availability": self.availability,
        }
        if self.fleet is not None:
            assert isinstance(site, TerrestrialSite)
            out["terrestrial"] = {
                "it_mw": self.fleet.it_mw,
                "facility_mw": self.fleet.facility_mw,
                "pue": self.fleet.pue,
                "facility_watts_per_gpu": self.fleet.facility_watts_per_gpu,
                "utilisation": site.servers.utilisation,
            }
        if self.satellite is not None:
            assert isinstance(site, OrbitalSite)
            out["orbital"] = _orbital_json(site, self.satellite, self)
        out["cost"] = {
            "lifetime_years": self.lifetime_years,
            "build_usd_per_year": self.cost.build_usd,
            "energy_usd_per_year": self.cost.energy_usd,
            "launch_usd_per_year": self.cost.launch_usd,
            "gpus_usd_per_year": self.cost.gpus_usd,
            "usd_per_mw_year": self.cost.usd_per_mw_year,
            "usd_per_kw_year": self.cost.usd_per_kw_year,
            "gpus_included": site.gpu_usd > 0,
        }
        if self.tokens is not None:
            t = self.tokens
            out["tokens"] = {
                "model": t.serving.model,
                "precision": t.serving.precision,
                "gpus_per_replica": t.serving.gpus_per_replica,
                "input_tokens": t.serving.input_tokens,
                "output_tokens": t.serving.output_tokens,
                "tpot_target_s": t.serving.tpot_target_s,
                "replicas": t.replicas,
                "replica_output_tokens_per_s": t.replica.output_tokens_per_s,
                "batch": t.replica.batch,
                "tpot_s": t.replica.tpot_s,
                "ttft_s": t.replica.ttft_s,
                "output_tokens_per_s": t.output_tokens_per_s,
                "usd_per_million_output_tokens": t.usd_per_million_output_tokens,
            }
        return out


def plan_site(
    site: Site, serving: Serving | None = DEFAULT_SERVING, extra: Path | None = None
) -> SitePlan:
    """Work `site` through; price tokens on `serving` (None: leave tokens out)."""
    gpu = gpu_named(site.gpu, extra)
    plan = _terrestrial(site, gpu) if isinstance(site, TerrestrialSite) else _orbital(site, gpu)
    if serving is None:
        return plan
    return replace(plan, tokens=_tokens(plan, serving, extra))


def _terrestrial(site: TerrestrialSite, gpu: Gpu) -> SitePlan:
    fleet = terrestrial_fleet(
        site.servers.power(gpu), pue=site.pue, meter_mw=site.meter_mw, it_mw=site.it_mw
    )
    cost = terrestrial_yearly_cost(
        it_mw=fleet.it_mw,
        pue=site.pue,
        capex_usd_per_mw=site.capex_usd_per_mw,
        electricity_usd_per_kwh=site.electricity_usd_per_kwh,
        lifetime_years=site.lifetime_years,
        gpus=fleet.gpus,
        gpu_usd=site.gpu_usd,
        gpu_lifetime_years=site.gpu_lifetime_years,
    )
    return SitePlan(
        site=site,
        gpu=gpu,
        gpus=fleet.gpus,
        servers=fleet.servers,
        power_mw=fleet.it_mw,
        availability=1.0,
        cost=cost,
        tokens=None,
        fleet=fleet,
    )


def _orbital(site: OrbitalSite, gpu: Gpu) -> SitePlan:
    per_satellite = gpus_per_satellite(site, gpu)
    sizing = size_satellite(site.design)
    satellite_kg = site.satellite_kg if site.satellite_kg is not None else sizing.total_kg
    launch_kg = satellite_kg * site.satellites
    power_mw = site.design.compute_watts * site.satellites / 1e6
    gpus = per_satellite * site.satellites
    cost = orbital_yearly_cost(
        compute_mw=power_mw,
        launch_kg=launch_kg,
        launch_usd_per_kg=site.launch_usd_per_kg,
        lifetime_years=site.design.lifetime_years,
        capex_usd_per_mw=site.capex_usd_per_mw,
        gpus=gpus,
        gpu_usd=site.gpu_usd,
    )
    return SitePlan(
        site=site,
        gpu=gpu,
        gpus=gpus,
        servers=gpus // site.servers.gpus_per_server,
        power_mw=power_mw,
        availability=sizing.availability,
        cost=cost,
        tokens=None,
        satellite=sizing,
        satellite_kg=satellite_kg,
        launch_kg=launch_kg,
    )


def _tokens(plan: SitePlan, serving: Serving, extra: Path | None) -> Tokens:
    arch = model_named(serving.model, extra)
    replica = Replica(arch, plan.gpu, serving.gpus_per_replica, serving.precision)
    replicas = plan.gpus // serving.gpus_per_replica
    if replicas == 0:
        raise PlanError(
            f"site {plan.site.name!r} has {plan.gpus} GPUs, fewer than one replica of "
            f"{serving.gpus_per_replica}; choose fewer GPUs per replica"
        )
    throughput = workload_throughput(
        replica, serving.input_tokens, serving.output_tokens, serving.tpot_target_s
    )
    site_tokens_per_s = replicas * throughput.output_tokens_per_s
    return Tokens(
        serving=serving,
        replicas=replicas,
        replica=throughput,
        output_tokens_per_s=site_tokens_per_s,
        usd_per_million_output_tokens=usd_per_million_tokens(
            plan.cost, site_tokens_per_s, plan.availability
        ),
    )


def _orbital_json(site: OrbitalSite, sizing: SatelliteSizing, plan: SitePlan) -> dict[str, Any]:
    design, sun = site.design, sizing.sunlight
    return {
        "orbit": design.orbit.kind,
        "altitude_km": design.orbit.altitude_km,
        "inclination_deg": math.degrees(design.orbit.inclination_rad),
        "satellites": site.satellites,
        "compute_kw_per_satellite": design.compute_watts / 1e3,
        "gpus_per_satellite": plan.gpus // site.satellites,
        "eclipse": design.eclipse,
        "period_s": sun.period_s,
        "mean_sunlit_fraction": sun.mean_sunlit_fraction,
        "worst_sunlit_fraction": sun.worst_sunlit_fraction,
        "longest_eclipse_s": sun.longest_eclipse_s,
        "min_beta_deg": sun.min_beta_deg,
        "array_kw_per_satellite": sizing.array_watts / 1e3,
        "array_m2_per_satellite": sizing.array_m2,
        "array_kg_per_satellite": sizing.array_kg,
        "battery_kwh_per_satellite": sizing.battery_wh / 1e3,
        "battery_kg_per_satellite": sizing.battery_kg,
        "radiator_emitted_w_per_m2": design.radiator.emitted_w_per_m2,
        "radiator_absorbed_w_per_m2": design.radiator.absorbed_w_per_m2,
        "radiator_net_w_per_m2": design.radiator.net_w_per_m2,
        "radiator_m2_per_satellite": sizing.radiator_m2,
        "radiator_kg_per_satellite": sizing.radiator_kg,
        "compute_kg_per_satellite": sizing.compute_kg,
        "structure_kg_per_satellite": sizing.structure_kg,
        "budget_kg_per_satellite": sizing.total_kg,
        "satellite_kg": plan.satellite_kg,
        "mass_given": site.satellite_kg is not None,
        "launch_kg": plan.launch_kg,
        "launch_usd_per_kg": site.launch_usd_per_kg,
        "launch_usd": (plan.launch_kg or 0) * site.launch_usd_per_kg,
        "watts_per_kg": design.compute_watts / (plan.satellite_kg or 1),
    }
