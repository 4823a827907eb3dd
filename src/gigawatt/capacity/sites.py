"""The site catalog: named terrestrial and orbital sites, each with its source.

The shipped sites live in `capacity/data/sites.toml`; a user adds or replaces sites with
`[sites.NAME]` tables in a TOML file (`--catalog FILE`). Keys, with defaults where a key may be
left out (every default is explained in docs/capacity.md):

    [sites.NAME]                          both kinds
    kind = "terrestrial"                  required: terrestrial | orbital
    source = "..."                        required: where the numbers come from, or "illustrative"
    gpu = "h200"                          required: a catalog GPU
    host_watts_per_gpu = 575              the GPU's share of its server (a DGX H100: 10.2 kW / 8
                                          GPUs - 700 W)
    network_storage_watts_per_gpu = 100   its share of switches and storage
    gpus_per_server = 8
    utilisation = 1.0                     provisioned peak draw / nameplate
    capex_usd_per_mw = 11.7e6             terrestrial: building, power and cooling per MW of IT
                                          power; orbital: building the satellites (default 0:
                                          launch only)
    gpu_usd = 0                           price of one GPU with its server share; 0 leaves GPUs
                                          out of the cost per token

    kind = "terrestrial"
    meter_mw = 300                        or it_mw; exactly one
    pue = 1.3                             required
    electricity_usd_per_kwh = 0.08
    lifetime_years = 15
    gpu_lifetime_years = 5

    kind = "orbital"
    orbit = "dawn-dusk"                   dawn-dusk (sun-synchronous) | leo
    altitude_km = 650                     required
    inclination_deg = 53                  leo only, required there
    satellites = 100                      required
    compute_kw = 100                      required: each satellite's continuous compute load
    eclipse = "battery"                   battery | idle (compute stops in eclipse)
    cell_efficiency = 0.30
    cell_degradation_per_year = 0.01
    array_watts_per_kg = 100
    radiator_temperature_c = 20
    radiator_emissivity = 0.92
    radiator_solar_absorptance = 0.1
    radiator_sunlit_faces = 0             0: edge-on to the Sun; 1: one face square to it
    radiator_earth_view_factor = ...      per face; default: a panel edge-on to the Earth
    radiator_kg_per_m2 = 5
    battery_wh_per_kg = 200
    battery_depth_of_discharge = 0.6
    battery_round_trip_efficiency = 0.9
    compute_kg_per_kw = 12.7
    structure_fraction = 0.2
    satellite_kg = 575                    a whole satellite's mass, when known, instead of the
                                          mass budget
    launch_usd_per_kg = 3600              required
    lifetime_years = 5
"""

from __future__ import annotations

import functools
import importlib.resources
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gigawatt.capacity.catalog import Gpu, did_you_mean, gpu_named, load_gpus, read_toml
from gigawatt.capacity.orbit import (
    ZERO_CELSIUS_K,
    Battery,
    Orbit,
    Radiator,
    SatelliteDesign,
    SolarArray,
    plate_earth_view_factor,
)
from gigawatt.capacity.power import GpuPower, terrestrial_fleet
from gigawatt.errors import PlanError, PolicyError, Problem

SiteKind = Literal["terrestrial", "orbital"]


@dataclass(frozen=True, slots=True)
class Servers:
    """What each GPU brings besides its board, and how the site is provisioned for it."""

    host_watts_per_gpu: float
    network_storage_watts_per_gpu: float
    gpus_per_server: int
    utilisation: float

    def power(self, gpu: Gpu) -> GpuPower:
        return GpuPower(
            board_watts=gpu.board_watts,
            host_watts_per_gpu=self.host_watts_per_gpu,
            network_storage_watts_per_gpu=self.network_storage_watts_per_gpu,
            gpus_per_server=self.gpus_per_server,
            utilisation=self.utilisation,
        )


@dataclass(frozen=True, slots=True)
class TerrestrialSite:
    name: str
    source: str
    gpu: str
    servers: Servers
    pue: float
    meter_mw: float | None
    it_mw: float | None
    capex_usd_per_mw: float
    electricity_usd_per_kwh: float
    lifetime_years: float
    gpu_usd: float
    gpu_lifetime_years: float

    @property
    def kind(self) -> SiteKind:
        return "terrestrial"


@dataclass(frozen=True, slots=True)
class OrbitalSite:
    name: str
    source: str
    gpu: str
    servers: Servers
    satellites: int
    design: SatelliteDesign  # one satellite
    satellite_kg: float | None  # a known whole-satellite mass, replacing the mass budget
    launch_usd_per_kg: float
    capex_usd_per_mw: float
    gpu_usd: float

    @property
    def kind(self) -> SiteKind:
        return "orbital"


Site = TerrestrialSite | OrbitalSite


def load_sites(extra: Path | None = None) -> dict[str, Site]:
    """The shipped sites, plus (replacing same-named ones) the `[sites.*]` of the `extra` file."""
    sites = dict(_builtin())
    if extra is not None:
        sites.update(_load_file(extra))
    return sites


def site_named(name: str, extra: Path | None = None) -> Site:
    """The site called `name`, ignoring case; PlanError with a "did you mean" hint if none."""
    sites = load_sites(extra)
    wanted = name.strip().lower()
    if wanted in sites:
        return sites[wanted]
    names = sorted(sites)
    raise PlanError(
        f"unknown site {name!r} (known: {', '.join(names)}){did_you_mean(wanted, names)}"
    )


def gpus_per_satellite(site: OrbitalSite, gpu: Gpu) -> int:
    """Whole servers' GPUs that one satellite's compute power runs."""
    power = site.servers.power(gpu)
    servers = power.servers_for(site.design.compute_watts)
    if servers == 0:
        raise PlanError(
            f"site {site.name!r}: {site.design.compute_watts / 1e3:g} kW per satellite is less "
            f"than one server of {power.gpus_per_server} x {gpu.name} "
            f"({power.provisioned_watts_per_server / 1e3:g} kW)"
        )
    return servers * power.gpus_per_server


def site_gpus(site: Site, extra: Path | None = None) -> tuple[str, int]:
    """The catalog name of the site's GPU and how many of them its power runs."""
    gpu = gpu_named(site.gpu, extra)
    if isinstance(site, TerrestrialSite):
        fleet = terrestrial_fleet(
            site.servers.power(gpu), pue=site.pue, meter_mw=site.meter_mw, it_mw=site.it_mw
        )
        return gpu.name, fleet.gpus
    return gpu.name, site.satellites * gpus_per_satellite(site, gpu)


# -- loading ---------------------------------------------------------------------------------

# Defaults for keys a site may leave out; docs/capacity.md says where each comes from.
SERVER_DEFAULTS: dict[str, float] = {
    "host_watts_per_gpu": 575.0,  # DGX H100: (10,200 W - 8 x 700 W) / 8
    "network_storage_watts_per_gpu": 100.0,
    "gpus_per_server": 8,
    "utilisation": 1.0,
    "gpu_usd": 0.0,
}
TERRESTRIAL_DEFAULTS: dict[str, float] = {
    "capex_usd_per_mw": 11.7e6,  # Cushman & Wakefield 2025 average
    "electricity_usd_per_kwh": 0.08,  # US industrial, 2024: 7 to 9 cents
    "lifetime_years": 15.0,
    "gpu_lifetime_years": 5.0,
}
ORBITAL_DEFAULTS: dict[str, float] = {
    "capex_usd_per_mw": 0.0,
    "cell_efficiency": 0.30,  # space triple-junction cells, beginning of life
    "cell_degradation_per_year": 0.01,
    "array_watts_per_kg": 100.0,
    "radiator_temperature_c": 20.0,  # Starcloud
    "radiator_emissivity": 0.92,  # Starcloud
    "radiator_solar_absorptance": 0.1,
    "radiator_sunlit_faces": 0,
    "radiator_kg_per_m2": 5.0,
    "battery_wh_per_kg": 200.0,
    "battery_depth_of_discharge": 0.6,
    "battery_round_trip_efficiency": 0.9,
    "compute_kg_per_kw": 12.7,  # a DGX H100: about 130 kg for 10.2 kW
    "structure_fraction": 0.2,
    "lifetime_years": 5.0,
}
_COMMON_KEYS = {"kind", "source", "gpu", *SERVER_DEFAULTS, "capex_usd_per_mw"}
_TERRESTRIAL_KEYS = {*_COMMON_KEYS, *TERRESTRIAL_DEFAULTS, "meter_mw", "it_mw", "pue"}
_ORBITAL_KEYS = {
    *_COMMON_KEYS,
    *ORBITAL_DEFAULTS,
    "orbit",
    "altitude_km",
    "inclination_deg",
    "satellites",
    "compute_kw",
    "eclipse",
    "radiator_earth_view_factor",
    "satellite_kg",
    "launch_usd_per_kg",
}
_INTEGER_KEYS = {"gpus_per_server", "satellites", "radiator_sunlit_faces"}


@functools.cache
def _builtin() -> dict[str, Site]:
    path = importlib.resources.files("gigawatt.capacity") / "data" / "sites.toml"
    return _parse(tomllib.loads(path.read_text("utf-8")), "sites.toml", None)


def _load_file(path: Path) -> dict[str, Site]:
    return _parse(read_toml(path), str(path), path)


def _parse(raw: Mapping[str, Any], source: str, extra: Path | None) -> dict[str, Site]:
    """Every `[sites.NAME]` table; `gpus` and `models` tables belong to the GPU/model catalog."""
    problems: list[Problem] = []
    for key in raw:
        if key not in ("sites", "gpus", "models"):
            hint = did_you_mean(key, ["sites", "gpus", "models"])
            problems.append(Problem(key, f"unknown table{hint}"))
    section = raw.get("sites", {})
    sites: dict[str, Site] = {}
    if not isinstance(section, Mapping):
        problems.append(Problem("sites", "must be a table of named sites"))
        section = {}
    gpu_names: set[str] | None = None
    for name, table in section.items():
        path = f"sites.{name}"
        if not isinstance(table, Mapping):
            problems.append(Problem(path, "must be a table"))
            continue
        if gpu_names is None:
            gpus = load_gpus(extra if extra is not None and "gpus" in raw else None)
            gpu_names = {*gpus, *(alias for gpu in gpus.values() for alias in gpu.aliases)}
        site = _SiteReader(name.lower(), table, path, problems, gpu_names).read()
        if site is not None:
            sites[site.name] = site
    if problems:
        raise PolicyError(source, problems)
    return sites


class _SiteReader:
    """Reads one `[sites.NAME]` table, adding every problem found to `problems`."""

    def __init__(
        self,
        name: str,
        table: Mapping[str, Any],
        path: str,
        problems: list[Problem],
        gpu_names: set[str],
    ) -> None:
        self.name, self.table, self.path = name, table, path
        self.problems, self.gpu_names = problems, gpu_names
        self.before = len(problems)

    def add(self, key: str, reason: str) -> None:
        self.problems.append(Problem(f"{self.path}.{key}" if key else self.path, reason))

    @property
    def failed(self) -> bool:
        return len(self.problems) > self.before

    def read(self) -> Site | None:
        kind = self.table.get("kind")
        if kind not in ("terrestrial", "orbital"):
            hint = did_you_mean(str(kind), ["terrestrial", "orbital"]) if kind else ""
            self.add("kind", f"required: 'terrestrial' or 'orbital', not {kind!r}{hint}")
            return None
        allowed = _TERRESTRIAL_KEYS if kind == "terrestrial" else _ORBITAL_KEYS
        other = _ORBITAL_KEYS if kind == "terrestrial" else _TERRESTRIAL_KEYS
        for key in self.table:
            if key not in allowed:
                why = f" for a {kind} site" if key in other else did_you_mean(key, allowed)
                self.add(key, f"unknown key{why}")
        source = self.table.get("source")
        if not isinstance(source, str) or not source.strip():
            self.add(
                "source", "required: where the numbers come from, or that they are illustrative"
            )
        gpu = self.table.get("gpu")
        if not isinstance(gpu, str):
            self.add("gpu", "required: a GPU from the catalog")
        elif gpu.strip().lower() not in self.gpu_names:
            self.add("gpu", f"unknown GPU {gpu!r}{did_you_mean(gpu.lower(), self.gpu_names)}")
        common = {
            "host_watts_per_gpu": self.number("host_watts_per_gpu", SERVER_DEFAULTS, minimum=0),
            "network_storage_watts_per_gpu": self.number(
                "network_storage_watts_per_gpu", SERVER_DEFAULTS, minimum=0
            ),
            "gpus_per_server": self.number("gpus_per_server", SERVER_DEFAULTS, minimum=1),
            "utilisation": self.number("utilisation", SERVER_DEFAULTS, fraction=True),
            "gpu_usd": self.number("gpu_usd", SERVER_DEFAULTS, minimum=0),
        }
        build = self._terrestrial() if kind == "terrestrial" else self._orbital()
        if self.failed:
            return None  # never build objects from values already reported as wrong
        servers = Servers(
            host_watts_per_gpu=common["host_watts_per_gpu"],
            network_storage_watts_per_gpu=common["network_storage_watts_per_gpu"],
            gpus_per_server=int(common["gpus_per_server"]),
            utilisation=common["utilisation"],
        )
        try:
            return build(servers, common["gpu_usd"])
        except PlanError as exc:
            self.add("", str(exc))
            return None

    def _terrestrial(self) -> Callable[[Servers, float], Site]:
        d = TERRESTRIAL_DEFAULTS
        meter_mw = self.optional("meter_mw")
        it_mw = self.optional("it_mw")
        if (meter_mw is None) == (it_mw is None):
            self.add("meter_mw", "give exactly one of meter_mw (power at the meter) and it_mw")
        pue = self.number("pue", None, minimum=1)
        capex = self.number("capex_usd_per_mw", d, minimum=0)
        electricity = self.number("electricity_usd_per_kwh", d, minimum=0)
        lifetime = self.number("lifetime_years", d, positive=True)
        gpu_lifetime = self.number("gpu_lifetime_years", d, positive=True)

        def build(servers: Servers, gpu_usd: float) -> Site:
            return TerrestrialSite(
                name=self.name,
                source=str(self.table["source"]),
                gpu=str(self.table["gpu"]).strip().lower(),
                servers=servers,
                pue=pue,
                meter_mw=meter_mw,
                it_mw=it_mw,
                capex_usd_per_mw=capex,
                electricity_usd_per_kwh=electricity,
                lifetime_years=lifetime,
                gpu_usd=gpu_usd,
                gpu_lifetime_years=gpu_lifetime,
            )

        return build

    def _orbital(self) -> Callable[[Servers, float], Site]:
        orbit_kind = self.choice("orbit", ("dawn-dusk", "leo"), "dawn-dusk")
        altitude_km = self.number("altitude_km", None, positive=True)
        inclination = self.optional("inclination_deg", minimum=0)
        if orbit_kind == "leo" and inclination is None:
            self.add("inclination_deg", "required for an ordinary (leo) orbit")
        if orbit_kind == "dawn-dusk" and inclination is not None:
            self.add("inclination_deg", "a dawn-dusk orbit's inclination follows from its altitude")
        view = self.optional("radiator_earth_view_factor", minimum=0)
        satellite_kg = self.optional("satellite_kg")
        satellites = self.number("satellites", None, minimum=1)
        compute_kw = self.number("compute_kw", None, positive=True)
        launch = self.number("launch_usd_per_kg", None, minimum=0)
        eclipse = self.choice("eclipse", ("battery", "idle"), "battery")
        v = {key: self.number(key, ORBITAL_DEFAULTS, minimum=0) for key in ORBITAL_DEFAULTS}

        def build(servers: Servers, gpu_usd: float) -> Site:
            orbit = Orbit(altitude_km, orbit_kind, inclination)  # type: ignore[arg-type]
            design = SatelliteDesign(
                orbit=orbit,
                compute_watts=compute_kw * 1000,
                array=SolarArray(
                    cell_efficiency=v["cell_efficiency"],
                    degradation_per_year=v["cell_degradation_per_year"],
                    watts_per_kg=v["array_watts_per_kg"],
                ),
                radiator=Radiator(
                    temperature_k=v["radiator_temperature_c"] + ZERO_CELSIUS_K,
                    emissivity=v["radiator_emissivity"],
                    solar_absorptance=v["radiator_solar_absorptance"],
                    kg_per_m2=v["radiator_kg_per_m2"],
                    sunlit_faces=int(v["radiator_sunlit_faces"]),
                    earth_view_factor=(
                        plate_earth_view_factor(altitude_km) if view is None else view
                    ),
                    # Reflected sunlight is strongest where the Sun stands highest below the
                    # satellite: a zenith angle of beta, at its smallest over the year.
                    albedo_cos=math.cos(math.radians(orbit.sunlight().min_beta_deg)),
                ),
                battery=Battery(
                    wh_per_kg=v["battery_wh_per_kg"],
                    depth_of_discharge=v["battery_depth_of_discharge"],
                    round_trip_efficiency=v["battery_round_trip_efficiency"],
                ),
                compute_kg_per_kw=v["compute_kg_per_kw"],
                structure_fraction=v["structure_fraction"],
                lifetime_years=v["lifetime_years"],
                eclipse=eclipse,  # type: ignore[arg-type]
            )
            return OrbitalSite(
                name=self.name,
                source=str(self.table["source"]),
                gpu=str(self.table["gpu"]).strip().lower(),
                servers=servers,
                satellites=int(satellites),
                design=design,
                satellite_kg=satellite_kg,
                launch_usd_per_kg=launch,
                capex_usd_per_mw=v["capex_usd_per_mw"],
                gpu_usd=gpu_usd,
            )

        return build

    # -- values ----------------------------------------------------------------------------

    def _raw_number(self, key: str) -> float | None:
        value = self.table.get(key)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            self.add(key, f"must be a number, not {value!r}")
            return math.nan
        if key in _INTEGER_KEYS and value != int(value):
            self.add(key, f"must be a whole number, not {value!r}")
            return math.nan
        return float(value)

    def number(
        self,
        key: str,
        defaults: Mapping[str, float] | None,
        *,
        minimum: float | None = None,
        positive: bool = False,
        fraction: bool = False,
    ) -> float:
        """A number, its default when absent (required when `defaults` is None), checked."""
        value = self._raw_number(key)
        if value is None:
            if defaults is None:
                self.add(key, "required")
                return math.nan
            return float(defaults[key])
        if not math.isnan(value):
            self._check(key, value, minimum, positive, fraction)
        return value

    def optional(self, key: str, *, minimum: float | None = None) -> float | None:
        """A number that may be absent (None); above 0 unless a `minimum` is given."""
        value = self._raw_number(key)
        if value is not None and not math.isnan(value):
            self._check(key, value, minimum, minimum is None, False)
        return value

    def _check(
        self, key: str, value: float, minimum: float | None, positive: bool, fraction: bool
    ) -> None:
        if fraction and not 0 < value <= 1:
            self.add(key, f"must be above 0 and at most 1, not {value:g}")
        elif positive and value <= 0:
            self.add(key, f"must be above 0, not {value:g}")
        elif minimum is not None and value < minimum:
            self.add(key, f"must be at least {minimum:g}, not {value:g}")

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        value = self.table.get(key, default)
        if value not in options:
            hint = did_you_mean(str(value), options)
            self.add(key, f"must be one of {', '.join(options)}, not {value!r}{hint}")
        return str(value)
