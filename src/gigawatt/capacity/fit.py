"""Fit the serving model's efficiency factors on measured throughput.

The calibration set (`capacity/data/throughput.csv`) holds measured output tokens/s of whole
tensor-parallel groups at fixed input and output lengths. A fit finds the `Efficiency` that
minimises the sum of squared log ratios predicted/measured, so a 20% miss either way costs the
same. The optimiser is Nelder-Mead over the logarithms of the factors (they stay positive and
their scales differ), restarted from its own result until a restart no longer improves it; it
starts from the same point every time, so a fit is reproducible to the digits written.

`roofline=True` fits the textbook variant instead, whose decode step is max(memory, compute)
rather than their sum; `gigawatt plan fit --roofline` prints it, so the choice of the sum can be
checked against the data (docs/capacity.md).
"""

from __future__ import annotations

import csv
import importlib.resources
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from gigawatt.capacity.catalog import did_you_mean, gpu_named, model_named
from gigawatt.capacity.throughput import Efficiency, Replica, workload_throughput
from gigawatt.errors import PlanError

# Where the search starts: round numbers of the order serving engines reach.
START = Efficiency(prefill=0.5, decode=0.5, memory=0.7, link=0.5, fp4=0.7)
FACTOR_NAMES = tuple(f.name for f in fields(Efficiency))
# Factors are written with this many significant digits; a refit must reproduce them.
DIGITS = 4


@dataclass(frozen=True, slots=True)
class CalibrationRow:
    """One measurement: output tokens/s of `gpus` x `gpu` serving `model` at `precision`."""

    model: str
    gpu: str
    gpus: int
    precision: str
    input_tokens: int
    output_tokens: int
    output_tokens_per_s: float


@dataclass(frozen=True, slots=True)
class Residual:
    row: CalibrationRow
    predicted_tokens_per_s: float
    batch: int

    @property
    def relative_error(self) -> float:
        """predicted / measured - 1: +0.10 means the model promises 10% more than was measured."""
        return self.predicted_tokens_per_s / self.row.output_tokens_per_s - 1.0


@dataclass(frozen=True, slots=True)
class Fit:
    efficiency: Efficiency
    residuals: tuple[Residual, ...]

    @property
    def median_abs_error(self) -> float:
        return float(np.median([abs(r.relative_error) for r in self.residuals]))

    @property
    def worst_abs_error(self) -> float:
        return max(abs(r.relative_error) for r in self.residuals)


def shipped_calibration_path() -> Path:
    return Path(str(importlib.resources.files("gigawatt.capacity") / "data" / "throughput.csv"))


def shipped_efficiency_path() -> Path:
    return Path(str(importlib.resources.files("gigawatt.capacity") / "data" / "efficiency.toml"))


def load_calibration(path: Path | None = None) -> tuple[CalibrationRow, ...]:
    """The rows of a calibration CSV (default: the shipped one); `#` lines are comments."""
    path = path or shipped_calibration_path()
    lines = [line for line in path.read_text("utf-8").splitlines() if not line.startswith("#")]
    rows = []
    for number, record in enumerate(csv.DictReader(io.StringIO("\n".join(lines))), start=2):
        try:
            rows.append(
                CalibrationRow(
                    model=record["model"],
                    gpu=record["gpu"],
                    gpus=int(record["gpus"]),
                    precision=record["precision"],
                    input_tokens=int(record["input_tokens"]),
                    output_tokens=int(record["output_tokens"]),
                    output_tokens_per_s=float(record["output_tokens_per_s"]),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            message = f"{path}: data row {number - 1} is not a calibration row: {exc}"
            raise PlanError(message) from exc
    if not rows:
        raise PlanError(f"{path}: no calibration rows")
    return tuple(rows)


class RooflineReplica(Replica):
    """The serving model with the roofline's decode step: max(memory, compute) + all-reduces."""

    __slots__ = ()

    def decode_step_s(self, batch: int, context_tokens: float) -> float:
        if batch <= 0:
            return 0.0
        memory_s = self.decode_memory_s(batch, context_tokens)
        compute_s = self.compute_s(batch, context_tokens, self.efficiency.decode)
        return max(memory_s, compute_s) + self.allreduce_s(batch)


def residuals(
    rows: Sequence[CalibrationRow], efficiency: Efficiency, *, roofline: bool = False
) -> tuple[Residual, ...]:
    """Each row's prediction by the serving model with `efficiency`, at its largest batch."""
    kind = RooflineReplica if roofline else Replica
    found = []
    for row in rows:
        replica = kind(
            model_named(row.model), gpu_named(row.gpu), row.gpus, row.precision, efficiency
        )
        throughput = workload_throughput(replica, row.input_tokens, row.output_tokens)
        found.append(Residual(row, throughput.output_tokens_per_s, throughput.batch))
    return tuple(found)


def fit_efficiency(
    rows: Sequence[CalibrationRow],
    start: Efficiency = START,
    *,
    roofline: bool = False,
    fixed: Mapping[str, float] | None = None,
) -> Fit:
    """The efficiency factors that best predict `rows`, rounded to DIGITS significant digits.

    `fixed` holds factors kept at a value instead of fitted, to test whether the data need them:
    fp4 = 1 treats fp4 like fp8, link = 1e9 makes the all-reduces free.
    """
    fixed = dict(fixed or {})
    unknown = sorted(set(fixed) - {f.name for f in fields(Efficiency)})
    if unknown:
        raise PlanError(
            f"no efficiency factor {unknown[0]!r}{did_you_mean(unknown[0], FACTOR_NAMES)}"
        )
    names = [f.name for f in fields(Efficiency) if f.name not in fixed]
    measured = np.array([row.output_tokens_per_s for row in rows])

    def efficiency_at(log_factors: np.ndarray) -> Efficiency:
        factors = dict(zip(names, np.exp(log_factors).tolist(), strict=True))
        return Efficiency(**factors, **fixed)

    def loss(log_factors: np.ndarray) -> float:
        found = residuals(rows, efficiency_at(log_factors), roofline=roofline)
        predicted = np.array([r.predicted_tokens_per_s for r in found])
        return float(np.sum(np.log(predicted / measured) ** 2))

    point = np.log([getattr(start, name) for name in names])
    value = loss(point)
    for _ in range(20):
        point, improved = nelder_mead(loss, point)
        if improved > value - 1e-12:
            break
        value = improved
    factors = {name: _round(math.exp(x)) for name, x in zip(names, point, strict=True)}
    efficiency = Efficiency(**factors, **fixed)
    return Fit(efficiency, residuals(rows, efficiency, roofline=roofline))


def nelder_mead(
    f: Callable[[np.ndarray], float],
    start: np.ndarray,
    *,
    step: float = 0.3,
    tolerance: float = 1e-12,
    max_iterations: int = 4000,
) -> tuple[np.ndarray, float]:
    """Minimise `f` from `start` by the Nelder-Mead simplex (reflect, expand, contract, shrink).

    Returns the best point and its value. Stops when the simplex's values differ by less than
    `tolerance` or after `max_iterations`.
    """
    size = len(start)
    simplex = [np.array(start, dtype=float)]
    for i in range(size):
        vertex = np.array(start, dtype=float)
        vertex[i] += step
        simplex.append(vertex)
    values = [f(vertex) for vertex in simplex]
    for _ in range(max_iterations):
        order = np.argsort(values, kind="stable")
        simplex = [simplex[i] for i in order]
        values = [values[i] for i in order]
        if values[-1] - values[0] < tolerance:
            break
        centroid = np.mean(simplex[:-1], axis=0)
        reflected = centroid + (centroid - simplex[-1])
        reflected_value = f(reflected)
        if reflected_value < values[0]:
            expanded = centroid + 2.0 * (centroid - simplex[-1])
            expanded_value = f(expanded)
            if expanded_value < reflected_value:
                simplex[-1], values[-1] = expanded, expanded_value
            else:
                simplex[-1], values[-1] = reflected, reflected_value
        elif reflected_value < values[-2]:
            simplex[-1], values[-1] = reflected, reflected_value
        else:
            contracted = centroid + 0.5 * (simplex[-1] - centroid)
            contracted_value = f(contracted)
            if contracted_value < values[-1]:
                simplex[-1], values[-1] = contracted, contracted_value
            else:
                for i in range(1, len(simplex)):
                    simplex[i] = simplex[0] + 0.5 * (simplex[i] - simplex[0])
                    values[i] = f(simplex[i])
    best = int(np.argmin(values))
    return simplex[best], values[best]


def efficiency_toml(efficiency: Efficiency) -> str:
    """The shipped efficiency file's text."""
    lines = [
        "# Efficiency factors of the serving model (gigawatt.capacity.throughput), fitted on",
        "# capacity/data/throughput.csv. Written by `gigawatt plan fit`; do not edit by hand.",
        "[efficiency]",
    ]
    lines += [f"{f.name} = {getattr(efficiency, f.name)!r}" for f in fields(Efficiency)]
    return "\n".join(lines) + "\n"


def residual_markdown(fit: Fit) -> str:
    """The fit as markdown: factors, then every row's measured and predicted tokens/s."""
    factors = ", ".join(f"{f.name} = {getattr(fit.efficiency, f.name)}" for f in fields(Efficiency))
    lines = [
        f"Fitted factors: {factors}.",
        "",
        f"Median absolute relative error {fit.median_abs_error:.1%}, "
        f"worst {fit.worst_abs_error:.1%}, over {len(fit.residuals)} rows.",
        "",
        "| model | GPUs | precision | input | output | measured tok/s | predicted tok/s "
        "| batch | residual |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in fit.residuals:
        row = r.row
        lines.append(
            f"| {row.model} | {row.gpus} x {row.gpu} | {row.precision} | {row.input_tokens:,} "
            f"| {row.output_tokens:,} | {row.output_tokens_per_s:,.0f} "
            f"| {r.predicted_tokens_per_s:,.0f} | {r.batch:,} | {r.relative_error:+.1%} |"
        )
    return "\n".join(lines) + "\n"


def _round(value: float) -> float:
    return float(f"{value:.{DIGITS}g}")
