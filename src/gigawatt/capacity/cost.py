"""What a site's power costs per year, per MW of compute power and per million output tokens.

Both kinds are costed per MW of power delivered to the servers (IT power on Earth, the compute
load in orbit), over the site's life, leaving the GPUs out unless their price is given:

- terrestrial: capex $/MW of IT power / lifetime + electricity $/kWh x IT power x PUE x 8,766 h;
  for 1 MW at $11.7M/MW over 15 years, $0.08/kWh and PUE 1.3:
  780,000 + 0.08 x 1,000 kW x 1.3 x 8,766 h = 780,000 + 911,664 = $1,691,664 per MW-year.
- orbital: (launch mass x $/kg + capex $/MW x MW) / lifetime. A Starlink v2 mini-class
  satellite (575 kg, 28 kW, 5 years) at $3,600/kg: 575 x 3,600 / (28 x 5) = $14,786 per kW-year.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gigawatt.errors import PlanError

HOURS_PER_YEAR = 365.25 * 24
SECONDS_PER_YEAR = HOURS_PER_YEAR * 3600


@dataclass(frozen=True, slots=True)
class YearlyCost:
    """One year of a site's life, in dollars, by where the money goes."""

    power_mw: float  # power delivered to the servers
    build_usd: float  # capex spread over the site's life
    energy_usd: float
    launch_usd: float  # launch spread over the satellites' life
    gpus_usd: float  # GPU purchases spread over their life; 0 when no price was given

    @property
    def site_usd(self) -> float:
        """Everything but the GPUs: what the power itself costs."""
        return self.build_usd + self.energy_usd + self.launch_usd

    @property
    def total_usd(self) -> float:
        return self.site_usd + self.gpus_usd

    @property
    def usd_per_mw_year(self) -> float:
        return self.site_usd / self.power_mw

    @property
    def usd_per_kw_year(self) -> float:
        return self.usd_per_mw_year / 1000


def launched_power_usd_per_kw_year(
    mass_kg: float, power_kw: float, launch_usd_per_kg: float, lifetime_years: float
) -> float:
    """Launch cost of a spacecraft per kW of its power per year of its life."""
    _positive("mass_kg", mass_kg)
    _positive("power_kw", power_kw)
    _non_negative("launch_usd_per_kg", launch_usd_per_kg)
    _positive("lifetime_years", lifetime_years)
    return mass_kg * launch_usd_per_kg / (power_kw * lifetime_years)


def terrestrial_yearly_cost(
    *,
    it_mw: float,
    pue: float,
    capex_usd_per_mw: float,
    electricity_usd_per_kwh: float,
    lifetime_years: float,
    gpus: int = 0,
    gpu_usd: float = 0.0,
    gpu_lifetime_years: float = 5.0,
) -> YearlyCost:
    """A terrestrial site running at its provisioned power all year."""
    _positive("it_mw", it_mw)
    if not pue >= 1:
        raise PlanError(f"PUE must be at least 1, got {pue:g}")
    _non_negative("capex_usd_per_mw", capex_usd_per_mw)
    _non_negative("electricity_usd_per_kwh", electricity_usd_per_kwh)
    _positive("lifetime_years", lifetime_years)
    facility_kw = it_mw * 1000 * pue
    return YearlyCost(
        power_mw=it_mw,
        build_usd=capex_usd_per_mw * it_mw / lifetime_years,
        energy_usd=electricity_usd_per_kwh * facility_kw * HOURS_PER_YEAR,
        launch_usd=0.0,
        gpus_usd=_gpus_per_year(gpus, gpu_usd, gpu_lifetime_years),
    )


def orbital_yearly_cost(
    *,
    compute_mw: float,
    launch_kg: float,
    launch_usd_per_kg: float,
    lifetime_years: float,
    capex_usd_per_mw: float = 0.0,
    gpus: int = 0,
    gpu_usd: float = 0.0,
) -> YearlyCost:
    """An orbital site: launch (and build, when given) over the satellites' life; no power bill.

    The GPUs fly with the satellites, so they last as long as the satellites do.
    """
    _positive("compute_mw", compute_mw)
    _positive("launch_kg", launch_kg)
    _non_negative("launch_usd_per_kg", launch_usd_per_kg)
    _positive("lifetime_years", lifetime_years)
    _non_negative("capex_usd_per_mw", capex_usd_per_mw)
    return YearlyCost(
        power_mw=compute_mw,
        build_usd=capex_usd_per_mw * compute_mw / lifetime_years,
        energy_usd=0.0,
        launch_usd=launch_kg * launch_usd_per_kg / lifetime_years,
        gpus_usd=_gpus_per_year(gpus, gpu_usd, lifetime_years),
    )


def usd_per_million_tokens(
    cost: YearlyCost, output_tokens_per_s: float, availability: float = 1.0
) -> float:
    """Yearly cost / output tokens a year, serving at `output_tokens_per_s` for `availability`."""
    if not output_tokens_per_s > 0:
        raise PlanError("the fleet produces no tokens, so a token has no finite cost")
    if not 0 < availability <= 1:
        raise PlanError(f"availability must be in (0, 1], got {availability:g}")
    tokens_per_year = output_tokens_per_s * SECONDS_PER_YEAR * availability
    return cost.total_usd / tokens_per_year * 1e6


def _gpus_per_year(gpus: int, gpu_usd: float, lifetime_years: float) -> float:
    if gpus < 0:
        raise PlanError(f"GPU count must be 0 or more, got {gpus}")
    _non_negative("gpu_usd", gpu_usd)
    _positive("gpu_lifetime_years", lifetime_years)
    return gpus * gpu_usd / lifetime_years


def _positive(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise PlanError(f"{name} must be above 0, got {value:g}")


def _non_negative(name: str, value: float) -> None:
    if not (value >= 0 and math.isfinite(value)):
        raise PlanError(f"{name} must be 0 or more, got {value:g}")
