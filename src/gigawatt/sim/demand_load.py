"""Read a demand file (TOML), check all of it against the policy, and build `demand.Demand`.

Problems are collected with their key paths (`plans.pro.sizes.large.input.mean`) and raised
together as one `PolicyError`, as the policy loader does. The format, in short (docs/simulate.md
has the full reference):

    name = "example"
    timezone = "America/Los_Angeles"   default: the policy's [gateway] timezone
    start = 2026-06-01                 first simulated day (default 2026-06-01, a Monday)

    [retry]
    probability = 0.7                  a refused request is retried after retry-after ...
    max_wait = "6h"                    ... unless that is longer than this ...
    max_attempts = 3                   ... at most this many times

    [curves.NAME]
    daily = [24 weights]               session starts per local hour
    weekly = [7 weights]               activity per weekday, Monday first (default flat)

    [sizes.MODEL]                      defaults for every plan using MODEL
    input = { mean = 2000, sigma = 1.0, max = 128000 }   lognormal; or dist = "fixed"
    output = { mean = 400, sigma = 0.8 }
    cached = 0.5                       share of the prompt read from the prompt cache

    [plans.NAME]                       NAME: a plan of the policy
    users = 1_000_000
    active_share = 0.4
    intensity = { dist = "lognormal", sigma = 1.0 }      or { dist = "pareto", alpha = 1.6 }
    sessions_per_day = 2.5
    requests_per_session = 8
    think_time = "45s"
    curve = "consumer"                 or daily = [...] and weekly = [...] inline
    models = { medium = 0.8, large = 0.2 }
    max_tokens = 8192                  optional: what clients send
    thinking = { share = 0.3, tokens = { mean = 3000, sigma = 0.8 } }
    [plans.NAME.sizes.MODEL]           optional: overrides [sizes.MODEL] key by key

    [trace]                            optional: replay a CSV as well (or instead)
    path = "trace.csv"                 relative to the demand file
    plan = "api-tier-2"
    model = "medium"                   for rows that name no model
    accounts = 100                     spread rows over this many accounts if none are named
"""

from __future__ import annotations

import math
from datetime import date
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gigawatt.errors import PolicyError
from gigawatt.policy.load import (
    MISSING,
    PolicyReader,
    describe_value,
    key_path,
    parse_toml,
    read_text,
)
from gigawatt.policy.model import Policy
from gigawatt.sim.demand import (
    Demand,
    Dist,
    Intensity,
    PlanDemand,
    Retry,
    Sizes,
    Thinking,
    TraceSpec,
)

DEFAULT_START = date(2026, 6, 1)

_TOP = ("name", "timezone", "start", "retry", "curves", "sizes", "plans", "trace")
_RETRY = ("probability", "max_wait", "max_attempts")
_CURVE = ("daily", "weekly")
_SIZES = ("input", "output", "cached")
_DIST = ("dist", "mean", "sigma", "max", "value")
_DISTS = ("lognormal", "fixed", "exponential")
_INTENSITY = ("dist", "sigma", "alpha")
_INTENSITIES = ("lognormal", "pareto", "none")
_PLAN = (
    "users",
    "active_share",
    "intensity",
    "sessions_per_day",
    "requests_per_session",
    "think_time",
    "curve",
    "daily",
    "weekly",
    "models",
    "sizes",
    "max_tokens",
    "thinking",
)
_THINKING = ("share", "tokens")
_TRACE = ("path", "plan", "model", "accounts")
_FLAT_WEEK = (1.0,) * 7


def load_demand(path: str | PathLike[str], policy: Policy | None = None) -> Demand:
    """Read and check the demand file at `path` (against `policy` when given)."""
    return parse_demand(read_text(path), str(path), policy, base_dir=Path(path).parent)


def parse_demand(
    text: str,
    source: str = "<string>",
    policy: Policy | None = None,
    base_dir: Path | None = None,
) -> Demand:
    """Check the demand in TOML `text`; `source` names it in errors, `base_dir` anchors paths."""
    data = parse_toml(text, source)
    reader = _DemandReader(policy, base_dir or Path.cwd())
    demand = reader.demand(data, source)
    if reader.problems or demand is None:
        raise PolicyError(source, reader.problems)
    return demand


class _DemandReader(PolicyReader):
    """The policy loader's reader (typed values, durations, key paths, "did you mean") plus the
    demand file's own tables."""

    def __init__(self, policy: Policy | None, base_dir: Path) -> None:
        super().__init__()
        self.policy = policy
        self.base_dir = base_dir
        self.curves: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {}
        self.sizes: dict[str, Any] = {}
        if policy is not None:
            self.model_names = tuple(policy.models)
            self.timezone = policy.gateway.timezone

    def demand(self, data: dict[str, Any], source: str) -> Demand | None:
        self.keys(data, "", _TOP)
        name = self.string(data, "", "name", Path(source).stem)
        timezone = self.zone(data, "", "timezone", self.timezone)
        start = data.get("start", DEFAULT_START)
        if not isinstance(start, date) or hasattr(start, "hour"):
            self.add("start", f"expected a date such as 2026-06-01, got {describe_value(start)}")
            start = MISSING
        retry = self.retry(self.table(data, "", "retry", required=False))
        for cname, path, table in self.named_tables(data, "curves"):
            curve = self.curve(table, path, required_daily=True)
            if curve is not None:
                self.curves[cname] = curve
        for model, (path, table) in self.named_tables_raw(data, "sizes"):
            if self.model_names and model not in self.model_names:
                self.add(path, f"unknown model {model!r}{_hint(model, self.model_names)}")
                continue
            self.sizes[model] = (path, self.size_values(table, path))
        plans = {}
        for pname, path, table in self.named_tables(data, "plans"):
            plan = self.plan(pname, path, table)
            if plan is not None:
                plans[pname] = plan
        trace = None
        if "trace" in data:
            trace = self.trace(self.table(data, "", "trace", required=True))
        if not plans and trace is None and not self.problems:
            self.add("plans", "no demand: add at least one [plans.NAME] table or a [trace]")
        if self.problems or MISSING in (name, timezone, start, retry):
            return None
        return Demand(
            source=source,
            name=name,
            timezone=timezone,
            start=start,
            retry=retry,
            plans=MappingProxyType(plans),
            trace=trace,
        )

    def named_tables_raw(
        self, data: dict[str, Any], key: str, parent: str = ""
    ) -> list[tuple[str, Any]]:
        """`named_tables` under `parent`, as (name, (path, table)) pairs."""
        tables = self.table(data, parent, key, required=False)
        out = []
        for name, value in tables.items():
            path = key_path(key_path(parent, key), name)
            if not isinstance(value, dict):
                self.add(path, f"expected a table, got {describe_value(value)}")
            else:
                out.append((name, (path, value)))
        return out

    # -- [retry] ------------------------------------------------------------------------------

    def retry(self, table: dict[str, Any]) -> Any:
        path = "retry"
        self.keys(table, path, _RETRY)
        probability = self.share(table, path, "probability", 0.7, allow_zero=True)
        max_wait = self.seconds(table, path, "max_wait", "6h")
        attempts = self.integer(table, path, "max_attempts", 3, minimum=0)
        if MISSING in (probability, max_wait, attempts):
            return MISSING
        return Retry(float(probability), float(max_wait), int(attempts))

    # -- curves ---------------------------------------------------------------------------------

    def curve(
        self, table: dict[str, Any], path: str, *, required_daily: bool
    ) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        daily = self.weights(table, path, "daily", 24, required=required_daily)
        weekly = self.weights(table, path, "weekly", 7, required=False)
        if daily is MISSING or weekly is MISSING:
            return None
        return daily, weekly or _FLAT_WEEK

    def weights(
        self, table: dict[str, Any], path: str, key: str, count: int, *, required: bool
    ) -> Any:
        if key not in table:
            if required:
                self.add(key_path(path, key), f"missing (required): {count} relative weights")
                return MISSING
            return None
        value = table[key]
        wpath = key_path(path, key)
        if not isinstance(value, list) or len(value) != count:
            self.add(wpath, f"expected an array of {count} numbers, got {describe_value(value)}")
            return MISSING
        out = []
        for i, item in enumerate(value):
            if not _is_number(item) or item < 0:
                self.add(f"{wpath}[{i}]", f"expected a number >= 0, got {describe_value(item)}")
                return MISSING
            out.append(float(item))
        if sum(out) <= 0:
            self.add(wpath, "the weights sum to 0; at least one must be positive")
            return MISSING
        return tuple(out)

    # -- distributions --------------------------------------------------------------------------

    def dist(self, table: dict[str, Any], path: str, key: str) -> Any:
        value = table.get(key, MISSING)
        dpath = key_path(path, key)
        if value is MISSING:
            self.add(dpath, "missing (required)")
            return MISSING
        if _is_number(value):
            if value < 1:
                self.add(dpath, f"must be at least 1 token, got {value}")
                return MISSING
            return Dist("fixed", float(value))
        if not isinstance(value, dict):
            self.add(
                dpath,
                f"expected a number or a table such as {{ mean = 800, sigma = 1.0 }}, "
                f"got {describe_value(value)}",
            )
            return MISSING
        self.keys(value, dpath, _DIST)
        kind = self.choice(value, dpath, "dist", _DISTS, "lognormal")
        mean_key = "value" if kind == "fixed" and "value" in value else "mean"
        mean = self.number(value, dpath, mean_key, MISSING, minimum=1)
        sigma = self.number(value, dpath, "sigma", 1.0, minimum=0)
        max_value = self.number(value, dpath, "max", math.inf, minimum=1)
        if kind != "lognormal" and "sigma" in value and kind is not MISSING:
            self.add(key_path(dpath, "sigma"), f"only a lognormal takes sigma, not {kind!r}")
            return MISSING
        if MISSING in (kind, mean, sigma, max_value):
            return MISSING
        return Dist(kind, float(mean), float(sigma) if kind == "lognormal" else 0.0, max_value)

    def intensity(self, table: dict[str, Any], path: str) -> Any:
        value = self.table(table, path, "intensity", required=False)
        if value is MISSING:
            return MISSING
        if not value:
            return Intensity("lognormal", sigma=1.0)
        ipath = key_path(path, "intensity")
        self.keys(value, ipath, _INTENSITY)
        kind = self.choice(value, ipath, "dist", _INTENSITIES, "lognormal")
        if kind == "lognormal":
            sigma = self.number(value, ipath, "sigma", 1.0, minimum=0)
            return MISSING if sigma is MISSING else Intensity("lognormal", sigma=float(sigma))
        if kind == "pareto":
            alpha = self.number(value, ipath, "alpha", MISSING, minimum=1, exclusive=True)
            return MISSING if alpha is MISSING else Intensity("pareto", alpha=float(alpha))
        return MISSING if kind is MISSING else Intensity("none")

    def size_values(self, table: dict[str, Any], path: str) -> dict[str, Any]:
        """The keys a sizes table gives, each checked where it is written."""
        self.keys(table, path, _SIZES)
        out: dict[str, Any] = {}
        for key in ("input", "output"):
            if key in table:
                out[key] = self.dist(table, path, key)
        if "cached" in table:
            out["cached"] = self.share(table, path, "cached", 0.0, allow_zero=True)
        return out

    def size_table(self, model: str, override: Any, path: str) -> Any:
        """`[sizes.MODEL]` with the plan's `[plans.P.sizes.MODEL]` keys over it."""
        base_path, base = self.sizes.get(model, ("", {}))
        merged: dict[str, Any] = dict(base)
        if override is not None:
            merged.update(override[1])
        if not merged:
            self.add(
                path,
                f"no request sizes for model {model!r}: add a [sizes.{model}] table or "
                f"[{key_path(path, model)}]",
            )
            return MISSING
        for key in ("input", "output"):
            if key not in merged:
                where = override[0] if override is not None else base_path
                self.add(key_path(where, key), "missing (required)")
                return MISSING
        values = (merged["input"], merged["output"], merged.get("cached", 0.0))
        if MISSING in values:
            return MISSING  # reported where it was written
        return Sizes(values[0], values[1], float(values[2]))

    def share(
        self, table: dict[str, Any], path: str, key: str, default: Any, *, allow_zero: bool
    ) -> Any:
        value = self.number(table, path, key, default, minimum=0, exclusive=not allow_zero)
        if value is not MISSING and key in table and value > 1:
            self.add(key_path(path, key), f"expected a share between 0 and 1, got {value}")
            return MISSING
        return value

    # -- [plans.NAME] ---------------------------------------------------------------------------

    def plan(self, name: str, path: str, table: dict[str, Any]) -> PlanDemand | None:
        self.keys(table, path, _PLAN)
        allowed: tuple[str, ...] = self.model_names
        if self.policy is not None:
            if name not in self.policy.plans:
                self.add(path, f"unknown plan {name!r}{_hint(name, self.policy.plans)}")
                return None
            allowed = self.policy.plans[name].models
        users = self.integer(table, path, "users", MISSING, minimum=0)
        active = self.share(table, path, "active_share", MISSING, allow_zero=False)
        intensity = self.intensity(table, path)
        sessions = self.number(table, path, "sessions_per_day", 1.0, minimum=1)
        per_session = self.number(table, path, "requests_per_session", 1.0, minimum=1)
        think = self.seconds(table, path, "think_time", "60s")
        curve = self.plan_curve(table, path)
        mix = self.model_mix(table, path, allowed)
        max_tokens = self.integer(table, path, "max_tokens", None)
        thinking = self.thinking(table, path)
        overrides = {
            model: (opath, self.size_values(otable, opath))
            for model, (opath, otable) in self.named_tables_raw(table, "sizes", path)
        }
        for model, (opath, _) in overrides.items():
            if mix is not MISSING and model not in mix:
                self.add(opath, f"model {model!r} is not in this plan's models mix")
        sizes = {}
        if mix is not MISSING:
            for model in mix:
                found = self.size_table(model, overrides.get(model), key_path(path, "sizes"))
                if found is not MISSING:
                    sizes[model] = found
        values = (
            users,
            active,
            intensity,
            sessions,
            per_session,
            think,
            curve,
            mix,
            max_tokens,
            thinking,
        )
        if MISSING in values or len(sizes) != len(mix):
            return None
        daily, weekly = curve
        return PlanDemand(
            plan=name,
            users=users,
            active_share=float(active),
            intensity=intensity,
            sessions_per_day=float(sessions),
            requests_per_session=float(per_session),
            think_time_s=float(think),
            daily=daily,
            weekly=weekly,
            models=MappingProxyType(mix),
            sizes=MappingProxyType(sizes),
            max_tokens=max_tokens,
            thinking=thinking,
        )

    def plan_curve(self, table: dict[str, Any], path: str) -> Any:
        if "curve" in table:
            if "daily" in table or "weekly" in table:
                self.add(key_path(path, "curve"), "give either curve or daily/weekly, not both")
                return MISSING
            name = self.string(table, path, "curve", MISSING)
            if name is MISSING:
                return MISSING
            if name not in self.curves:
                self.add(
                    key_path(path, "curve"),
                    f"unknown curve {name!r}{_hint(name, self.curves)}; define it as "
                    f"[curves.{name}]",
                )
                return MISSING
            return self.curves[name]
        if "daily" not in table:
            return (1.0,) * 24, self.weights(table, path, "weekly", 7, required=False) or _FLAT_WEEK
        curve = self.curve(table, path, required_daily=True)
        return MISSING if curve is None else curve

    def model_mix(self, table: dict[str, Any], path: str, allowed: tuple[str, ...]) -> Any:
        mpath = key_path(path, "models")
        if "models" not in table:
            if len(allowed) == 1:
                return {allowed[0]: 1.0}
            self.add(
                mpath,
                "missing (required): a table of model shares, such as "
                "{ medium = 0.8, large = 0.2 }",
            )
            return MISSING
        value = table["models"]
        if not isinstance(value, dict) or not value:
            self.add(mpath, f"expected a table of model shares, got {describe_value(value)}")
            return MISSING
        mix = {}
        for model, share in value.items():
            spath = key_path(mpath, model)
            if self.model_names and not self.known_model(model, spath, allowed):
                continue
            if not _is_number(share) or share <= 0:
                self.add(spath, f"expected a share greater than 0, got {describe_value(share)}")
                continue
            mix[model] = float(share)
        if len(mix) != len(value):
            return MISSING
        total = sum(mix.values())
        return {m: s / total for m, s in mix.items()}

    def thinking(self, table: dict[str, Any], path: str) -> Any:
        if "thinking" not in table:
            return None
        value = self.table(table, path, "thinking", required=True)
        if value is MISSING:
            return MISSING
        tpath = key_path(path, "thinking")
        self.keys(value, tpath, _THINKING)
        share = self.share(value, tpath, "share", MISSING, allow_zero=True)
        tokens = self.dist(value, tpath, "tokens")
        if MISSING in (share, tokens):
            return MISSING
        return Thinking(float(share), tokens)

    # -- [trace] --------------------------------------------------------------------------------

    def trace(self, table: dict[str, Any]) -> Any:
        path = "trace"
        if table is MISSING:
            return None
        self.keys(table, path, _TRACE)
        file = self.string(table, path, "path", MISSING)
        plan = self.string(table, path, "plan", MISSING)
        model = self.string(table, path, "model", None)
        accounts = self.integer(table, path, "accounts", 1)
        if file is not MISSING:
            resolved = (
                (self.base_dir / file).resolve() if not Path(file).is_absolute() else Path(file)
            )
            if not resolved.is_file():
                self.add(key_path(path, "path"), f"no such file: {resolved}")
                file = MISSING
            else:
                file = str(resolved)
        if self.policy is not None and plan is not MISSING:
            if plan not in self.policy.plans:
                self.add(
                    key_path(path, "plan"), f"unknown plan {plan!r}{_hint(plan, self.policy.plans)}"
                )
                plan = MISSING
            elif model not in (None, MISSING) and not self.known_model(
                model, key_path(path, "model"), self.policy.plans[plan].models
            ):
                model = MISSING
        if MISSING in (file, plan, model, accounts):
            return None
        return TraceSpec(file, plan, model, accounts)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int)


def _hint(name: str, choices: Any) -> str:
    import difflib

    hint = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean {hint[0]!r}?" if hint else f"; known: {', '.join(choices)}"
