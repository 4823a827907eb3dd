"""`gigawatt simulate` from the command line: the report, its determinism, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gigawatt.cli import main

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "examples" / "policy.toml"
FLEET = ROOT / "examples" / "fleet.toml"

DEMAND = """
timezone = "America/Los_Angeles"
[sizes.small]
input = { mean = 800, sigma = 0.8 }
output = { mean = 200, sigma = 0.5 }
[sizes.medium]
input = { mean = 3000, sigma = 0.8 }
output = { mean = 400, sigma = 0.5 }
[plans.free]
users = 300_000
active_share = 0.6
sessions_per_day = 3
requests_per_session = 6
think_time = "30s"
models = { small = 0.5, medium = 0.5 }
[plans.pro]
users = 100_000
active_share = 0.6
sessions_per_day = 4
requests_per_session = 10
think_time = "20s"
models = { medium = 1 }
"""


@pytest.fixture
def demand(tmp_path: Path) -> Path:
    path = tmp_path / "demand.toml"
    path.write_text(DEMAND)
    return path


def simulate(*args: str) -> int:
    return main(["simulate", "--policy", str(POLICY), "--days", "1", "--seed", "3", *args])


def test_report_with_plots_csv_and_json(
    demand: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report"
    code = simulate(
        "--demand",
        str(demand),
        "--fleet",
        str(FLEET),
        "--sample-users",
        "400",
        "--report",
        str(report),
        "--json",
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["report"] == str(report / "index.html")
    (scenario,) = out["scenarios"]
    assert scenario["scenario"]["users"] == 400  # 300 free + 100 pro
    assert scenario["totals"]["requests_sent"] > 1000
    assert set(scenario["plans"]) == {"free", "pro"}
    assert {pool["model"] for pool in scenario["fleet"]} == {"small", "medium", "large"}
    page = (report / "index.html").read_text()
    assert page.count("<img ") == 5
    for name in ("utilisation", "refusals", "time_to_limit", "waits", "affected"):
        assert (report / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        header = (report / "data" / f"{name}.csv").read_text().splitlines()[0]
        assert header.startswith("scenario,")
        assert isinstance(json.loads((report / "data" / f"{name}.json").read_text()), list)
    summary = json.loads((report / "summary.json").read_text())
    hourly = summary["scenarios"][0]["hourly"]
    assert len(hourly["hour_start"]) == 24 and hourly["hour_start"][0].endswith("00:00")


def test_the_same_seed_writes_the_same_report(demand: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert (
            simulate(
                "--demand",
                str(demand),
                "--fleet",
                str(FLEET),
                "--sample-users",
                "200",
                "--report",
                str(tmp_path / name),
            )
            == 0
        )
    for path in sorted((tmp_path / "a").rglob("*")):
        if path.is_file():
            twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
            assert path.read_bytes() == twin.read_bytes(), path.name


def test_compare_puts_two_policies_side_by_side(
    demand: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same policy without peak hours.
    lines = [line for line in POLICY.read_text().splitlines() if not line.startswith("peak =")]
    other = tmp_path / "no-peak.toml"
    other.write_text("\n".join(lines) + "\n")
    code = simulate(
        "--demand",
        str(demand),
        "--sample-users",
        "200",
        "--report",
        str(tmp_path / "r"),
        "--compare",
        str(other),
        "--json",
    )
    assert code == 0
    scenarios = json.loads(capsys.readouterr().out)["scenarios"]
    assert [s["scenario"]["label"] for s in scenarios] == ["policy", "no-peak"]
    # The same requests were drawn for both.
    assert scenarios[0]["totals"]["first_attempts"] > 0
    page = (tmp_path / "r" / "index.html").read_text()
    assert "policy vs no-peak" in page
    rows = (tmp_path / "r" / "data" / "waits.csv").read_text().splitlines()
    assert {row.split(",")[0] for row in rows[1:]} == {"policy", "no-peak"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0"], "gigawatt: --days must be at least 1, not 0"),
        (["--sample-users", "0"], "gigawatt: --sample-users must be at least 1"),
        (["--scale", "1.5"], "gigawatt: --scale must be a share of the users in (0, 1]"),
        (["--compare-site", "site-300mw"], "gigawatt: --compare-site adds a site to --fleet"),
        (["--fleet", str(FLEET), "--compare-site", "site-300"], "gigawatt: unknown site"),
    ],
)
def test_bad_flags_exit_2(
    demand: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    code = simulate("--demand", str(demand), "--report", str(tmp_path / "r"), *args)
    assert code == 2
    assert message in capsys.readouterr().err


def test_bad_files_exit_2_with_key_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.toml"
    assert simulate("--demand", str(missing), "--report", str(tmp_path / "r")) == 2
    assert f"{missing}: no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text(DEMAND.replace("[plans.pro]", "[plans.prof]"))
    assert simulate("--demand", str(bad), "--report", str(tmp_path / "r")) == 2
    err = capsys.readouterr().err
    assert f"{bad}: plans.prof: unknown plan 'prof'; did you mean 'pro'?" in err
    assert f"{bad}: 1 problem" in err


def test_compare_and_compare_fleet_are_exclusive(
    demand: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        simulate(
            "--demand",
            str(demand),
            "--report",
            str(tmp_path),
            "--compare",
            str(POLICY),
            "--compare-fleet",
            str(FLEET),
        )
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_compare_site_adds_the_sites_gpus(
    demand: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = simulate(
        "--demand", str(demand), "--fleet", str(FLEET), "--sample-users", "200",
        "--report", str(tmp_path / "r"), "--compare-site", "site-300mw", "--json",
    )  # fmt: skip
    assert code == 0
    before, after = json.loads(capsys.readouterr().out)["scenarios"]
    assert after["scenario"]["label"] == "policy on today + site-300mw"
    # About 220,000 H200s join a fleet of a few thousand GPUs.
    assert after["scenario"]["fleet_gpus"] > before["scenario"]["fleet_gpus"] + 200_000
    replicas = {p["model"]: p["replicas"] for p in before["fleet"]}
    grown = {p["model"]: p["replicas"] for p in after["fleet"]}
    assert all(grown[m] >= replicas[m] for m in replicas)
    assert sum(grown.values()) > sum(replicas.values())
