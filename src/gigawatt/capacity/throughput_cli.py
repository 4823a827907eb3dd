"""`gigawatt plan throughput` (a replica on a workload) and `gigawatt plan fit` (calibration)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from gigawatt.capacity.catalog import PRECISIONS, gpu_named, model_named
from gigawatt.capacity.fit import (
    Fit,
    efficiency_toml,
    fit_efficiency,
    load_calibration,
    residual_markdown,
    shipped_efficiency_path,
)
from gigawatt.capacity.throughput import Replica, Throughput, workload_throughput
from gigawatt.errors import PlanError, PolicyError
from gigawatt.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from gigawatt.cli import Subparsers


# The calibration target: a fit worse than this fails `plan fit` (exit 1).
TARGET_MEDIAN_ABS_ERROR = 0.20
TARGET_WORST_ABS_ERROR = 0.50


# -- plan throughput ------------------------------------------------------------------------


def add_throughput(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "throughput",
        help="tokens/s, batch and latency of one tensor-parallel replica on a workload",
        description="What one replica (GPUS GPUs of one kind, tensor-parallel, one copy of the "
        "weights) serves on requests of INPUT tokens in and OUTPUT tokens out: the largest batch "
        "whose KV cache fits, output tokens/s of the whole group, time to first token and time "
        "per output token. With --tpot-ms, the best throughput whose time per output token "
        "stays within the target.",
    )
    parser.add_argument("--model", required=True, help="a catalog model, e.g. llama-3.1-8b")
    parser.add_argument("--gpu", required=True, help="a catalog GPU, e.g. h200")
    parser.add_argument("--gpus", type=int, default=1, help="GPUs in the replica (default: 1)")
    parser.add_argument(
        "--precision", default="fp8", help=f"{' | '.join(PRECISIONS)} (default: fp8)"
    )
    parser.add_argument("--input", type=int, required=True, metavar="TOKENS", help="prompt tokens")
    parser.add_argument("--output", type=int, required=True, metavar="TOKENS", help="output tokens")
    parser.add_argument(
        "--tpot-ms", type=float, metavar="MS", help="target time per output token, milliseconds"
    )
    parser.add_argument("--catalog", type=Path, metavar="FILE", help="extra GPUs and models (TOML)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=plan_throughput)


def plan_throughput(args: argparse.Namespace) -> int:
    if args.tpot_ms is not None and not args.tpot_ms > 0:
        return _usage(f"--tpot-ms must be above 0, not {args.tpot_ms:g}")
    try:
        replica = Replica(
            model_named(args.model, args.catalog),
            gpu_named(args.gpu, args.catalog),
            args.gpus,
            args.precision,
        )
        target_s = args.tpot_ms / 1e3 if args.tpot_ms is not None else None
        result = workload_throughput(replica, args.input, args.output, target_s)
    except PlanError as exc:
        return _usage(str(exc))
    except PolicyError as exc:
        for problem in exc.problems:
            print(f"{exc.source}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    report = throughput_report(replica, args.input, args.output, result, target_s)
    if args.json:
        print(json.dumps(report))
    else:
        _print_throughput(report)
    return EXIT_OK


def throughput_report(
    replica: Replica,
    input_tokens: int,
    output_tokens: int,
    result: Throughput,
    tpot_target_s: float | None = None,
) -> dict[str, Any]:
    """Everything `plan throughput --json` prints: the inputs, the answer and its parts."""
    context = input_tokens + output_tokens / 2
    return {
        "model": replica.arch.name,
        "gpu": replica.gpu.name,
        "gpus": replica.gpus,
        "precision": replica.precision,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "tpot_target_s": tpot_target_s,
        "output_tokens_per_s": result.output_tokens_per_s,
        "output_tokens_per_s_per_gpu": result.output_tokens_per_s / replica.gpus,
        "max_batch": result.max_batch,
        "batch": result.batch,
        "ttft_s": result.ttft_s,
        "tpot_s": result.tpot_s,
        "weights_bytes": replica.weights_bytes,
        "kv_bytes_per_token": replica.kv_bytes_per_token,
        "kv_capacity_bytes": replica.kv_capacity_bytes,
        "prefill_s": replica.prefill_s(input_tokens),
        "decode_step_s": replica.decode_step_s(result.batch, context),
        "decode_memory_s": replica.decode_memory_s(result.batch, context),
        "decode_compute_s": replica.compute_s(result.batch, context, replica.efficiency.decode),
        "decode_allreduce_s": replica.allreduce_s(result.batch),
        "efficiency": asdict(replica.efficiency),
    }


def _print_throughput(report: dict[str, Any]) -> None:
    title = (
        f"{report['model']} at {report['precision']} on {report['gpus']} x {report['gpu']}, "
        f"{report['input_tokens']:,} in / {report['output_tokens']:,} out"
    )
    table = Table(show_header=False)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    target = report["tpot_target_s"]
    rows = [
        ("output tokens/s (replica)", f"{report['output_tokens_per_s']:,.0f}"),
        ("output tokens/s per GPU", f"{report['output_tokens_per_s_per_gpu']:,.0f}"),
        (
            "batch (largest that fits)" if target is None else "batch (meeting the target)",
            f"{report['batch']:,} of {report['max_batch']:,}",
        ),
        ("time to first token", _ms(report["ttft_s"])),
        ("time per output token", _ms(report["tpot_s"])),
        ("target per output token", "none" if target is None else _ms(target)),
        ("weights", f"{report['weights_bytes'] / 1e9:,.1f} GB"),
        ("KV cache per token", f"{report['kv_bytes_per_token'] / 1024:,.0f} KiB"),
        ("KV cache capacity", f"{report['kv_capacity_bytes'] / 1e9:,.1f} GB"),
        ("prefill of one prompt", _ms(report["prefill_s"])),
        ("decode step: memory", _ms(report["decode_memory_s"])),
        ("decode step: compute", _ms(report["decode_compute_s"])),
        ("decode step: all-reduce", _ms(report["decode_allreduce_s"])),
        ("decode step", _ms(report["decode_step_s"])),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console = Console(file=sys.stdout)
    console.print(title, style="bold", highlight=False)
    console.print(table)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms"


# -- plan fit -------------------------------------------------------------------------------


def add_fit(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "fit",
        help="refit the serving model's efficiency factors on measured throughput",
        description="Fit the efficiency factors of the serving model on the calibration set "
        "(measured output tokens/s), write them to the shipped efficiency file, and print "
        "every row's measured and predicted value. Exits 1 when the fit misses its target "
        "(median absolute error above 20%% or any row above 50%%).",
    )
    parser.add_argument(
        "--calibration", type=Path, metavar="CSV", help="calibration rows (default: the shipped)"
    )
    parser.add_argument(
        "--write",
        type=Path,
        metavar="FILE",
        help="where to write the factors (default: the shipped efficiency file)",
    )
    parser.add_argument("--no-write", action="store_true", help="print the fit, write nothing")
    parser.add_argument(
        "--roofline",
        action="store_true",
        help="fit the textbook decode step, max(memory, compute), for comparison; writes nothing",
    )
    parser.add_argument(
        "--fix",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="keep a factor at a value instead of fitting it, e.g. fp4=1 or link=1e9 (no "
        "all-reduce cost), to see whether the data need it; writes nothing",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object")
    output.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.set_defaults(run=plan_fit)


def plan_fit(args: argparse.Namespace) -> int:
    fixed = {}
    for item in args.fix:
        name, _, value = item.partition("=")
        try:
            fixed[name.strip()] = float(value)
        except ValueError:
            return _usage(f"--fix takes NAME=VALUE with a number, not {item!r}")
    try:
        rows = load_calibration(args.calibration)
        fit = fit_efficiency(rows, roofline=args.roofline, fixed=fixed)
    except OSError as exc:
        return _usage(f"cannot read {args.calibration}: {exc.strerror or exc}")
    except PlanError as exc:
        return _usage(str(exc))
    written: Path | None = None
    if not (args.no_write or args.roofline or fixed):
        written = args.write or shipped_efficiency_path()
        written.write_text(efficiency_toml(fit.efficiency), "utf-8")
    if args.json:
        print(json.dumps(fit_report(fit, args.roofline, written) | {"fixed": fixed}))
    elif args.markdown:
        sys.stdout.write(residual_markdown(fit))
    else:
        _print_fit(fit, args.roofline, written, fixed)
    met = (
        fit.median_abs_error <= TARGET_MEDIAN_ABS_ERROR
        and fit.worst_abs_error <= TARGET_WORST_ABS_ERROR
    )
    if not met:
        print(
            f"gigawatt: the fit misses its target: median absolute error "
            f"{fit.median_abs_error:.1%} (at most {TARGET_MEDIAN_ABS_ERROR:.0%}), worst "
            f"{fit.worst_abs_error:.1%} (at most {TARGET_WORST_ABS_ERROR:.0%})",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def fit_report(fit: Fit, roofline: bool, written: Path | None) -> dict[str, Any]:
    return {
        "decode_step": "max(memory, compute)" if roofline else "memory + compute",
        "efficiency": asdict(fit.efficiency),
        "median_abs_error": fit.median_abs_error,
        "worst_abs_error": fit.worst_abs_error,
        "written": str(written) if written else None,
        "rows": [
            {
                **asdict(r.row),
                "predicted_tokens_per_s": r.predicted_tokens_per_s,
                "batch": r.batch,
                "relative_error": r.relative_error,
            }
            for r in fit.residuals
        ],
    }


def _print_fit(fit: Fit, roofline: bool, written: Path | None, fixed: dict[str, float]) -> None:
    step = "max(memory, compute)" if roofline else "memory + compute"
    if fixed:
        step += "; fixed: " + ", ".join(f"{name} = {value:g}" for name, value in fixed.items())
    factors = ", ".join(f"{name} {value:g}" for name, value in asdict(fit.efficiency).items())
    table = Table(box=None, pad_edge=False, header_style="bold")
    for header in ("model", "replica", "in/out", "measured", "predicted", "batch", "residual"):
        left = header in ("model", "replica")
        table.add_column(header, justify="left" if left else "right", no_wrap=True)
    for r in fit.residuals:
        row = r.row
        table.add_row(
            row.model,
            f"{row.gpus}x{row.gpu} {row.precision}",
            f"{row.input_tokens}/{row.output_tokens}",
            f"{row.output_tokens_per_s:,.0f}",
            f"{r.predicted_tokens_per_s:,.0f}",
            f"{r.batch:,}",
            f"{r.relative_error:+.1%}",
        )
    console = Console(file=sys.stdout)
    console.print(f"decode step = {step}", style="bold", highlight=False)
    console.print(f"factors: {factors}", highlight=False)
    console.print(table)
    console.print(
        f"median |residual| {fit.median_abs_error:.1%}, worst {fit.worst_abs_error:.1%}"
        + (f"; written to {written}" if written else "; nothing written"),
        highlight=False,
    )


def _usage(message: str) -> int:
    print(f"gigawatt: {message}", file=sys.stderr)
    return EXIT_USAGE
