"""The GPU and model catalogs: hardware numbers and architectures, each entry with its source.

The shipped entries live in `capacity/data/gpus.toml` and `capacity/data/models.toml`. A user adds
or replaces entries with a TOML file in the same format (`--catalog FILE` on the plan commands);
one file may hold both `[gpus.NAME]` and `[models.NAME]` tables:

    [gpus.NAME]                       sizes in decimal units
    hbm_gb = 141                      required
    hbm_tb_per_s = 4.8                required
    bf16_tflops = 989.4               dense peak; at least one of bf16/fp8/fp4_tflops
    fp8_tflops = 1978.9
    fp4_tflops = 9000
    board_watts = 700                 required
    link_gb_per_s = 900               scale-up link per GPU (NVLink), both directions; default 900
    aliases = ["other-name"]
    source = "where the numbers come from"      required

    [models.NAME]
    params = 70_553_706_496           required; all of the weights
    active_params = 70_553_706_496    default params; the weights one token goes through
    layers = 80                       required, like hidden_size, heads, head_dim, max_context
    hidden_size = 8192
    heads = 64
    kv_heads = 8                      default heads
    head_dim = 128
    kv_latent_dim = 576               multi-head latent attention: cached values per token and layer
    experts = 8                       mixture of experts: routed experts per layer (default 1)
    experts_per_token = 2             default 1
    max_context = 131072
    source = "..."                    required
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gigawatt.errors import PlanError, PolicyError, Problem
from gigawatt.policy.load import parse_toml

PRECISIONS = ("bf16", "fp8", "fp4")


@dataclass(frozen=True, slots=True)
class Gpu:
    """One accelerator. `flops_per_s` holds (precision, dense peak FLOP/s) pairs."""

    name: str
    hbm_bytes: float
    hbm_bytes_per_s: float
    flops_per_s: tuple[tuple[str, float], ...]
    board_watts: float
    link_bytes_per_s: float = 900e9
    source: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def precisions(self) -> tuple[str, ...]:
        return tuple(precision for precision, _ in self.flops_per_s)

    def peak_flops(self, precision: str) -> float:
        """Dense peak FLOP/s at `precision`; PlanError when this GPU has no such precision."""
        for name, flops in self.flops_per_s:
            if name == precision:
                return flops
        if precision not in PRECISIONS:
            raise PlanError(f"unknown precision {precision!r}{did_you_mean(precision, PRECISIONS)}")
        raise PlanError(
            f"{self.name} has no {precision} arithmetic; it supports {', '.join(self.precisions)}"
        )


@dataclass(frozen=True, slots=True)
class ModelArch:
    """A transformer's architecture, as far as serving cost depends on it."""

    name: str
    params: int
    active_params: int
    layers: int
    hidden_size: int
    heads: int
    kv_heads: int
    head_dim: int
    max_context: int
    kv_latent_dim: int | None = None
    experts: int = 1
    experts_per_token: int = 1
    source: str = ""

    @property
    def is_moe(self) -> bool:
        return self.experts > self.experts_per_token

    @property
    def kv_values_per_token(self) -> int:
        """Values cached per token over all layers: a key and a value per KV head, or one latent.

        Llama-3.1-8B: 2 * 32 layers * 8 KV heads * 128 = 65,536; DeepSeek-V3: 61 * 576 = 35,136.
        """
        if self.kv_latent_dim is not None:
            return self.layers * self.kv_latent_dim
        return 2 * self.layers * self.kv_heads * self.head_dim

    @property
    def expert_params(self) -> float:
        """Parameters of one routed expert summed over the layers (0 for a dense model).

        Every token uses the shared weights plus experts_per_token experts, so
        params - active_params = (experts - experts_per_token) * expert_params.
        """
        if not self.is_moe:
            return 0.0
        return (self.params - self.active_params) / (self.experts - self.experts_per_token)

    def params_read(self, tokens: int) -> float:
        """Expected parameters a forward pass over `tokens` tokens reads from memory.

        A dense model reads all of them. A mixture of experts reads its shared weights plus the
        experts at least one token is routed to; with uniform routing, an expert escapes one token
        with probability 1 - k/E, so E * (1 - (1 - k/E)^tokens) experts are touched per layer.
        Mixtral-8x7B at one token: 12.88e9 active params; at 64 tokens practically all 46.70e9.
        """
        if not self.is_moe or tokens <= 0:
            return float(self.params) if tokens > 0 else 0.0
        shared = self.active_params - self.experts_per_token * self.expert_params
        untouched = (1.0 - self.experts_per_token / self.experts) ** tokens
        return shared + self.expert_params * self.experts * (1.0 - untouched)

    def attention_flops_per_token(self, context_tokens: float) -> float:
        """FLOPs of one token's attention over `context_tokens` cached tokens.

        Scores and the weighted sum each take 2 * heads * dim multiply-adds per cached token and
        layer: 4 * layers * heads * head_dim * context. With latent attention the cache is read in
        its latent form (weights absorbed), so dim is kv_latent_dim. Llama-3.1-8B at 1,000 tokens:
        4 * 32 * 32 * 128 * 1000 = 524,288,000 FLOPs, 3% of its 2 * 8.03e9 weight FLOPs.
        """
        dim = self.kv_latent_dim if self.kv_latent_dim is not None else self.head_dim
        return 4.0 * self.layers * self.heads * dim * context_tokens


# -- loading ---------------------------------------------------------------------------------

_GPU_KEYS = {
    "hbm_gb",
    "hbm_tb_per_s",
    "bf16_tflops",
    "fp8_tflops",
    "fp4_tflops",
    "board_watts",
    "link_gb_per_s",
    "aliases",
    "source",
}
_MODEL_INT_KEYS = (
    "params",
    "active_params",
    "layers",
    "hidden_size",
    "heads",
    "kv_heads",
    "head_dim",
    "kv_latent_dim",
    "experts",
    "experts_per_token",
    "max_context",
)
_MODEL_KEYS = {*_MODEL_INT_KEYS, "source"}


def load_gpus(extra: Path | None = None) -> dict[str, Gpu]:
    """The shipped GPUs, plus (replacing same-named ones) those of the `extra` TOML file."""
    gpus = dict(_builtin()[0])
    if extra is not None:
        gpus.update(_load_file(extra)[0])
    return gpus


def load_models(extra: Path | None = None) -> dict[str, ModelArch]:
    """The shipped models, plus (replacing same-named ones) those of the `extra` TOML file."""
    models = dict(_builtin()[1])
    if extra is not None:
        models.update(_load_file(extra)[1])
    return models


def gpu_named(name: str, extra: Path | None = None) -> Gpu:
    """The GPU called `name` or one of its aliases, ignoring case; PlanError with a hint if none."""
    gpus = load_gpus(extra)
    wanted = name.strip().lower()
    for gpu in gpus.values():
        if wanted == gpu.name or wanted in gpu.aliases:
            return gpu
    names = sorted(gpus)
    aliases = [alias for gpu in gpus.values() for alias in gpu.aliases]
    hint = did_you_mean(wanted, [*names, *aliases])
    raise PlanError(f"unknown GPU {name!r} (known: {', '.join(names)}){hint}")


def model_named(name: str, extra: Path | None = None) -> ModelArch:
    """The model called `name`, ignoring case; PlanError with a "did you mean" hint if none."""
    models = load_models(extra)
    wanted = name.strip().lower()
    if wanted in models:
        return models[wanted]
    names = sorted(models)
    hint = did_you_mean(wanted, names)
    raise PlanError(f"unknown model {name!r} (known: {', '.join(names)}){hint}")


def did_you_mean(name: str, choices: Any) -> str:
    """A "; did you mean 'x'?" suffix naming the closest of `choices`; "" when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


@functools.cache
def _builtin() -> tuple[dict[str, Gpu], dict[str, ModelArch]]:
    data = importlib.resources.files("gigawatt.capacity") / "data"
    gpus = _parse(tomllib.loads((data / "gpus.toml").read_text("utf-8")), "gpus.toml")[0]
    models = _parse(tomllib.loads((data / "models.toml").read_text("utf-8")), "models.toml")[1]
    return gpus, models


def _load_file(path: Path) -> tuple[dict[str, Gpu], dict[str, ModelArch]]:
    return _parse(read_toml(path), str(path))


def read_toml(path: Path) -> dict[str, Any]:
    """A planner file (catalog, sites, fleet) as TOML tables; `PolicyError` when it cannot be
    read or parsed."""
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise PolicyError(str(path), [Problem("", f"cannot read: {exc.strerror or exc}")]) from exc
    return parse_toml(text, str(path))


def _parse(raw: Mapping[str, Any], source: str) -> tuple[dict[str, Gpu], dict[str, ModelArch]]:
    problems: list[Problem] = []
    # One user catalog may hold GPUs, models and sites; sites are read by `sites.py`.
    tables = ["gpus", "models", "sites"]
    for key in raw:
        if key not in tables:
            problems.append(Problem(key, f"unknown table{did_you_mean(key, tables)}"))
    gpus: dict[str, Gpu] = {}
    models: dict[str, ModelArch] = {}
    for name, table in _tables(raw, "gpus", problems):
        gpu = _parse_gpu(name, table, f"gpus.{name}", problems)
        if gpu is not None:
            gpus[gpu.name] = gpu
    for name, table in _tables(raw, "models", problems):
        model = _parse_model(name, table, f"models.{name}", problems)
        if model is not None:
            models[model.name] = model
    if problems:
        raise PolicyError(source, problems)
    return gpus, models


def _tables(
    raw: Mapping[str, Any], key: str, problems: list[Problem]
) -> list[tuple[str, Mapping[str, Any]]]:
    section = raw.get(key, {})
    if not isinstance(section, Mapping):
        problems.append(Problem(key, "must be a table of named entries"))
        return []
    found = []
    for name, table in section.items():
        if not isinstance(table, Mapping):
            problems.append(Problem(f"{key}.{name}", "must be a table"))
        else:
            found.append((name.lower(), table))
    return found


def _unknown_keys(
    table: Mapping[str, Any], allowed: set[str], path: str, problems: list[Problem]
) -> None:
    for key, value in table.items():
        if key not in allowed and isinstance(value, Mapping):
            section, _, name = f"{path}.{key}".partition(".")
            quoted = f'[{section}."{name}"]'
            problems.append(Problem(f"{path}.{key}", f"a name with dots must be quoted: {quoted}"))
        elif key not in allowed:
            problems.append(Problem(f"{path}.{key}", f"unknown key{did_you_mean(key, allowed)}"))


def _number(
    table: Mapping[str, Any], key: str, path: str, problems: list[Problem], *, required: bool
) -> float | None:
    value = table.get(key)
    if value is None:
        if required:
            problems.append(Problem(f"{path}.{key}", "required"))
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(Problem(f"{path}.{key}", f"must be a number, not {value!r}"))
        return None
    if value <= 0:
        problems.append(Problem(f"{path}.{key}", f"must be positive, not {value!r}"))
        return None
    return float(value)


def _source(table: Mapping[str, Any], path: str, problems: list[Problem]) -> str:
    source = table.get("source")
    if not isinstance(source, str) or not source.strip():
        problems.append(Problem(f"{path}.source", "required: say where the numbers come from"))
        return ""
    return source


def _parse_gpu(
    name: str, table: Mapping[str, Any], path: str, problems: list[Problem]
) -> Gpu | None:
    before = len(problems)
    _unknown_keys(table, _GPU_KEYS, path, problems)
    if any(isinstance(value, Mapping) for value in table.values()):
        return None  # a dotted name, reported by _unknown_keys; its "required" keys are noise
    hbm_gb = _number(table, "hbm_gb", path, problems, required=True)
    hbm_tb_per_s = _number(table, "hbm_tb_per_s", path, problems, required=True)
    board_watts = _number(table, "board_watts", path, problems, required=True)
    link_gb_per_s = _number(table, "link_gb_per_s", path, problems, required=False)
    flops = []
    for precision in PRECISIONS:
        tflops = _number(table, f"{precision}_tflops", path, problems, required=False)
        if tflops is not None:
            flops.append((precision, tflops * 1e12))
    if not flops and len(problems) == before:
        problems.append(Problem(path, "needs at least one of bf16_tflops, fp8_tflops, fp4_tflops"))
    aliases = table.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        problems.append(Problem(f"{path}.aliases", "must be a list of names"))
        aliases = []
    source = _source(table, path, problems)
    if len(problems) > before:
        return None
    assert hbm_gb is not None and hbm_tb_per_s is not None and board_watts is not None
    return Gpu(
        name=name,
        hbm_bytes=hbm_gb * 1e9,
        hbm_bytes_per_s=hbm_tb_per_s * 1e12,
        flops_per_s=tuple(flops),
        board_watts=board_watts,
        link_bytes_per_s=(link_gb_per_s or 900.0) * 1e9,
        source=source,
        aliases=tuple(a.lower() for a in aliases),
    )


def _parse_model(
    name: str, table: Mapping[str, Any], path: str, problems: list[Problem]
) -> ModelArch | None:
    before = len(problems)
    _unknown_keys(table, _MODEL_KEYS, path, problems)
    if any(isinstance(value, Mapping) for value in table.values()):
        return None  # a dotted name, reported by _unknown_keys; its "required" keys are noise
    optional = {"active_params", "kv_heads", "kv_latent_dim", "experts", "experts_per_token"}
    values: dict[str, int] = {}
    for key in _MODEL_INT_KEYS:
        value = _number(table, key, path, problems, required=key not in optional)
        if value is None:
            continue
        if value != int(value):
            problems.append(Problem(f"{path}.{key}", f"must be a whole number, not {value!r}"))
            continue
        values[key] = int(value)
    source = _source(table, path, problems)
    if len(problems) > before:
        return None
    model = ModelArch(
        name=name,
        params=values["params"],
        active_params=values.get("active_params", values["params"]),
        layers=values["layers"],
        hidden_size=values["hidden_size"],
        heads=values["heads"],
        kv_heads=values.get("kv_heads", values["heads"]),
        head_dim=values["head_dim"],
        max_context=values["max_context"],
        kv_latent_dim=values.get("kv_latent_dim"),
        experts=values.get("experts", 1),
        experts_per_token=values.get("experts_per_token", 1),
        source=source,
    )
    if model.active_params > model.params:
        problems.append(Problem(f"{path}.active_params", "cannot exceed params"))
    if model.experts_per_token > model.experts:
        problems.append(Problem(f"{path}.experts_per_token", "cannot exceed experts"))
    if model.experts > 1 and model.active_params == model.params:
        problems.append(
            Problem(f"{path}.active_params", "a mixture of experts needs active_params < params")
        )
    if model.kv_heads > model.heads:
        problems.append(Problem(f"{path}.kv_heads", "cannot exceed heads"))
    return None if len(problems) > before else model
