"""`gigawatt plan throughput` and `gigawatt plan fit` as a user runs them."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from gigawatt.capacity.catalog import gpu_named, model_named
from gigawatt.capacity.fit import load_calibration, shipped_efficiency_path
from gigawatt.capacity.throughput import Replica, workload_throughput
from gigawatt.cli import main


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_json_for_a_replica(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(
        capsys,
        "plan", "throughput", "--model", "llama-3.1-405b", "--gpu", "h200", "--gpus", "8",
        "--precision", "fp8", "--input", "1000", "--output", "1000", "--json",
    )  # fmt: skip
    replica = Replica(model_named("llama-3.1-405b"), gpu_named("h200"), 8, "fp8")
    expected = workload_throughput(replica, 1000, 1000)
    assert report["output_tokens_per_s"] == pytest.approx(expected.output_tokens_per_s)
    assert report["max_batch"] == report["batch"] == expected.max_batch == replica.max_batch(2000)
    assert report["ttft_s"] == pytest.approx(expected.ttft_s)
    assert report["tpot_s"] == pytest.approx(expected.tpot_s)
    assert report["output_tokens_per_s_per_gpu"] == pytest.approx(expected.output_tokens_per_s / 8)
    # The step's parts add up to the step.
    parts = report["decode_memory_s"] + report["decode_compute_s"] + report["decode_allreduce_s"]
    assert parts == pytest.approx(report["decode_step_s"])


def test_every_calibration_row_through_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    errors = []
    for row in load_calibration():
        report = run_json(
            capsys,
            "plan", "throughput", "--model", row.model, "--gpu", row.gpu,
            "--gpus", str(row.gpus), "--precision", row.precision,
            "--input", str(row.input_tokens), "--output", str(row.output_tokens), "--json",
        )  # fmt: skip
        errors.append(abs(report["output_tokens_per_s"] / row.output_tokens_per_s - 1))
    errors.sort()
    assert errors[len(errors) // 2] <= 0.20 and errors[-1] <= 0.50


def test_latency_target(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(
        capsys,
        "plan", "throughput", "--model", "llama-3.1-8b", "--gpu", "h100",
        "--input", "1000", "--output", "1000", "--tpot-ms", "20", "--json",
    )  # fmt: skip
    assert report["tpot_s"] <= 0.020 and report["batch"] < report["max_batch"]
    assert report["tpot_target_s"] == 0.020


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "throughput", "--model", "llama-3.1-8b", "--gpu", "h200"]
    assert main([*argv, "--input", "1000", "--output", "1000"]) == 0
    out = capsys.readouterr().out
    assert "llama-3.1-8b at fp8 on 1 x h200, 1,000 in / 1,000 out" in out
    assert "time per output token" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--gpu", "h20"], "gigawatt: unknown GPU 'h20'"),
        (["--gpu", "h100", "--model", "llama-3.1-405b"], "it fits on 8 or more"),
        (["--gpu", "h200", "--precision", "fp4"], "h200 has no fp4 arithmetic"),
        (["--gpu", "h200", "--tpot-ms", "0"], "--tpot-ms must be above 0"),
        (["--gpu", "h200", "--gpus", "0"], "1 or more"),
    ],
)
def test_bad_input_exits_2_saying_why(
    capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    argv = ["plan", "throughput", "--model", "llama-3.1-8b", "--input", "100", "--output", "100"]
    # A later --model replaces the earlier one.
    assert main([*argv, *extra]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_bad_catalog_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "cat.toml"
    path.write_text("[gpus.x]\nhbm_gb = 1\n")
    argv = ["plan", "throughput", "--model", "llama-3.1-8b", "--gpu", "x", "--catalog", str(path)]
    assert main([*argv, "--input", "1", "--output", "1"]) == 2
    assert f"{path}: gpus.x.hbm_tb_per_s: required" in capsys.readouterr().err


def test_fit_writes_the_factors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "efficiency.toml"
    report = run_json(capsys, "plan", "fit", "--write", str(target), "--json")
    assert report["written"] == str(target)
    shipped = tomllib.loads(shipped_efficiency_path().read_text("utf-8"))
    assert tomllib.loads(target.read_text("utf-8")) == shipped
    assert report["efficiency"] == shipped["efficiency"]
    assert len(report["rows"]) == 28
    assert report["median_abs_error"] <= 0.20 and report["worst_abs_error"] <= 0.50


def test_fit_markdown_and_roofline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "fit", "--no-write", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Fitted factors: prefill = ")
    assert "| model | GPUs | precision |" in out
    report = run_json(capsys, "plan", "fit", "--roofline", "--json")
    assert report["decode_step"] == "max(memory, compute)" and report["written"] is None


def test_fit_with_a_fixed_factor_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(capsys, "plan", "fit", "--fix", "fp4=1", "--json")
    assert report["efficiency"]["fp4"] == 1.0 and report["written"] is None
    assert main(["plan", "fit", "--fix", "fp5=1"]) == 2
    assert "no efficiency factor 'fp5'; did you mean 'fp4'?" in capsys.readouterr().err


def test_fit_that_misses_its_target_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Two rows no single set of factors can match: the same setup measured 10x apart.
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "model,gpu,gpus,precision,input_tokens,output_tokens,output_tokens_per_s\n"
        "llama-3.1-8b,h200,1,fp8,1000,1000,2000\n"
        "llama-3.1-8b,h200,1,fp8,1000,1000,20000\n"
    )
    assert main(["plan", "fit", "--calibration", str(rows), "--no-write"]) == 1
    assert "the fit misses its target" in capsys.readouterr().err


def test_plan_without_a_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan"]) == 2
    assert "throughput" in capsys.readouterr().err
