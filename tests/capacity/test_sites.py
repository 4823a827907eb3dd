"""The site catalog: shipped sites, user files, and what each site works out to."""

from __future__ import annotations

from pathlib import Path

import pytest

from gigawatt.capacity.site_plan import Serving, plan_site
from gigawatt.capacity.sites import (
    OrbitalSite,
    TerrestrialSite,
    load_sites,
    site_gpus,
    site_named,
)
from gigawatt.errors import PlanError, PolicyError


def test_every_shipped_site_has_a_source_and_a_kind() -> None:
    sites = load_sites()
    assert {"site-300mw", "orbital-sso-650", "starlink-v2-mini-class"} <= set(sites)
    for site in sites.values():
        assert site.source.strip()
        assert isinstance(site, TerrestrialSite | OrbitalSite)


def test_site_300mw_holds_200k_to_230k_gpus() -> None:
    # 300 MW / 1.3 = 230.77 MW; 8 x (700 + 575 + 100) W x 0.8 = 8,800 W a server;
    # 26,223 servers = 209,784 H200s. The public figure for such a site: over 220,000.
    site = site_named("site-300mw")
    assert isinstance(site, TerrestrialSite)
    assert (site.meter_mw, site.pue, site.gpu) == (300, 1.3, "h200")
    gpu, count = site_gpus(site)
    assert gpu == "h200"
    assert count == 209_784
    assert 200_000 <= count <= 230_000


def test_orbital_site_gpus() -> None:
    # 100 kW per satellite / 11,000 W per 8-GPU server at nameplate = 9 servers = 72 GPUs,
    # x 100 satellites.
    site = site_named("orbital-sso-650")
    assert isinstance(site, OrbitalSite)
    assert site.satellites * site.design.compute_watts >= 1e6  # at least 1 MW
    assert site_gpus(site) == ("h200", 7200)


def test_names_ignore_case_and_unknown_names_get_a_hint() -> None:
    assert site_named("SITE-300MW").name == "site-300mw"
    with pytest.raises(PlanError, match="did you mean 'site-300mw'"):
        site_named("site-300")


def test_starlink_class_site_reproduces_the_launched_power_figure() -> None:
    # 575 kg x $3,600/kg / (28 kW x 5 years) = $14,786 per kW-year (published: about $14,700).
    plan = plan_site(site_named("starlink-v2-mini-class"), serving=None)
    assert plan.satellite_kg == 575
    assert plan.cost.usd_per_kw_year == pytest.approx(14_785.71, abs=0.01)
    assert plan.tokens is None


def test_site_300mw_costs() -> None:
    # $11.7M/MW over 15 years = $780,000 per MW-year; 0.08 x 1,000 kW x 1.3 x 8,766 h = $911,664.
    plan = plan_site(site_named("site-300mw"), serving=None)
    assert plan.cost.usd_per_mw_year == pytest.approx(1_691_664)
    assert plan.power_mw == pytest.approx(300 / 1.3)


def test_cost_per_token_follows_the_serving_model() -> None:
    plan = plan_site(site_named("site-300mw"), Serving())
    assert plan.tokens is not None
    tokens = plan.tokens
    # 209,784 GPUs / 2 per replica = 104,892 replicas.
    assert tokens.replicas == 104_892
    assert tokens.output_tokens_per_s == pytest.approx(
        tokens.replicas * tokens.replica.output_tokens_per_s
    )
    assert tokens.replica.tpot_s <= 0.05
    # Yearly cost / tokens a year, in dollars per million.
    per_year = tokens.output_tokens_per_s * 365.25 * 86_400
    assert tokens.usd_per_million_output_tokens == pytest.approx(
        plan.cost.total_usd / per_year * 1e6
    )


def test_an_orbit_that_idles_in_eclipse_sells_fewer_tokens(tmp_path: Path) -> None:
    path = tmp_path / "sites.toml"
    path.write_text(
        """
[sites.leo-idle]
kind = "orbital"
source = "illustrative"
gpu = "h200"
orbit = "leo"
altitude_km = 550
inclination_deg = 53
satellites = 10
compute_kw = 100
eclipse = "idle"
launch_usd_per_kg = 200
"""
    )
    plan = plan_site(site_named("leo-idle", path), Serving())
    assert plan.satellite is not None and plan.tokens is not None
    assert plan.availability == pytest.approx(plan.satellite.sunlight.mean_sunlit_fraction)
    assert 0.6 < plan.availability < 0.75
    assert plan.satellite.battery_kg == 0
    per_year = plan.tokens.output_tokens_per_s * 365.25 * 86_400 * plan.availability
    assert plan.tokens.usd_per_million_output_tokens == pytest.approx(
        plan.cost.total_usd / per_year * 1e6
    )


def test_a_user_file_adds_and_replaces_sites(tmp_path: Path) -> None:
    path = tmp_path / "sites.toml"
    path.write_text(
        """
[sites.site-300mw]
kind = "terrestrial"
source = "our own figures"
gpu = "H100"
it_mw = 10
pue = 1.2

[sites.small]
kind = "terrestrial"
source = "illustrative"
gpu = "b200"
meter_mw = 1
pue = 1.1
"""
    )
    sites = load_sites(path)
    replaced = sites["site-300mw"]
    assert isinstance(replaced, TerrestrialSite)
    assert (replaced.it_mw, replaced.meter_mw, replaced.gpu) == (10, None, "h100")
    # 10 MW / (8 x (700 + 575 + 100) W) = 909.1 -> 909 servers = 7,272 H100s (the alias).
    assert site_gpus(replaced) == ("h100-sxm", 7272)
    assert "small" in sites and "orbital-sso-650" in sites


def test_every_problem_in_a_site_file_is_reported_with_its_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        """
[sites.bad]
kind = "terrestrial"
gpu = "h2000"
meter_mw = 0
it_mw = 5
pue = 0.9
utilisation = 1.5
capex_usd_per_mw = true
altitude_km = 650

[sites.orbit]
kind = "orbital"
source = "illustrative"
gpu = "h200"
orbit = "geo"
altitude_km = 650
satellites = 2.5
compute_kw = 100
launch_usd_per_kg = 200

[sites.odd]
kind = "moon"
source = "illustrative"
"""
    )
    with pytest.raises(PolicyError) as caught:
        load_sites(path)
    problems: dict[str, str] = {}
    for problem in caught.value.problems:
        problems[problem.path] = f"{problems.get(problem.path, '')} {problem.reason}".strip()
    assert problems["sites.bad.source"].startswith("required")
    assert "did you mean 'h200'" in problems["sites.bad.gpu"]
    assert "above 0" in problems["sites.bad.meter_mw"]
    assert "exactly one of meter_mw" in problems["sites.bad.meter_mw"]
    assert "at least 1" in problems["sites.bad.pue"]
    assert "at most 1" in problems["sites.bad.utilisation"]
    assert "must be a number" in problems["sites.bad.capex_usd_per_mw"]
    assert problems["sites.bad.altitude_km"] == "unknown key for a terrestrial site"
    assert "dawn-dusk, leo" in problems["sites.orbit.orbit"]
    assert "whole number" in problems["sites.orbit.satellites"]
    assert "'terrestrial' or 'orbital'" in problems["sites.odd.kind"]


def test_impossible_numbers_caught_when_the_site_is_built(tmp_path: Path) -> None:
    path = tmp_path / "low.toml"
    path.write_text(
        """
[sites.low]
kind = "orbital"
source = "illustrative"
gpu = "h200"
altitude_km = 120
satellites = 1
compute_kw = 100
launch_usd_per_kg = 200
"""
    )
    with pytest.raises(PolicyError) as caught:
        load_sites(path)
    [problem] = caught.value.problems
    assert problem.path == "sites.low"
    assert "below 160 km" in problem.reason


def test_a_satellite_too_small_for_one_server(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(
        """
[sites.tiny]
kind = "orbital"
source = "illustrative"
gpu = "h200"
altitude_km = 650
satellites = 1
compute_kw = 5
launch_usd_per_kg = 200
"""
    )
    with pytest.raises(PlanError, match="less than one server"):
        site_gpus(site_named("tiny", path))
