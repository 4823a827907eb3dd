"""Cost per kW-year, MW-year and million tokens: the published launch figures and by hand."""

from __future__ import annotations

import pytest

from gigawatt.capacity.cost import (
    HOURS_PER_YEAR,
    SECONDS_PER_YEAR,
    YearlyCost,
    launched_power_usd_per_kw_year,
    orbital_yearly_cost,
    terrestrial_yearly_cost,
    usd_per_million_tokens,
)
from gigawatt.errors import PlanError

# Starlink v2 mini: about 575 kg for 28 kW; costed over a 5-year life (Suncatcher, Table 1).
STARLINK_V2_MINI_KG = 575
STARLINK_V2_MINI_KW = 28


def test_starlink_v2_mini_launched_power_at_3600_per_kg() -> None:
    # 575 kg x $3,600/kg = $2,070,000 over 28 kW x 5 years = 140 kW-years: $14,786 per kW-year.
    # Published: about $14,700.
    cost = launched_power_usd_per_kw_year(STARLINK_V2_MINI_KG, STARLINK_V2_MINI_KW, 3600, 5)
    assert cost == pytest.approx(14_785.71, abs=0.01)
    assert cost == pytest.approx(14_700, rel=0.01)


def test_starlink_v2_mini_launched_power_at_200_per_kg() -> None:
    # 575 x 200 = $115,000 / 140 kW-years = $821 per kW-year. Published: about $810.
    cost = launched_power_usd_per_kw_year(STARLINK_V2_MINI_KG, STARLINK_V2_MINI_KW, 200, 5)
    assert cost == pytest.approx(821.43, abs=0.01)
    assert cost == pytest.approx(810, rel=0.02)


def test_the_same_through_the_orbital_yearly_cost() -> None:
    cost = orbital_yearly_cost(
        compute_mw=STARLINK_V2_MINI_KW / 1000,
        launch_kg=STARLINK_V2_MINI_KG,
        launch_usd_per_kg=3600,
        lifetime_years=5,
    )
    # $2,070,000 / 5 years = $414,000 a year, for 0.028 MW.
    assert cost.launch_usd == pytest.approx(414_000)
    assert (cost.build_usd, cost.energy_usd, cost.gpus_usd) == (0, 0, 0)
    assert cost.usd_per_kw_year == pytest.approx(14_785.71, abs=0.01)
    assert cost.usd_per_mw_year == pytest.approx(14_785_714, abs=1)


def test_terrestrial_cost_per_mw_year() -> None:
    # 1 MW of IT power built at $11.7M over 15 years: $780,000 a year.
    # Electricity: 1,000 kW x PUE 1.3 x 8,766 h x $0.08/kWh = $911,664 a year.
    cost = terrestrial_yearly_cost(
        it_mw=1, pue=1.3, capex_usd_per_mw=11.7e6, electricity_usd_per_kwh=0.08, lifetime_years=15
    )
    assert HOURS_PER_YEAR == 8766
    assert cost.build_usd == pytest.approx(780_000)
    assert cost.energy_usd == pytest.approx(911_664)
    assert cost.usd_per_mw_year == pytest.approx(1_691_664)
    # The power bill alone per kW-year: 0.08 x 1.3 x 8,766 = $912, inside the $570-3,000 range.
    assert 570 <= cost.energy_usd / 1000 <= 3000


def test_gpus_are_spread_over_their_own_life() -> None:
    # 1,000 GPUs at $30,000 over 5 years: $6M a year, left out of the per-MW-year site cost.
    cost = terrestrial_yearly_cost(
        it_mw=1,
        pue=1.2,
        capex_usd_per_mw=10e6,
        electricity_usd_per_kwh=0.05,
        lifetime_years=20,
        gpus=1000,
        gpu_usd=30_000,
        gpu_lifetime_years=5,
    )
    assert cost.gpus_usd == pytest.approx(6e6)
    assert cost.total_usd == pytest.approx(cost.site_usd + 6e6)
    # 500,000 + 1,000 x 1.2 x 8,766 x 0.05 = 500,000 + 525,960
    assert cost.usd_per_mw_year == pytest.approx(1_025_960)


def test_cost_per_million_tokens() -> None:
    # $1,000,000 a year over 1,000 tokens/s x 31,557,600 s = 3.15576e10 tokens: $31.69 per million.
    cost = YearlyCost(power_mw=1, build_usd=1e6, energy_usd=0, launch_usd=0, gpus_usd=0)
    assert SECONDS_PER_YEAR == 31_557_600
    assert usd_per_million_tokens(cost, 1000) == pytest.approx(31.688, abs=0.001)
    # Running half the year doubles it.
    assert usd_per_million_tokens(cost, 1000, availability=0.5) == pytest.approx(63.376, abs=0.001)


@pytest.mark.parametrize(
    "call",
    [
        lambda: launched_power_usd_per_kw_year(0, 28, 3600, 5),
        lambda: launched_power_usd_per_kw_year(575, 0, 3600, 5),
        lambda: launched_power_usd_per_kw_year(575, 28, -1, 5),
        lambda: launched_power_usd_per_kw_year(575, 28, 3600, 0),
        lambda: terrestrial_yearly_cost(
            it_mw=0, pue=1.3, capex_usd_per_mw=1, electricity_usd_per_kwh=0.1, lifetime_years=10
        ),
        lambda: terrestrial_yearly_cost(
            it_mw=1, pue=0.8, capex_usd_per_mw=1, electricity_usd_per_kwh=0.1, lifetime_years=10
        ),
        lambda: terrestrial_yearly_cost(
            it_mw=1, pue=1.3, capex_usd_per_mw=1, electricity_usd_per_kwh=-0.1, lifetime_years=10
        ),
        lambda: usd_per_million_tokens(
            YearlyCost(power_mw=1, build_usd=1, energy_usd=0, launch_usd=0, gpus_usd=0), 0
        ),
    ],
)
def test_impossible_costs(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PlanError):
        call()
