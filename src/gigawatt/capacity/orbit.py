"""Orbital sites: sunlight from the orbit, then the solar array, battery, radiator and mass.

Sunlight. A circular orbit at altitude h sees the Earth's disc with angular radius
rho = asin(R / (R + h)). The beta angle is the Sun's elevation above the orbit plane; with the
Earth's shadow taken as a cylinder, an orbit with |beta| < rho spends the fraction
acos(sqrt(h^2 + 2 R h) / ((R + h) cos beta)) / pi of each revolution in eclipse, and none when
|beta| >= rho. At 650 km and beta = 0 that is acos(2,951.96 / 7,028.14) / pi = 0.362: 35 minutes
of a 97.7-minute orbit. A dawn-dusk sun-synchronous orbit keeps its plane near the terminator
(inclination from the J2 precession that tracks the Sun, 98.0 deg at 650 km), so beta stays
above 58.6 deg at 650 km and eclipses, of up to 20 minutes, come only near the June solstice;
an ordinary low orbit drifts through every beta, 0 included. Yearly figures sample the Sun's
longitude over the year (and, for an ordinary orbit, every node position relative to the Sun).

Power and heat. The array is sized for end of life, in the worst orbit of the year: it must carry
the load through sunlight and recharge the battery for the eclipse (or, with `eclipse = "idle"`,
compute stops in eclipse). Every watt the compute draws leaves as heat through radiators that emit
epsilon sigma T^4 from each face and absorb sunlight on their sunlit faces, the Earth's infrared
and its reflected sunlight; see `Radiator`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from gigawatt.errors import PlanError

SOLAR_CONSTANT_W_PER_M2 = 1361.0
STEFAN_BOLTZMANN_W_PER_M2_K4 = 5.670374419e-8
EARTH_RADIUS_KM = 6378.137  # equatorial (WGS-84)
EARTH_MU_KM3_PER_S2 = 398_600.4418
EARTH_J2 = 1.08263e-3
OBLIQUITY_RAD = math.radians(23.439)
TROPICAL_YEAR_S = 365.2422 * 86_400
# Earth's mean outgoing longwave radiation at the top of the atmosphere (CERES, about 240 W/m^2).
EARTH_IR_W_PER_M2 = 239.0
EARTH_ALBEDO = 0.30
MIN_ALTITUDE_KM = 160.0  # below this drag brings a satellite down within days
ZERO_CELSIUS_K = 273.15

OrbitKind = Literal["dawn-dusk", "leo"]
EclipsePower = Literal["battery", "idle"]

_DAYS = 365
_NODES = 72  # node positions relative to the Sun sampled for an ordinary orbit (every 5 deg)


def earth_angular_radius_rad(altitude_km: float) -> float:
    """Angular radius of the Earth's disc seen from `altitude_km`."""
    return math.asin(EARTH_RADIUS_KM / (EARTH_RADIUS_KM + altitude_km))


def orbital_period_s(altitude_km: float) -> float:
    """Period of a circular orbit: 2 pi sqrt(a^3 / mu); 5,863.6 s at 650 km."""
    a = EARTH_RADIUS_KM + altitude_km
    return 2 * math.pi * math.sqrt(a**3 / EARTH_MU_KM3_PER_S2)


def eclipse_fraction(altitude_km: float, beta_rad: float) -> float:
    """Share of one revolution in the Earth's (cylindrical) shadow at Sun elevation `beta_rad`."""
    return float(_eclipse_fraction(altitude_km, np.asarray(beta_rad)))


def _eclipse_fraction(altitude_km: float, beta_rad: np.ndarray) -> np.ndarray:
    r = EARTH_RADIUS_KM
    h = altitude_km
    shadowed = np.abs(beta_rad) < earth_angular_radius_rad(h)
    cos_beta = np.cos(np.where(shadowed, beta_rad, 0.0))
    ratio = math.sqrt(h * h + 2 * r * h) / ((r + h) * cos_beta)
    return np.where(shadowed, np.arccos(np.clip(ratio, -1.0, 1.0)) / math.pi, 0.0)


def sun_synchronous_inclination_rad(altitude_km: float) -> float:
    """Inclination at which J2 turns the orbit's node once a year, in step with the Sun.

    cos i = -2 omega_sun a^(7/2) / (3 J2 R^2 sqrt(mu)); 98.0 deg at 650 km.
    """
    a = EARTH_RADIUS_KM + altitude_km
    omega_sun = 2 * math.pi / TROPICAL_YEAR_S
    j2_rate = 3 * EARTH_J2 * EARTH_RADIUS_KM**2 * math.sqrt(EARTH_MU_KM3_PER_S2)
    cos_i = -2 * omega_sun * a**3.5 / j2_rate
    if cos_i < -1:
        raise PlanError(f"no sun-synchronous orbit exists at {altitude_km:g} km (above ~5,900 km)")
    return math.acos(cos_i)


def beta_angle_rad(
    sun_longitude_rad: np.ndarray, node_rad: np.ndarray, inclination_rad: float
) -> np.ndarray:
    """Sun elevation above the orbit plane: asin(sun . orbit normal), both in equatorial axes."""
    sun = (
        np.cos(sun_longitude_rad),
        math.cos(OBLIQUITY_RAD) * np.sin(sun_longitude_rad),
        math.sin(OBLIQUITY_RAD) * np.sin(sun_longitude_rad),
    )
    normal = (
        np.sin(node_rad) * math.sin(inclination_rad),
        -np.cos(node_rad) * math.sin(inclination_rad),
        math.cos(inclination_rad),
    )
    return np.arcsin(np.clip(sum(s * n for s, n in zip(sun, normal, strict=True)), -1.0, 1.0))


@dataclass(frozen=True, slots=True)
class Sunlight:
    """The year's sunlight on one orbit."""

    mean_sunlit_fraction: float
    worst_sunlit_fraction: float  # the darkest orbit of the year
    longest_eclipse_s: float
    min_beta_deg: float  # closest the Sun comes to the orbit plane
    max_beta_deg: float
    period_s: float


@dataclass(frozen=True, slots=True)
class Orbit:
    """A circular orbit: dawn-dusk sun-synchronous, or an ordinary low orbit at an inclination."""

    altitude_km: float
    kind: OrbitKind = "dawn-dusk"
    inclination_deg: float | None = None  # ordinary orbits only; dawn-dusk derives its own

    def __post_init__(self) -> None:
        if not self.altitude_km >= MIN_ALTITUDE_KM:
            raise PlanError(
                f"orbit altitude {self.altitude_km:g} km is below {MIN_ALTITUDE_KM:g} km, where "
                "drag brings a satellite down within days; low orbits for power start near 500 km"
            )
        if self.altitude_km > 2000:
            raise PlanError(
                f"orbit altitude {self.altitude_km:g} km is above low Earth orbit (2,000 km), "
                "which this model covers"
            )
        if self.kind == "dawn-dusk":
            if self.inclination_deg is not None:
                raise PlanError("a dawn-dusk orbit's inclination follows from its altitude")
        elif self.kind == "leo":
            if self.inclination_deg is None or not 0 <= self.inclination_deg <= 180:
                raise PlanError("an ordinary low orbit needs an inclination between 0 and 180 deg")
        else:
            raise PlanError(f"orbit kind must be 'dawn-dusk' or 'leo', got {self.kind!r}")

    @property
    def inclination_rad(self) -> float:
        if self.kind == "dawn-dusk":
            return sun_synchronous_inclination_rad(self.altitude_km)
        assert self.inclination_deg is not None
        return math.radians(self.inclination_deg)

    def betas_rad(self) -> np.ndarray:
        """Beta angles sampled over a year (rows: days; columns: node positions)."""
        sun_longitude = 2 * math.pi * np.arange(_DAYS) / _DAYS
        if self.kind == "dawn-dusk":
            # The node stays 90 deg east of the Sun's right ascension (18:00 ascending node).
            sun_ra = np.arctan2(
                math.cos(OBLIQUITY_RAD) * np.sin(sun_longitude), np.cos(sun_longitude)
            )
            node = (sun_ra + math.pi / 2)[:, None]
        else:
            # An ordinary orbit's node drifts against the Sun: every offset is equally likely.
            node = sun_longitude[:, None] + 2 * math.pi * np.arange(_NODES)[None, :] / _NODES
        return beta_angle_rad(sun_longitude[:, None], node, self.inclination_rad)

    def sunlight(self) -> Sunlight:
        betas = self.betas_rad()
        eclipse = _eclipse_fraction(self.altitude_km, betas)
        period_s = orbital_period_s(self.altitude_km)
        return Sunlight(
            mean_sunlit_fraction=float(1 - eclipse.mean()),
            worst_sunlit_fraction=float(1 - eclipse.max()),
            longest_eclipse_s=float(eclipse.max() * period_s),
            min_beta_deg=math.degrees(float(np.abs(betas).min())),
            max_beta_deg=math.degrees(float(np.abs(betas).max())),
            period_s=period_s,
        )


def plate_earth_view_factor(altitude_km: float) -> float:
    """View factor from one face of a plate edge-on to the Earth (its plane holds the nadir).

    F = (atan(1 / x) - x / H^2) / pi with H = (R + h) / R and x = sqrt(H^2 - 1): 0.5 on the
    ground, 0.241 at 650 km. A plate whose plane also holds the Sun line sees no direct sunlight,
    which a dawn-dusk orbit allows year-round.
    """
    big_h = (EARTH_RADIUS_KM + altitude_km) / EARTH_RADIUS_KM
    x = math.sqrt(big_h * big_h - 1)
    return (math.atan(1 / x) - x / (big_h * big_h)) / math.pi


@dataclass(frozen=True, slots=True)
class Radiator:
    """A flat radiator panel and what one square metre of it rejects."""

    temperature_k: float
    emissivity: float
    solar_absorptance: float
    kg_per_m2: float
    faces: int = 2
    sunlit_faces: int = 0  # faces square to the Sun
    earth_view_factor: float = 0.0  # per face
    albedo_cos: float = 0.0  # cosine of the Sun's zenith angle below the satellite, worst case

    def __post_init__(self) -> None:
        if not self.temperature_k > 0:
            raise PlanError(f"radiator temperature must be above 0 K, got {self.temperature_k:g} K")
        for name in ("emissivity", "solar_absorptance", "earth_view_factor", "albedo_cos"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise PlanError(f"radiator {name} must be between 0 and 1, got {value:g}")
        if self.emissivity == 0:
            raise PlanError("a radiator with emissivity 0 rejects no heat")
        if self.faces not in (1, 2) or not 0 <= self.sunlit_faces <= self.faces:
            raise PlanError("a radiator has 1 or 2 faces, and at most that many sunlit")
        if not self.kg_per_m2 >= 0:
            raise PlanError(f"radiator kg_per_m2 must be 0 or more, got {self.kg_per_m2:g}")

    @property
    def emitted_w_per_m2(self) -> float:
        """faces x emissivity x sigma x T^4."""
        per_face = self.emissivity * STEFAN_BOLTZMANN_W_PER_M2_K4 * self.temperature_k**4
        return self.faces * per_face

    @property
    def absorbed_sun_w_per_m2(self) -> float:
        return self.sunlit_faces * self.solar_absorptance * SOLAR_CONSTANT_W_PER_M2

    @property
    def absorbed_earth_ir_w_per_m2(self) -> float:
        # Infrared absorptance equals emissivity at the same wavelengths (Kirchhoff).
        return self.faces * self.earth_view_factor * self.emissivity * EARTH_IR_W_PER_M2

    @property
    def absorbed_albedo_w_per_m2(self) -> float:
        albedo = EARTH_ALBEDO * SOLAR_CONSTANT_W_PER_M2 * self.albedo_cos
        return self.faces * self.earth_view_factor * self.solar_absorptance * albedo

    @property
    def absorbed_w_per_m2(self) -> float:
        return (
            self.absorbed_sun_w_per_m2
            + self.absorbed_earth_ir_w_per_m2
            + self.absorbed_albedo_w_per_m2
        )

    @property
    def net_w_per_m2(self) -> float:
        return self.emitted_w_per_m2 - self.absorbed_w_per_m2

    def area_m2(self, heat_watts: float) -> float:
        net = self.net_w_per_m2
        if net <= 0:
            raise PlanError(
                f"a radiator at {self.temperature_k - ZERO_CELSIUS_K:.0f} C absorbs "
                f"{self.absorbed_w_per_m2:.0f} W/m^2 and emits only {self.emitted_w_per_m2:.0f}: "
                "it cannot reject heat; run it hotter, or shade it from the Sun and the Earth"
            )
        return heat_watts / net


@dataclass(frozen=True, slots=True)
class SolarArray:
    cell_efficiency: float  # at the array level, beginning of life
    degradation_per_year: float  # fractional loss of output each year
    watts_per_kg: float  # beginning-of-life output per kg of array

    def __post_init__(self) -> None:
        if not 0 < self.cell_efficiency < 1:
            raise PlanError(f"cell efficiency must be in (0, 1), got {self.cell_efficiency:g}")
        if not 0 <= self.degradation_per_year < 1:
            raise PlanError(
                f"yearly degradation must be in [0, 1), got {self.degradation_per_year:g}"
            )
        if not self.watts_per_kg > 0:
            raise PlanError(f"array watts_per_kg must be above 0, got {self.watts_per_kg:g}")

    def end_of_life_efficiency(self, years: float) -> float:
        return self.cell_efficiency * (1 - self.degradation_per_year) ** years


@dataclass(frozen=True, slots=True)
class Battery:
    wh_per_kg: float
    depth_of_discharge: float  # usable share of capacity, kept low for many cycles
    round_trip_efficiency: float

    def __post_init__(self) -> None:
        if not self.wh_per_kg > 0:
            raise PlanError(f"battery wh_per_kg must be above 0, got {self.wh_per_kg:g}")
        for name in ("depth_of_discharge", "round_trip_efficiency"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise PlanError(f"battery {name} must be in (0, 1], got {value:g}")


@dataclass(frozen=True, slots=True)
class SatelliteDesign:
    """One satellite of an orbital site; the site is `satellites` of them."""

    orbit: Orbit
    compute_watts: float  # continuous electric load of the servers
    array: SolarArray
    radiator: Radiator
    battery: Battery
    compute_kg_per_kw: float
    structure_fraction: float  # bus, structure, propulsion: share of the satellite's dry mass
    lifetime_years: float
    eclipse: EclipsePower = "battery"

    def __post_init__(self) -> None:
        if not self.compute_watts > 0:
            raise PlanError(
                f"a satellite's compute power must be above 0, got {self.compute_watts:g} W"
            )
        if not self.compute_kg_per_kw >= 0:
            raise PlanError(f"compute_kg_per_kw must be 0 or more, got {self.compute_kg_per_kw:g}")
        if not 0 <= self.structure_fraction < 1:
            raise PlanError(
                f"structure_fraction must be in [0, 1), got {self.structure_fraction:g}"
            )
        if not self.lifetime_years > 0:
            raise PlanError(f"lifetime must be above 0 years, got {self.lifetime_years:g}")
        if self.eclipse not in ("battery", "idle"):
            raise PlanError(f"eclipse must be 'battery' or 'idle', got {self.eclipse!r}")


@dataclass(frozen=True, slots=True)
class SatelliteSizing:
    """Areas and masses of one satellite, and the share of the year its compute runs."""

    sunlight: Sunlight
    availability: float  # share of the year the compute runs (1 with a battery)
    array_watts: float  # end-of-life output in sunlight
    array_m2: float
    array_kg: float
    battery_wh: float
    battery_kg: float
    radiator_m2: float
    radiator_kg: float
    compute_kg: float
    structure_kg: float

    @property
    def total_kg(self) -> float:
        return (
            self.array_kg + self.battery_kg + self.radiator_kg + self.compute_kg + self.structure_kg
        )


def size_satellite(design: SatelliteDesign) -> SatelliteSizing:
    """Size the array, battery and radiator of one satellite, and add up its mass."""
    sunlight = design.orbit.sunlight()
    load = design.compute_watts
    sunlit = sunlight.worst_sunlit_fraction
    if design.eclipse == "battery":
        # Per orbit: array energy in sunlight = load in sunlight + eclipse load / round trip.
        eta = design.battery.round_trip_efficiency
        array_watts = load * (sunlit + (1 - sunlit) / eta) / sunlit
        battery_wh = load * sunlight.longest_eclipse_s / 3600 / design.battery.depth_of_discharge
        availability = 1.0
    else:
        array_watts = load
        battery_wh = 0.0
        availability = sunlight.mean_sunlit_fraction
    eol = design.array.end_of_life_efficiency(design.lifetime_years)
    array_m2 = array_watts / (SOLAR_CONSTANT_W_PER_M2 * eol)
    array_bol_watts = array_m2 * SOLAR_CONSTANT_W_PER_M2 * design.array.cell_efficiency
    array_kg = array_bol_watts / design.array.watts_per_kg
    battery_kg = battery_wh / design.battery.wh_per_kg
    radiator_m2 = design.radiator.area_m2(load)
    radiator_kg = radiator_m2 * design.radiator.kg_per_m2
    compute_kg = load / 1000 * design.compute_kg_per_kw
    payload_kg = array_kg + battery_kg + radiator_kg + compute_kg
    structure_kg = payload_kg * design.structure_fraction / (1 - design.structure_fraction)
    return SatelliteSizing(
        sunlight=sunlight,
        availability=availability,
        array_watts=array_watts,
        array_m2=array_m2,
        array_kg=array_kg,
        battery_wh=battery_wh,
        battery_kg=battery_kg,
        radiator_m2=radiator_m2,
        radiator_kg=radiator_kg,
        compute_kg=compute_kg,
        structure_kg=structure_kg,
    )
