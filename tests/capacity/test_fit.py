"""The efficiency fit: the optimiser, the calibration data, and the shipped factors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from gigawatt.capacity.fit import (
    CalibrationRow,
    Fit,
    Residual,
    efficiency_toml,
    fit_efficiency,
    load_calibration,
    nelder_mead,
    residual_markdown,
    shipped_efficiency_path,
)
from gigawatt.capacity.throughput import Efficiency, shipped_efficiency
from gigawatt.errors import PlanError


@pytest.fixture(scope="module")
def fit() -> Fit:
    return fit_efficiency(load_calibration())


def test_nelder_mead_finds_a_quadratic_minimum() -> None:
    # (x - 1)^2 + 10 (y + 2)^2 + 3 has its minimum, 3, at (1, -2).
    point, value = nelder_mead(
        lambda p: float((p[0] - 1) ** 2 + 10 * (p[1] + 2) ** 2 + 3), np.array([5.0, 5.0])
    )
    assert point == pytest.approx([1, -2], abs=1e-5)
    assert value == pytest.approx(3)


def test_shipped_calibration_rows() -> None:
    rows = load_calibration()
    assert len(rows) == 28
    assert rows[0] == CalibrationRow("llama-3.3-70b", "h200", 1, "fp8", 128, 128, 3803)


def test_a_fresh_fit_reproduces_the_shipped_factors(fit: Fit) -> None:
    assert fit.efficiency == shipped_efficiency()
    shipped = tomllib.loads(shipped_efficiency_path().read_text("utf-8"))
    assert shipped == tomllib.loads(efficiency_toml(fit.efficiency))


def test_the_fit_meets_its_target(fit: Fit) -> None:
    assert fit.median_abs_error <= 0.20
    assert fit.worst_abs_error <= 0.50
    assert len(fit.residuals) == 28


def test_the_roofline_max_fits_worse(fit: Fit) -> None:
    roofline = fit_efficiency(load_calibration(), roofline=True)
    assert roofline.median_abs_error > fit.median_abs_error
    assert roofline.worst_abs_error > fit.worst_abs_error


def test_relative_error() -> None:
    row = CalibrationRow("llama-3.1-8b", "h200", 1, "fp8", 128, 128, 1000)
    assert Residual(row, 1100, 10).relative_error == pytest.approx(0.10)
    assert Residual(row, 800, 10).relative_error == pytest.approx(-0.20)


def test_markdown_table(fit: Fit) -> None:
    text = residual_markdown(fit)
    assert "| llama-3.3-70b | 1 x h200 | fp8 | 128 | 128 | 3,803 |" in text
    assert text.count("\n| llama") == 28


def test_bad_calibration_file(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("# a comment\nmodel,gpu,gpus\nllama-3.1-8b,h200,one\n")
    with pytest.raises(PlanError, match="data row 1 is not a calibration row"):
        load_calibration(path)


def test_efficiency_file_round_trip() -> None:
    efficiency = Efficiency(prefill=0.61, decode=0.5, memory=0.9, link=0.7, fp4=0.6)
    raw = tomllib.loads(efficiency_toml(efficiency))
    assert Efficiency(**raw["efficiency"]) == efficiency


def test_docs_show_the_current_fit(fit: Fit) -> None:
    docs = Path(__file__).parents[2] / "docs" / "capacity.md"
    assert residual_markdown(fit) in docs.read_text("utf-8")
