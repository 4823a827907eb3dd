"""Terrestrial power -> GPUs: hand-computed cases and the 300 MW sanity check."""

from __future__ import annotations

import pytest

from gigawatt.capacity.power import GpuPower, terrestrial_fleet
from gigawatt.errors import PlanError

# A DGX H100 draws up to 10.2 kW for 8 GPUs of 700 W:
# (10,200 - 8 x 700) / 8 = 575 W of host per GPU.
DGX_HOST_WATTS_PER_GPU = (10_200 - 8 * 700) / 8


def h200(utilisation: float = 0.8) -> GpuPower:
    return GpuPower(
        board_watts=700,
        host_watts_per_gpu=DGX_HOST_WATTS_PER_GPU,
        network_storage_watts_per_gpu=100,
        utilisation=utilisation,
    )


def test_host_share_from_the_dgx_figure() -> None:
    assert DGX_HOST_WATTS_PER_GPU == 575
    assert h200(1.0).nameplate_watts_per_gpu == 700 + 575 + 100


def test_meter_power_to_gpus() -> None:
    # 300 MW / PUE 1.3 = 230.769 MW of IT power. Per server: 8 x 1,375 W x 0.8 = 8,800 W.
    # 230,769,231 W / 8,800 W = 26,223.8 -> 26,223 whole servers -> 209,784 GPUs.
    fleet = terrestrial_fleet(h200(), pue=1.3, meter_mw=300)
    assert fleet.it_mw == pytest.approx(300 / 1.3)
    assert fleet.facility_mw == pytest.approx(300)
    assert fleet.servers == 26_223
    assert fleet.gpus == 209_784
    # 300 MW / 209,784 GPUs = 1,430 W per GPU at the meter.
    assert fleet.facility_watts_per_gpu == pytest.approx(1430.04, abs=0.01)


@pytest.mark.parametrize(("pue", "utilisation"), [(1.3, 0.8), (1.2, 0.85), (1.2, 0.8)])
def test_300_mw_of_h100_h200_class_servers_is_200k_to_230k_gpus(
    pue: float, utilisation: float
) -> None:
    # Public figure: over 220,000 GPUs at 300 MW (about 1.36 kW per GPU all-in).
    fleet = terrestrial_fleet(h200(utilisation), pue=pue, meter_mw=300)
    assert 200_000 <= fleet.gpus <= 230_000


def test_provisioning_to_nameplate_buys_fewer_gpus() -> None:
    # Even at PUE 1.1: 272.73 MW / (8 x 1,375 W) = 24,793 servers = 198,344 GPUs.
    assert terrestrial_fleet(h200(1.0), pue=1.1, meter_mw=300).gpus == 198_344


def test_it_power_to_gpus() -> None:
    # 1 MW of IT power, 1,000 W per GPU at nameplate, 8 per server: 1e6 / 8,000 = 125 servers.
    gpu = GpuPower(board_watts=800, host_watts_per_gpu=150, network_storage_watts_per_gpu=50)
    fleet = terrestrial_fleet(gpu, pue=1.5, it_mw=1)
    assert (fleet.servers, fleet.gpus) == (125, 1000)
    assert fleet.facility_mw == pytest.approx(1.5)


def test_only_whole_servers() -> None:
    # 87,900 W / 8,800 W = 9.99 servers -> 9 servers, 72 GPUs; exactly 88,000 W -> 10.
    assert terrestrial_fleet(h200(), pue=1.0, it_mw=0.0879).gpus == 72
    assert terrestrial_fleet(h200(), pue=1.0, it_mw=0.088).gpus == 80


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pue": 1.3, "meter_mw": 0}, "positive number of megawatts"),
        ({"pue": 1.3, "it_mw": -5}, "positive number of megawatts"),
        ({"pue": 0.9, "meter_mw": 300}, "at least 1"),
        ({"pue": 1.3}, "either at the meter or as IT power"),
        ({"pue": 1.3, "meter_mw": 300, "it_mw": 200}, "either at the meter or as IT power"),
        ({"pue": 1.0, "it_mw": 0.005}, "less than one server"),
    ],
)
def test_impossible_sites(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        terrestrial_fleet(h200(), **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"board_watts": 0},
        {"host_watts_per_gpu": -1},
        {"gpus_per_server": 0},
        {"utilisation": 0},
        {"utilisation": 1.2},
    ],
)
def test_impossible_gpu_power(kwargs: dict[str, float]) -> None:
    base = {"board_watts": 700.0, "host_watts_per_gpu": 575.0, "network_storage_watts_per_gpu": 0.0}
    with pytest.raises(PlanError):
        GpuPower(**{**base, **kwargs})  # type: ignore[arg-type]
