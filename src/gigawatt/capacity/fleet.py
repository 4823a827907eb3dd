"""The fleet file: which GPUs serve which of a policy's models, shared by `plan` and `simulate`.

    name = "today"                  optional; default the file's stem
    catalog = "my-gpus.toml"        optional; extra GPUs and models, relative to this file

    [[pools]]                       one or more
    model = "large"                 a model name of the policy
    arch = "llama-3.1-405b"         a model of the catalog
    gpu = "h200"                    a GPU of the catalog
    precision = "fp8"               bf16 | fp8 | fp4, one the GPU has
    gpus_per_replica = 8            the tensor-parallel group
    gpus = 40_000                   a multiple of gpus_per_replica; or replicas = 5_000
    tpot_ms = 50                    optional: serve within this time per output token (the
                                    batch is the largest that meets it); default: the largest
                                    batch whose KV cache fits

Several pools may serve one model (say H100 and B200 replicas of it). Every problem in a file is
reported at once, each with its key path (`pools[1].gpu`), as a `PolicyError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gigawatt.capacity.catalog import (
    PRECISIONS,
    Gpu,
    did_you_mean,
    gpu_named,
    model_named,
    read_toml,
)
from gigawatt.capacity.throughput import Replica, Throughput, does_not_fit, workload_throughput
from gigawatt.errors import PlanError, PolicyError, Problem

_TOP_KEYS = {"name", "catalog", "pools"}
_POOL_KEYS = {
    "model",
    "arch",
    "gpu",
    "precision",
    "gpus_per_replica",
    "gpus",
    "replicas",
    "tpot_ms",
}


@dataclass(frozen=True, slots=True)
class Pool:
    """`replicas` identical replicas serving the policy model `model`."""

    model: str
    replica: Replica
    replicas: int
    tpot_target_s: float | None = None  # the time per output token the pool is run at

    @property
    def gpus(self) -> int:
        return self.replicas * self.replica.gpus

    def throughput(self, input_tokens: int, output_tokens: int) -> Throughput:
        """One replica's steady state on this workload, within the pool's latency target."""
        return workload_throughput(self.replica, input_tokens, output_tokens, self.tpot_target_s)


@dataclass(frozen=True, slots=True)
class Fleet:
    """Named pools of replicas; see the module docstring for the file format."""

    name: str
    pools: tuple[Pool, ...]

    @property
    def gpus(self) -> int:
        return sum(pool.gpus for pool in self.pools)

    @property
    def models(self) -> tuple[str, ...]:
        """The policy models served, in the order their first pool appears."""
        return tuple(dict.fromkeys(pool.model for pool in self.pools))

    def pools_for(self, model: str) -> tuple[Pool, ...]:
        """The pools serving the policy model `model` (empty when none does)."""
        return tuple(pool for pool in self.pools if pool.model == model)

    def scaled(self, fraction: float) -> Fleet:
        """The fleet with every pool's replicas times `fraction`, rounded, at least 1 where any.

        Used to simulate a sample of the users against the same share of the fleet.
        """
        if not math.isfinite(fraction) or fraction <= 0:
            raise PlanError(f"a fleet can only be scaled by a positive fraction, not {fraction}")
        pools = tuple(
            replace(pool, replicas=max(1, round(pool.replicas * fraction)) if pool.replicas else 0)
            for pool in self.pools
        )
        return replace(self, pools=pools)

    def with_added_gpus(self, gpu: Gpu | str, count: int) -> Fleet:
        """The fleet plus `count` GPUs of kind `gpu`, split among the pools in proportion to their
        GPUs now, each share serving the same model, arch, precision and replica size.

        A share becomes whole replicas; GPUs left over by the rounding go, a replica at a time, to
        the pools with the largest remainders while enough are left. Shares on a GPU kind already
        in a matching pool join it; others form new pools. PlanError when the new GPU cannot hold
        a pool's replica (it lacks the precision, or the weights do not fit).
        """
        new_gpu = gpu_named(gpu) if isinstance(gpu, str) else gpu
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise PlanError(f"GPUs to add must be a whole number, at least 0, not {count!r}")
        total = self.gpus
        if total == 0:
            raise PlanError("a fleet with no GPUs has no proportions to split new GPUs by")
        replicas_of = [replace(pool.replica, gpu=new_gpu) for pool in self.pools]
        for pool, new in zip(self.pools, replicas_of, strict=True):
            if new.max_batch(1) < 1:
                raise PlanError(f"pool for {pool.model!r}: {does_not_fit(new, 1)}")
        shares = [count * pool.gpus / total for pool in self.pools]
        added = [math.floor(share / r.gpus) for share, r in zip(shares, replicas_of, strict=True)]
        left = count - sum(n * r.gpus for n, r in zip(added, replicas_of, strict=True))
        by_remainder = sorted(
            range(len(shares)),
            key=lambda i: shares[i] / replicas_of[i].gpus - added[i],
            reverse=True,
        )
        for i in by_remainder:
            if left >= replicas_of[i].gpus:
                added[i] += 1
                left -= replicas_of[i].gpus
        pools = list(self.pools)
        for new, extra, pool in zip(replicas_of, added, self.pools, strict=True):
            if extra == 0:
                continue
            match = next(
                (
                    i
                    for i, p in enumerate(pools)
                    if p.model == pool.model
                    and p.replica == new
                    and p.tpot_target_s == pool.tpot_target_s
                ),
                None,
            )
            if match is None:
                pools.append(replace(pool, replica=new, replicas=extra))
            else:
                pools[match] = replace(pools[match], replicas=pools[match].replicas + extra)
        return replace(self, pools=tuple(pools))

    def with_removed_gpus(self, gpu: Gpu | str, count: int) -> Fleet:
        """The fleet less `count` GPUs of kind `gpu` (a site going away), taken from the pools on
        that GPU in proportion to their GPUs, a whole replica at a time.

        A pool's share rounds up to whole replicas, so at least `count` GPUs go (a replica cannot
        run on part of its group). PlanError when the fleet has fewer GPUs of that kind.
        """
        name = gpu_named(gpu).name if isinstance(gpu, str) else gpu.name
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise PlanError(f"GPUs to remove must be a whole number, at least 0, not {count!r}")
        on_gpu = [i for i, pool in enumerate(self.pools) if pool.replica.gpu.name == name]
        have = sum(self.pools[i].gpus for i in on_gpu)
        if count > have:
            raise PlanError(
                f"fleet {self.name!r} has {have:,} {name} GPUs; it cannot lose {count:,}"
            )
        pools = list(self.pools)
        for i in on_gpu:
            pool = pools[i]
            share = count * pool.gpus / have if have else 0.0
            gone = min(pool.replicas, math.ceil(share / pool.replica.gpus - 1e-9))
            pools[i] = replace(pool, replicas=pool.replicas - gone)
        return replace(self, pools=tuple(p for p in pools if p.replicas > 0))


def load_fleet(path: Path) -> Fleet:
    """Read and check a fleet file; PolicyError listing every problem with its key path."""
    path = Path(path)
    raw = read_toml(path)
    return parse_fleet(raw, source=str(path), base=path.parent, default_name=path.stem)


def parse_fleet(
    raw: Mapping[str, Any], *, source: str, base: Path, default_name: str = "fleet"
) -> Fleet:
    """Check a fleet already read from TOML; `base` resolves a relative `catalog` path."""
    problems: list[Problem] = []
    for key in raw:
        if key not in _TOP_KEYS:
            problems.append(Problem(key, f"unknown key{did_you_mean(key, _TOP_KEYS)}"))
    name = raw.get("name", default_name)
    if not isinstance(name, str) or not name:
        problems.append(Problem("name", "must be a non-empty string"))
        name = default_name
    catalog = raw.get("catalog")
    catalog_path: Path | None = None
    if catalog is not None:
        if not isinstance(catalog, str):
            problems.append(Problem("catalog", "must be a file name"))
        else:
            catalog_path = base / catalog
    pools_raw = raw.get("pools")
    pools: list[Pool] = []
    if not isinstance(pools_raw, list) or not pools_raw:
        problems.append(Problem("pools", "required: at least one [[pools]] table"))
        pools_raw = []
    for index, table in enumerate(pools_raw):
        pool = _parse_pool(table, f"pools[{index}]", catalog_path, problems)
        if pool is not None:
            pools.append(pool)
    if problems:
        raise PolicyError(source, problems)
    return Fleet(name=name, pools=tuple(pools))


def _parse_pool(
    table: Any, path: str, catalog: Path | None, problems: list[Problem]
) -> Pool | None:
    if not isinstance(table, Mapping):
        problems.append(Problem(path, "must be a table"))
        return None
    before = len(problems)
    for key in table:
        if key not in _POOL_KEYS:
            problems.append(Problem(f"{path}.{key}", f"unknown key{did_you_mean(key, _POOL_KEYS)}"))
    text = {}
    for key in ("model", "arch", "gpu", "precision"):
        value = table.get(key)
        if not isinstance(value, str) or not value:
            problems.append(Problem(f"{path}.{key}", "required: a name"))
        else:
            text[key] = value
    counts = {}
    for key in ("gpus_per_replica", "gpus", "replicas"):
        value = table.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.append(Problem(f"{path}.{key}", f"must be a whole number, not {value!r}"))
        else:
            counts[key] = value
    if "gpus_per_replica" not in counts and "gpus_per_replica" not in table:
        problems.append(Problem(f"{path}.gpus_per_replica", "required"))
    elif counts.get("gpus_per_replica") == 0:
        problems.append(Problem(f"{path}.gpus_per_replica", "must be at least 1"))
    tpot_ms = table.get("tpot_ms")
    if tpot_ms is not None and (
        isinstance(tpot_ms, bool)
        or not isinstance(tpot_ms, int | float)
        or not math.isfinite(tpot_ms)
        or tpot_ms <= 0
    ):
        problems.append(
            Problem(f"{path}.tpot_ms", f"must be milliseconds above 0, not {tpot_ms!r}")
        )
    if ("gpus" in table) == ("replicas" in table):
        problems.append(Problem(path, "give either gpus or replicas, not both or neither"))
    if len(problems) > before:
        return None
    if text["precision"] not in PRECISIONS:
        problems.append(
            Problem(
                f"{path}.precision",
                f"must be one of {', '.join(PRECISIONS)}"
                f"{did_you_mean(text['precision'], PRECISIONS)}",
            )
        )
        return None
    try:
        arch = model_named(text["arch"], catalog)
    except PlanError as exc:
        problems.append(Problem(f"{path}.arch", str(exc)))
        return None
    try:
        gpu = gpu_named(text["gpu"], catalog)
    except PlanError as exc:
        problems.append(Problem(f"{path}.gpu", str(exc)))
        return None
    per_replica = counts["gpus_per_replica"]
    try:
        replica = Replica(arch, gpu, per_replica, text["precision"])
    except PlanError as exc:
        problems.append(Problem(f"{path}.precision", str(exc)))
        return None
    if replica.max_batch(1) < 1:
        problems.append(Problem(f"{path}.gpus_per_replica", does_not_fit(replica, 1)))
        return None
    if "replicas" in counts:
        replicas = counts["replicas"]
    else:
        gpus = counts["gpus"]
        if gpus % per_replica:
            below = gpus - gpus % per_replica
            problems.append(
                Problem(
                    f"{path}.gpus",
                    f"{gpus:,} is not a multiple of gpus_per_replica = {per_replica}; "
                    f"use {below:_} or {below + per_replica:_}",
                )
            )
            return None
        replicas = gpus // per_replica
    tpot_target_s = None if tpot_ms is None else tpot_ms / 1e3
    return Pool(text["model"], replica, replicas, tpot_target_s)
