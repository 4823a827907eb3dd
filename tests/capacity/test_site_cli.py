"""`gigawatt plan site` and `gigawatt plan compare`, through the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gigawatt.cli import main


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["plan", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_site_300mw(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "site", "--site", "site-300mw")
    assert (out["site"], out["kind"], out["gpu"]) == ("site-300mw", "terrestrial", "h200")
    assert out["gpus"] == 209_784 and out["servers"] == 26_223
    assert out["terrestrial"]["facility_mw"] == pytest.approx(300)
    assert out["terrestrial"]["it_mw"] == pytest.approx(230.769, abs=1e-3)
    # $11.7M/MW / 15 years + 0.08 $/kWh x 1,000 kW x 1.3 x 8,766 h
    assert out["cost"]["usd_per_mw_year"] == pytest.approx(780_000 + 911_664)
    tokens = out["tokens"]
    assert tokens["model"] == "llama-3.3-70b" and tokens["gpus_per_replica"] == 2
    assert tokens["replicas"] == 209_784 // 2
    assert tokens["tpot_s"] <= 0.05
    assert tokens["output_tokens_per_s"] == pytest.approx(
        tokens["replicas"] * tokens["replica_output_tokens_per_s"]
    )


def test_starlink_class_at_both_launch_prices(capsys: pytest.CaptureFixture[str]) -> None:
    # 575 kg x $3,600 / (28 kW x 5 years) = $14,786; at $200/kg, $821 (published: 14,700 and 810).
    out = run_json(capsys, "site", "--site", "starlink-v2-mini-class")
    assert out["cost"]["usd_per_kw_year"] == pytest.approx(14_785.71, abs=0.01)
    assert out["orbital"]["mass_given"] is True
    out = run_json(capsys, "site", "--site", "starlink-v2-mini-class", "--launch-usd-per-kg", "200")
    assert out["cost"]["usd_per_kw_year"] == pytest.approx(821.43, abs=0.01)


def test_orbital_site(capsys: pytest.CaptureFixture[str]) -> None:
    orbital = run_json(capsys, "site", "--site", "orbital-sso-650")["orbital"]
    assert orbital["orbit"] == "dawn-dusk"
    assert orbital["inclination_deg"] == pytest.approx(97.986, abs=1e-3)
    assert orbital["mean_sunlit_fraction"] > 0.95
    assert orbital["radiator_emitted_w_per_m2"] == pytest.approx(770.53, abs=0.01)
    # Mass adds up: array + battery + radiator + compute + structure.
    parts = ("array", "battery", "radiator", "compute", "structure")
    total = sum(orbital[f"{part}_kg_per_satellite"] for part in parts)
    assert orbital["satellite_kg"] == pytest.approx(total)
    assert orbital["launch_kg"] == pytest.approx(total * orbital["satellites"])


def test_tokens_flags(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(
        capsys,
        "site",
        "--site",
        "site-300mw",
        "--model",
        "llama-3.1-8b",
        "--gpus-per-replica",
        "1",
        "--input",
        "1000",
        "--output",
        "200",
        "--tpot-ms",
        "0",
        "--gpu-usd",
        "30000",
    )
    tokens = out["tokens"]
    assert (tokens["model"], tokens["replicas"], tokens["tpot_target_s"]) == (
        "llama-3.1-8b",
        209_784,
        None,
    )
    # 209,784 GPUs x $30,000 over 5 years.
    assert out["cost"]["gpus_usd_per_year"] == pytest.approx(209_784 * 30_000 / 5)
    assert out["cost"]["gpus_included"] is True


def test_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "site", "--site", "orbital-sso-650"]) == 0
    out = capsys.readouterr().out
    assert "dawn-dusk sun-synchronous, 650 km" in out
    assert "source: Illustrative" in out


def test_compare(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "compare", "--site", "site-300mw", "--site", "orbital-sso-650")
    assert [site["site"] for site in out["sites"]] == ["site-300mw", "orbital-sso-650"]
    assert main(["plan", "compare", "--site", "site-300mw", "--site", "orbital-leo-550"]) == 0
    table = capsys.readouterr().out
    assert "site-300mw" in table and "orbital-leo-550" in table
    assert "209,784" in table and "7,200" in table


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["site", "--site", "site-300"], "did you mean 'site-300mw'"),
        (["compare", "--site", "site-300mw"], "two sites or more"),
        (["site", "--site", "site-300mw", "--tpot-ms", "-1"], "--tpot-ms"),
        (["site", "--site", "site-300mw", "--launch-usd-per-kg", "-5"], "0 or more"),
        (
            [
                "site",
                "--site",
                "site-300mw",
                "--model",
                "llama-3.1-405b",
                "--gpus-per-replica",
                "1",
            ],
            "fits on",
        ),
        (["site", "--site", "site-300mw", "--gpu-usd", "nan"], "0 or more"),
        (
            ["site", "--site", "starlink-v2-mini-class", "--gpus-per-replica", "32"],
            "fewer than one replica",
        ),
    ],
)
def test_bad_input_exits_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["plan", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gigawatt: ")
    assert message in err


def test_one_catalog_file_adds_a_gpu_and_a_site_on_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        """
        [gpus.h300]
        source = "illustrative"
        hbm_gb = 200
        hbm_tb_per_s = 6
        bf16_tflops = 1000
        fp8_tflops = 2000
        board_watts = 900

        [sites.my-site]
        kind = "terrestrial"
        source = "illustrative"
        gpu = "h300"
        meter_mw = 10
        pue = 1.2
        """
    )
    assert main(["plan", "site", "--site", "my-site", "--catalog", str(catalog), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # 10 MW / 1.2 = 8.33 MW of IT power; a server is 8 x (900 + 575 + 100) W = 12.6 kW:
    # 661 whole servers, 5,288 GPUs.
    assert out["gpus"] == 5_288
