"""From a terrestrial site's power to the GPUs it can run.

Power flows meter -> facility overhead (cooling, conversion losses; PUE) -> IT power -> servers.
Each GPU carries its board power plus its share of the server around it (CPUs, memory, NICs,
fans, power-supply losses) and of the fabric and storage outside the server. Sites are provisioned
against the peak draw their servers actually reach, a fraction (`utilisation`) of the summed
nameplate, with power capping as the guard; `utilisation = 1` provisions to nameplate.

Worked example (the shipped `site-300mw`): 300 MW at the meter, PUE 1.3 -> 230.77 MW of IT power.
An H200 server of 8 GPUs: 8 x (700 W board + 575 W host share + 100 W network and storage)
= 11,000 W nameplate, x 0.8 utilisation = 8,800 W provisioned. 230.77 MW / 8,800 W = 26,223
whole servers = 209,784 GPUs, 1.43 kW per GPU at the meter (the public figure for such a site is
over 220,000 GPUs at 300 MW, about 1.36 kW each).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gigawatt.errors import PlanError

WATTS_PER_MW = 1e6


@dataclass(frozen=True, slots=True)
class GpuPower:
    """The power one GPU brings with it, and how the site is provisioned for it."""

    board_watts: float
    host_watts_per_gpu: float  # the GPU's share of its server: CPUs, memory, NICs, fans, PSU loss
    network_storage_watts_per_gpu: float  # its share of switches and storage outside the server
    gpus_per_server: int = 8
    utilisation: float = 1.0  # provisioned peak draw / nameplate

    def __post_init__(self) -> None:
        if not self.board_watts > 0:
            raise PlanError(f"GPU board power must be above 0 W, got {self.board_watts:g}")
        for name in ("host_watts_per_gpu", "network_storage_watts_per_gpu"):
            value = getattr(self, name)
            if not value >= 0:
                raise PlanError(f"{name} must be 0 or more, got {value:g}")
        if self.gpus_per_server < 1:
            raise PlanError(f"gpus_per_server must be at least 1, got {self.gpus_per_server}")
        if not 0 < self.utilisation <= 1:
            raise PlanError(
                f"utilisation is the provisioned share of nameplate power, in (0, 1]; "
                f"got {self.utilisation:g}"
            )

    @property
    def nameplate_watts_per_gpu(self) -> float:
        return self.board_watts + self.host_watts_per_gpu + self.network_storage_watts_per_gpu

    @property
    def provisioned_watts_per_gpu(self) -> float:
        """IT watts the site sets aside for each GPU."""
        return self.nameplate_watts_per_gpu * self.utilisation

    @property
    def provisioned_watts_per_server(self) -> float:
        return self.provisioned_watts_per_gpu * self.gpus_per_server

    def servers_for(self, it_watts: float) -> int:
        """Whole servers that fit in `it_watts` of IT power."""
        # A hair of tolerance so 8,800 W x 10 servers fits in exactly 88,000 W despite rounding.
        return math.floor(it_watts / self.provisioned_watts_per_server * (1 + 1e-12))


@dataclass(frozen=True, slots=True)
class SiteFleet:
    """What a site's power buys: whole servers, their GPUs, and the power at each level."""

    gpus: int
    servers: int
    it_mw: float  # IT power available to servers, network and storage
    facility_mw: float  # power at the meter: IT power x PUE
    pue: float

    @property
    def facility_watts_per_gpu(self) -> float:
        """Meter watts per GPU, all overheads included (the figure press reports quote)."""
        return self.facility_mw * WATTS_PER_MW / self.gpus if self.gpus else math.inf


def terrestrial_fleet(
    gpu: GpuPower,
    *,
    pue: float,
    meter_mw: float | None = None,
    it_mw: float | None = None,
) -> SiteFleet:
    """The GPUs a site of `meter_mw` at the meter, or `it_mw` of IT power, can run.

    Exactly one of `meter_mw` and `it_mw` is given; the other follows from the PUE.
    """
    if (meter_mw is None) == (it_mw is None):
        raise PlanError("give the site's power either at the meter or as IT power, not both")
    if not pue >= 1:
        raise PlanError(
            f"PUE is facility power / IT power, so at least 1; got {pue:g} "
            "(best fleets run about 1.1, the industry average is about 1.56)"
        )
    if meter_mw is not None:
        _check_power("meter_mw", meter_mw)
        it_mw = meter_mw / pue
    else:
        assert it_mw is not None
        _check_power("it_mw", it_mw)
    servers = gpu.servers_for(it_mw * WATTS_PER_MW)
    if servers == 0:
        raise PlanError(
            f"{it_mw * 1e3:g} kW of IT power is less than one server "
            f"({gpu.provisioned_watts_per_server / 1e3:g} kW provisioned for "
            f"{gpu.gpus_per_server} GPUs)"
        )
    return SiteFleet(
        gpus=servers * gpu.gpus_per_server,
        servers=servers,
        it_mw=it_mw,
        facility_mw=it_mw * pue,
        pue=pue,
    )


def _check_power(name: str, mw: float) -> None:
    if not (mw > 0 and math.isfinite(mw)):
        raise PlanError(f"{name} must be a positive number of megawatts, got {mw:g}")
