"""Orbital arithmetic: sunlight from the orbit geometry, radiators, and one satellite's mass."""

from __future__ import annotations

import math

import pytest

from gigawatt.capacity.orbit import (
    Battery,
    Orbit,
    Radiator,
    SatelliteDesign,
    SolarArray,
    earth_angular_radius_rad,
    eclipse_fraction,
    orbital_period_s,
    plate_earth_view_factor,
    size_satellite,
    sun_synchronous_inclination_rad,
)
from gigawatt.errors import PlanError

OBLIQUITY_DEG = 23.439


def test_earth_angular_radius() -> None:
    # asin(6,378.137 / 7,028.137) = asin(0.907515) = 65.164 deg
    assert math.degrees(earth_angular_radius_rad(650)) == pytest.approx(65.164, abs=0.001)


def test_eclipse_fraction_with_the_sun_in_the_orbit_plane() -> None:
    # sqrt(650^2 + 2 x 6,378.137 x 650) = sqrt(8,714,078) = 2,951.96; / 7,028.137 = 0.420022;
    # acos(0.420021) = 1.137328 rad; / pi = 0.36202 of the orbit in shadow.
    assert eclipse_fraction(650, 0.0) == pytest.approx(0.36202, abs=1e-5)


def test_no_eclipse_once_beta_passes_the_earths_angular_radius() -> None:
    assert eclipse_fraction(650, math.radians(65.0)) > 0
    assert eclipse_fraction(650, math.radians(65.3)) == 0
    assert eclipse_fraction(650, math.radians(-70)) == 0


def test_period() -> None:
    # 2 pi sqrt(7,028.137^3 / 398,600.4418) = 2 pi x 933.23 = 5,863.7 s (97.7 min)
    assert orbital_period_s(650) == pytest.approx(5863.7, abs=0.1)


def test_sun_synchronous_inclination() -> None:
    # omega_sun = 2 pi / (365.2422 x 86,400 s) = 1.991064e-7 rad/s; 7,028.137^3.5 = 2.910320e13
    # cos i = -2 x 1.991064e-7 x 2.910320e13 / (3 x 1.08263e-3 x 6,378.137^2 x sqrt(398,600.4418))
    #       = -1.158927e7 / 8.341764e7 = -0.138931 -> i = 97.986 deg
    assert math.degrees(sun_synchronous_inclination_rad(650)) == pytest.approx(97.986, abs=0.001)


def test_dawn_dusk_orbit_sees_the_sun_nearly_all_year() -> None:
    sun = Orbit(650, "dawn-dusk").sunlight()
    # Closest approach of the Sun to the orbit plane, at the June solstice:
    # beta = 180 - i - obliquity = 180 - 97.986 - 23.439 = 58.575 deg.
    assert sun.min_beta_deg == pytest.approx(180 - 97.986 - OBLIQUITY_DEG, abs=0.01)
    # Worst orbit: cos(58.575 deg) = 0.521382; 0.420021 / 0.521382 = 0.805591;
    # acos(0.805591) / pi = 0.20185 in shadow, 19.7 minutes of each 97.7.
    assert sun.worst_sunlit_fraction == pytest.approx(1 - 0.20185, abs=2e-4)
    assert sun.longest_eclipse_s == pytest.approx(0.20185 * 5863.7, rel=1e-3)
    # Eclipses only around the June solstice: the year is more than 95% sunlit.
    assert 0.95 < sun.mean_sunlit_fraction < 0.99


def test_ordinary_low_orbit_spends_about_a_third_in_shadow() -> None:
    sun = Orbit(650, "leo", inclination_deg=53).sunlight()
    assert sun.min_beta_deg == pytest.approx(0, abs=1)
    assert sun.worst_sunlit_fraction == pytest.approx(1 - 0.36202, abs=1e-5)
    assert 0.66 < sun.mean_sunlit_fraction < 0.74
    dawn_dusk = Orbit(650, "dawn-dusk").sunlight()
    assert dawn_dusk.mean_sunlit_fraction > sun.mean_sunlit_fraction + 0.2


def test_an_equatorial_orbit_never_sees_the_sun_from_far_off_its_plane() -> None:
    # Inclination 0: the orbit normal is the pole, so |beta| = the Sun's declination <= 23.44 deg.
    sun = Orbit(650, "leo", inclination_deg=0).sunlight()
    assert sun.max_beta_deg == pytest.approx(OBLIQUITY_DEG, abs=0.05)


def test_starcloud_radiator() -> None:
    # Two faces at 20 C (293.15 K), emissivity 0.92:
    # 293.15^4 = 7.385155e9 K^4; x 5.670374e-8 = 418.77 W/m^2; x 0.92 = 385.26; x 2 faces = 770.5.
    # One face square to the Sun absorbing a tenth of it (absorptance 0.1): 0.1 x 1,361 = 136.1;
    # the Earth left out. Net 770.5 - 136.1 = 634.4. Published: 770 emitted, 633 net.
    radiator = Radiator(
        temperature_k=293.15, emissivity=0.92, solar_absorptance=0.1, kg_per_m2=0, sunlit_faces=1
    )
    assert radiator.emitted_w_per_m2 == pytest.approx(770.53, abs=0.01)
    assert radiator.emitted_w_per_m2 == pytest.approx(770, abs=1)
    assert radiator.absorbed_w_per_m2 == pytest.approx(136.1)
    assert radiator.net_w_per_m2 == pytest.approx(633, rel=0.005)
    # 1 MW of waste heat: 1e6 / 634.43 = 1,576 m^2 of panel.
    assert radiator.area_m2(1e6) == pytest.approx(1576.2, abs=0.1)


def test_earth_view_factor_of_a_plate_edge_on_to_the_earth() -> None:
    # H = 7,028.137 / 6,378.137 = 1.101911; x = sqrt(H^2 - 1) = 0.462825;
    # (atan(1 / x) - x / H^2) / pi = (1.137328 - 0.381175) / pi = 0.24069
    assert plate_earth_view_factor(650) == pytest.approx(0.24069, abs=1e-5)
    assert plate_earth_view_factor(1e-6) == pytest.approx(0.5, abs=1e-3)  # a wall on the ground


def test_earth_infrared_and_albedo_absorbed() -> None:
    # Two faces each seeing the Earth with F = 0.25: IR 2 x 0.25 x 0.9 x 239 = 107.55 W/m^2;
    # albedo at a Sun zenith cosine of 0.5: 2 x 0.25 x 0.2 x (0.3 x 1,361 x 0.5) = 20.415 W/m^2.
    radiator = Radiator(
        temperature_k=300,
        emissivity=0.9,
        solar_absorptance=0.2,
        kg_per_m2=0,
        earth_view_factor=0.25,
        albedo_cos=0.5,
    )
    assert radiator.absorbed_earth_ir_w_per_m2 == pytest.approx(107.55)
    assert radiator.absorbed_albedo_w_per_m2 == pytest.approx(20.415)
    assert radiator.absorbed_sun_w_per_m2 == 0


def test_a_radiator_too_cold_to_reject_heat() -> None:
    # 200 K black panel square to the Sun: emits 2 x 0.9 x 5.67e-8 x 200^4 = 163 W/m^2,
    # absorbs 0.9 x 1,361 = 1,225 W/m^2.
    radiator = Radiator(
        temperature_k=200, emissivity=0.9, solar_absorptance=0.9, kg_per_m2=5, sunlit_faces=1
    )
    with pytest.raises(PlanError, match="cannot reject heat"):
        radiator.area_m2(1000)


def _design(eclipse: str) -> SatelliteDesign:
    return SatelliteDesign(
        orbit=Orbit(650, "dawn-dusk"),
        compute_watts=100_000,
        array=SolarArray(cell_efficiency=0.3, degradation_per_year=0.02, watts_per_kg=100),
        radiator=Radiator(
            temperature_k=293.15, emissivity=0.92, solar_absorptance=0.1, kg_per_m2=5
        ),
        battery=Battery(wh_per_kg=200, depth_of_discharge=0.5, round_trip_efficiency=0.9),
        compute_kg_per_kw=10,
        structure_fraction=0.2,
        lifetime_years=5,
        eclipse=eclipse,  # type: ignore[arg-type]
    )


def test_satellite_that_idles_in_eclipse() -> None:
    sized = size_satellite(_design("idle"))
    # End-of-life efficiency 0.3 x 0.98^5 = 0.271176;
    # array 100,000 / (1,361 x 0.271176) = 270.95 m^2
    assert sized.array_m2 == pytest.approx(270.95, abs=0.01)
    # Beginning of life: 270.95 x 1,361 x 0.3 = 110,629 W / 100 W/kg = 1,106.29 kg
    assert sized.array_kg == pytest.approx(1106.29, abs=0.01)
    assert sized.battery_kg == 0
    # Radiator: 100,000 W / 770.53 W/m^2 = 129.78 m^2 x 5 kg/m^2 = 648.9 kg
    assert sized.radiator_m2 == pytest.approx(129.78, abs=0.01)
    assert sized.radiator_kg == pytest.approx(648.9, abs=0.1)
    assert sized.compute_kg == pytest.approx(1000)  # 100 kW x 10 kg/kW
    # Structure is 20% of the total: (1,106.29 + 648.9 + 1,000) x 0.2 / 0.8 = 688.8 kg
    assert sized.structure_kg == pytest.approx(688.8, abs=0.1)
    assert sized.total_kg == pytest.approx(3444.0, abs=0.2)
    assert sized.availability == sized.sunlight.mean_sunlit_fraction


def test_satellite_with_a_battery_for_the_eclipse() -> None:
    idle, battery = size_satellite(_design("idle")), size_satellite(_design("battery"))
    s, eclipse_s = battery.sunlight.worst_sunlit_fraction, battery.sunlight.longest_eclipse_s
    # The array carries the load and recharges for the worst eclipse: x (s + (1 - s) / 0.9) / s
    assert battery.array_watts == pytest.approx(100_000 * (s + (1 - s) / 0.9) / s)
    assert battery.array_m2 == pytest.approx(idle.array_m2 * battery.array_watts / 100_000)
    # Battery: 100 kW through the longest eclipse, at half depth of discharge, 200 Wh/kg.
    assert battery.battery_wh == pytest.approx(100_000 * eclipse_s / 3600 / 0.5)
    assert battery.battery_kg == pytest.approx(battery.battery_wh / 200)
    assert battery.availability == 1.0


@pytest.mark.parametrize(
    "make",
    [
        lambda: Orbit(150),
        lambda: Orbit(650, "leo"),
        lambda: Orbit(650, "dawn-dusk", inclination_deg=97),
        lambda: Orbit(650, "geo"),  # type: ignore[arg-type]
        lambda: Orbit(36_000),
        lambda: SolarArray(cell_efficiency=0, degradation_per_year=0.01, watts_per_kg=100),
        lambda: SolarArray(cell_efficiency=0.3, degradation_per_year=1, watts_per_kg=100),
        lambda: Radiator(temperature_k=0, emissivity=0.9, solar_absorptance=0.1, kg_per_m2=5),
        lambda: Radiator(temperature_k=300, emissivity=1.2, solar_absorptance=0.1, kg_per_m2=5),
        lambda: Battery(wh_per_kg=200, depth_of_discharge=0, round_trip_efficiency=0.9),
    ],
)
def test_impossible_orbital_inputs(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PlanError):
        make()


def test_orbit_below_160_km_says_why() -> None:
    with pytest.raises(PlanError, match="below 160 km"):
        Orbit(120)
