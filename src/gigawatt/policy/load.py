"""Read a policy from TOML, check all of it, and build the typed objects in `model.py`.

Every problem is collected, each with its key path (`plans.pro.windows[0].limit`), and raised
together as one `PolicyError`, so a file is fixed in one pass rather than one error at a time.
Unknown keys are errors (with a "did you mean" hint), booleans are never numbers, and every
name a table refers to (models, fallback models) must exist. The full reference with examples
is `docs/policy.md`; in short:

    [gateway]                      every key optional
    listen = "127.0.0.1:8080"      host:port ("[::1]:8080" for IPv6)
    state = "memory://"            memory:// | sqlite:///path | redis://host:port/db | redis+cluster://host:port
    timezone = "UTC"               IANA name; the default for peak hours and weekly anchors
    on_state_error = "closed"      "open" admits, "closed" refuses, when the state store fails
    state_timeout = "2s"           durations take ms, s, m, h, d, w: "250ms", "1h30m"
    reservation_ttl = "10m"
    max_body_bytes = 4000000
    admin_token_env = "GIGAWATT_ADMIN_TOKEN"

    [[upstreams]]
    name = "local"                 required, unique
    protocol = "openai"            required: openai | anthropic | sim
    url = "http://..."             required unless protocol = "sim"
    models = ["medium"]            required, each a [models.NAME]
    max_inflight = 64
    timeout = "600s"
    forward_priority = false       pass the plan's priority on (vLLM's `priority` field)
    api_key_env = "NAME"           optional

    [models.NAME]
    credits = { input = 3, output = 15, cache_read = 0.3, cache_write = 3.75 }
                                   input, output > 0 required; cache_read defaults to
                                   0.1 * input, cache_write to 1.25 * input

    [plans.NAME]
    priority = 0                   higher is served first under load
    models = [...]                 default: every model
    rate = { rpm = 50, input_tpm = 30000, output_tpm = 8000 }      for every model of the plan
    model_rates = { large = { rpm = 20 } }                          merged over `rate`
    windows = [ { kind = "session", length = "5h", limit = 3e6 },
                { kind = "weekly", limit = 6e7, models = ["large"], anchor = "Mon 00:00" } ]
                                   kind: session | rolling (length required) | weekly (7d);
                                   optional name (default "session-5h", "rolling-24h",
                                   "weekly", plus "-" and the models joined by "+")
    peak = { hours = "05:00-11:00", days = "Mon-Fri", timezone = "...", factor = 0.5 }
    degrade = { above_load = 0.9, max_tokens = 4096, thinking_budget = 1024,
                fallback_model = "small" }
    queue_timeout = "30s"
    output_estimate = 1024
"""

from __future__ import annotations

import difflib
import importlib.resources
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, time
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gigawatt.errors import PolicyError, Problem
from gigawatt.policy.durations import format_duration, parse_duration, parse_seconds
from gigawatt.policy.model import (
    SECONDS_PER_DAY,
    SECONDS_PER_WEEK,
    CreditWeights,
    Degrade,
    Gateway,
    Model,
    Peak,
    Plan,
    Policy,
    Rate,
    Upstream,
    WeeklyAnchor,
    Window,
)

T = TypeVar("T")
Table = dict[str, Any]

_TOP_KEYS = ("gateway", "upstreams", "models", "plans")
_GATEWAY_KEYS = (
    "listen",
    "state",
    "timezone",
    "on_state_error",
    "state_timeout",
    "reservation_ttl",
    "max_body_bytes",
    "admin_token_env",
)
_UPSTREAM_KEYS = (
    "name",
    "protocol",
    "url",
    "models",
    "max_inflight",
    "timeout",
    "forward_priority",
    "api_key_env",
)
_PLAN_KEYS = (
    "priority",
    "models",
    "rate",
    "model_rates",
    "windows",
    "peak",
    "degrade",
    "queue_timeout",
    "output_estimate",
)
_CREDIT_KEYS = ("input", "output", "cache_read", "cache_write")
_RATE_KEYS = ("rpm", "input_tpm", "output_tpm")
_WINDOW_KEYS = ("kind", "length", "limit", "models", "anchor", "name")
_PEAK_KEYS = ("hours", "days", "timezone", "factor")
_DEGRADE_KEYS = ("above_load", "max_tokens", "thinking_budget", "fallback_model")

_STATE_SCHEMES = ("memory", "sqlite", "redis", "rediss", "redis+cluster")
_PROTOCOLS = ("openai", "anthropic", "sim")
_WINDOW_KINDS = ("session", "rolling", "weekly")
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_WORDS = {
    "daily": frozenset(range(7)),
    "all": frozenset(range(7)),
    "weekdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")

# Marks a key that is absent (or present but invalid, already reported) so callers can skip
# checks that depend on it instead of reporting the same mistake twice.
MISSING: Any = object()


def load_policy(path: str | PathLike[str]) -> Policy:
    """Read and check the policy file at `path`; raise `PolicyError` listing every problem."""
    return parse_policy(read_text(path), str(path))


def parse_policy(text: str, source: str = "<string>") -> Policy:
    """Check the policy in TOML `text`; `source` names it in errors."""
    data = parse_toml(text, source)
    reader = PolicyReader()
    policy = reader.policy(data, source)
    if reader.problems or policy is None:
        raise PolicyError(source, reader.problems)
    return policy


def read_text(path: str | PathLike[str]) -> str:
    """A gigawatt file's text; `PolicyError` saying why when it cannot be read."""
    with reading(path):
        return Path(path).read_bytes().decode("utf-8")


@contextmanager
def reading(path: str | PathLike[str]) -> Iterator[str]:
    """Around reading a gigawatt file: a missing, unreadable or non-UTF-8 file becomes a
    `PolicyError` saying which. Yields the file's name as errors give it."""
    source = str(path)
    try:
        yield source
    except FileNotFoundError:
        raise PolicyError(source, [Problem("", "no such file")]) from None
    except UnicodeDecodeError as exc:
        raise PolicyError(source, [Problem("", f"not UTF-8 text: {exc}")]) from None
    except OSError as exc:
        raise PolicyError(source, [Problem("", f"cannot read: {exc.strerror or exc}")]) from None


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """TOML `text` as tables; `PolicyError` with the line and column of the first syntax error."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message carries "(at line L, column C)".
        raise PolicyError(source, [Problem("", f"not valid TOML: {exc}")]) from None


def load_default_policy() -> Policy:
    """The policy shipped in the package: the example plans, SQLite state, a `sim` backend."""
    resource = importlib.resources.files("gigawatt") / "data" / "default_policy.toml"
    return parse_policy(resource.read_text(encoding="utf-8"), "gigawatt/data/default_policy.toml")


def key_path(parent: str, key: str) -> str:
    """`parent.key`, quoting the key as TOML would when it is not a bare key."""
    part = key if _BARE_KEY.fullmatch(key) else '"' + key.replace('"', '\\"') + '"'
    return f"{parent}.{part}" if parent else part


class PolicyReader:
    """Walks the parsed TOML, building objects and collecting problems as it goes.

    Other TOML files of gigawatt (the simulator's demand file) subclass it for the same typed
    checks and key-path problems; `MISSING` marks a value that could not be read."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.model_names: tuple[str, ...] = ()
        self.timezone = "UTC"

    def add(self, path: str, reason: str) -> None:
        self.problems.append(Problem(path, reason))

    # -- the whole file -------------------------------------------------------------------

    def policy(self, data: Table, source: str) -> Policy | None:
        self.keys(data, "", _TOP_KEYS)
        gateway = self.gateway(self.table(data, "", "gateway", required=False))
        models = self.models(data)
        self.model_names = tuple(models)
        upstreams = self.upstreams(data)
        plans = self.plans(data)
        if self.problems:
            return None
        return Policy(
            source=source,
            gateway=gateway,
            upstreams=upstreams,
            models=MappingProxyType(models),
            plans=MappingProxyType(plans),
        )

    # -- [gateway] --------------------------------------------------------------------------

    def gateway(self, table: Table) -> Gateway:
        path = "gateway"
        self.keys(table, path, _GATEWAY_KEYS)
        host, port = "127.0.0.1", 8080
        listen = self.string(table, path, "listen", "127.0.0.1:8080")
        if listen is not MISSING:
            parsed = _parse_listen(listen)
            if parsed is None:
                self.add(
                    key_path(path, "listen"),
                    f"expected host:port such as '127.0.0.1:8080', got {listen!r}",
                )
            else:
                host, port = parsed
        state = self.string(table, path, "state", "memory://")
        if state is not MISSING:
            scheme, sep, _ = state.partition("://")
            if not sep or scheme not in _STATE_SCHEMES:
                self.add(
                    key_path(path, "state"),
                    "expected a state URL starting memory://, sqlite:///, redis:// or "
                    f"redis+cluster://, got {state!r}",
                )
        timezone = self.zone(table, path, "timezone", "UTC")
        if timezone is not MISSING:
            self.timezone = timezone
        on_state_error = self.choice(table, path, "on_state_error", ("open", "closed"), "closed")
        return Gateway(
            host=host,
            port=port,
            state=_or(state, "memory://"),
            timezone=self.timezone,
            on_state_error=_or(on_state_error, "closed"),
            state_timeout_s=_or(self.seconds(table, path, "state_timeout", "2s"), 2.0),
            reservation_ttl_s=_or(self.seconds(table, path, "reservation_ttl", "10m"), 600.0),
            max_body_bytes=_or(self.integer(table, path, "max_body_bytes", 4_000_000), 0),
            admin_token_env=_or(
                self.string(table, path, "admin_token_env", "GIGAWATT_ADMIN_TOKEN"), ""
            ),
        )

    # -- [models.NAME] ----------------------------------------------------------------------

    def models(self, data: Table) -> dict[str, Model]:
        tables = self.named_tables(data, "models")
        if "models" not in data:
            self.add("models", "missing: add at least one [models.NAME] table")
        elif data["models"] == {}:
            self.add("models", "no models defined; add at least one [models.NAME] table")
        out: dict[str, Model] = {}
        for name, path, table in tables:
            if (bad := _bad_name(name)) is not None:
                self.add(path, bad)
            # A model with bad credits stays known (with placeholder weights; the policy is
            # rejected anyway) so references to it are not also reported as unknown models.
            out[name] = Model(name, self.credits(table, path) or CreditWeights(0.0, 0.0, 0.0, 0.0))
        return out

    def credits(self, table: Table, path: str) -> CreditWeights | None:
        self.keys(table, path, ("credits",))
        credits = self.table(table, path, "credits", required=True)
        if credits is MISSING:
            return None
        cpath = key_path(path, "credits")
        self.keys(credits, cpath, _CREDIT_KEYS)
        inp = self.number(credits, cpath, "input", MISSING, minimum=0, exclusive=True)
        outp = self.number(credits, cpath, "output", MISSING, minimum=0, exclusive=True)
        cache_read = self.number(credits, cpath, "cache_read", None, minimum=0)
        cache_write = self.number(credits, cpath, "cache_write", None, minimum=0)
        if MISSING in (inp, outp, cache_read, cache_write):
            return None
        return CreditWeights(
            input=float(inp),
            output=float(outp),
            cache_read=float(0.1 * inp if cache_read is None else cache_read),
            cache_write=float(1.25 * inp if cache_write is None else cache_write),
        )

    # -- [[upstreams]] ----------------------------------------------------------------------

    def upstreams(self, data: Table) -> tuple[Upstream, ...]:
        out: list[Upstream] = []
        seen: set[str] = set()
        for path, table in self.table_array(data, "", "upstreams"):
            self.keys(table, path, _UPSTREAM_KEYS)
            name = self.string(table, path, "name", MISSING)
            if name is not MISSING and not name.strip():
                self.add(key_path(path, "name"), "a name cannot be empty")
                name = MISSING
            if name is not MISSING:
                if name in seen:
                    self.add(key_path(path, "name"), f"duplicate upstream name {name!r}")
                seen.add(name)
            protocol = self.choice(table, path, "protocol", _PROTOCOLS, MISSING)
            url = self.string(table, path, "url", None)
            if url is None and protocol not in ("sim", MISSING):
                self.add(key_path(path, "url"), f"missing: a {protocol} upstream needs a url")
            elif url not in (None, MISSING) and not _is_http_url(url):
                self.add(
                    key_path(path, "url"),
                    f"expected an http:// or https:// URL with a host, got {url!r}",
                )
            models = self.model_list(table, path, "models", MISSING, self.model_names)
            max_inflight = self.integer(table, path, "max_inflight", 64)
            timeout_s = self.seconds(table, path, "timeout", "600s")
            forward_priority = self.boolean(table, path, "forward_priority", False)
            api_key_env = self.string(table, path, "api_key_env", None)
            values = (name, protocol, url, models, max_inflight, timeout_s, forward_priority)
            if MISSING in values or api_key_env is MISSING:
                continue
            out.append(
                Upstream(
                    name=name,
                    protocol=protocol,
                    url=url,
                    models=models,
                    max_inflight=max_inflight,
                    timeout_s=timeout_s,
                    forward_priority=forward_priority,
                    api_key_env=api_key_env,
                )
            )
        return tuple(out)

    # -- [plans.NAME] -----------------------------------------------------------------------

    def plans(self, data: Table) -> dict[str, Plan]:
        tables = self.named_tables(data, "plans")
        if "plans" not in data:
            self.add("plans", "missing: add at least one [plans.NAME] table")
        elif data["plans"] == {}:
            self.add("plans", "no plans defined; add at least one [plans.NAME] table")
        out: dict[str, Plan] = {}
        for name, path, table in tables:
            plan = self.plan(name, path, table)
            if plan is not None:
                out[name] = plan
        return out

    def plan(self, name: str, path: str, table: Table) -> Plan | None:
        self.keys(table, path, _PLAN_KEYS)
        priority = self.integer(table, path, "priority", 0, minimum=None)
        models = self.model_list(table, path, "models", self.model_names, self.model_names)
        # Later checks need the plan's models even when some were misspelt (already reported).
        allowed = models if models is not MISSING else self.valid_models(table, path)
        rate = self.rates(table, path, allowed)
        windows = self.windows(table, path, allowed)
        peak = self.peak(table, path)
        degrade = self.degrade(table, path, allowed)
        queue_timeout_s = self.seconds(table, path, "queue_timeout", "30s", positive=False)
        output_estimate = self.integer(table, path, "output_estimate", 1024)
        values = (priority, models, rate, windows, peak, degrade, queue_timeout_s, output_estimate)
        if MISSING in values:
            return None
        return Plan(
            name=name,
            priority=priority,
            models=models,
            rate=rate,
            windows=windows,
            peak=peak,
            degrade=degrade,
            queue_timeout_s=queue_timeout_s,
            output_estimate=output_estimate,
        )

    def valid_models(self, table: Table, path: str) -> tuple[str, ...]:
        value = table.get("models")
        if not isinstance(value, list):
            return self.model_names
        return tuple(m for m in value if isinstance(m, str) and m in self.model_names)

    def rates(self, table: Table, path: str, allowed: tuple[str, ...]) -> Mapping[str, Rate]:
        base = self.rate_fields(table, path, "rate")
        merged = {model: dict(base) for model in allowed}
        per_model = self.table(table, path, "model_rates", required=False)
        mpath = key_path(path, "model_rates")
        for model in per_model:
            if not self.known_model(model, key_path(mpath, model), allowed):
                continue
            merged[model].update(self.rate_fields(per_model, mpath, model))
        return MappingProxyType({model: Rate(**fields) for model, fields in merged.items()})

    def rate_fields(self, table: Table, path: str, key: str) -> dict[str, int]:
        rate = self.table(table, path, key, required=False)
        rpath = key_path(path, key)
        self.keys(rate, rpath, _RATE_KEYS)
        fields = {k: self.integer(rate, rpath, k, None) for k in _RATE_KEYS}
        return {k: v for k, v in fields.items() if v not in (None, MISSING)}

    def windows(self, table: Table, path: str, allowed: tuple[str, ...]) -> tuple[Window, ...]:
        windows: list[tuple[str, Window]] = []
        names: set[str] = set()
        ok = True
        for wpath, wtable in self.table_array(table, path, "windows"):
            window = self.window(wpath, wtable, allowed)
            if window is None:
                ok = False
                continue
            if window.name in names:
                self.add(key_path(wpath, "name"), f"duplicate window name {window.name!r}")
                ok = False
            names.add(window.name)
            windows.append((wpath, window))
        self.check_under_weekly(windows)
        return tuple(w for _, w in windows) if ok else MISSING

    def window(self, path: str, table: Table, allowed: tuple[str, ...]) -> Window | None:
        self.keys(table, path, _WINDOW_KEYS)
        kind = self.choice(table, path, "kind", _WINDOW_KINDS, MISSING)
        length_s: int = MISSING
        if kind == "weekly":
            length_s = SECONDS_PER_WEEK
            given = self.duration(table, path, "length", None)
            if given not in (None, MISSING) and given != SECONDS_PER_WEEK:
                self.add(
                    key_path(path, "length"),
                    f"a weekly window is always 7d; got {format_duration(given)} "
                    f'(use kind = "rolling" for another length)',
                )
        elif kind is not MISSING:
            length_s = self.duration(table, path, "length", MISSING)
        limit = self.number(table, path, "limit", MISSING, minimum=0, exclusive=True)
        models = self.model_list(table, path, "models", (), allowed, allow_empty=False)
        anchor = None
        if "anchor" in table:
            if kind == "weekly":
                anchor = self.anchor(table, path)
            elif kind is not MISSING:
                self.add(key_path(path, "anchor"), "only weekly windows take an anchor")
        name = self.string(table, path, "name", None)
        if isinstance(name, str) and (bad := _bad_name(name)) is not None:
            self.add(key_path(path, "name"), bad)
            name = MISSING
        if MISSING in (kind, length_s, limit, models, anchor, name):
            return None
        if name is None:
            name = kind if kind == "weekly" else f"{kind}-{format_duration(length_s)}"
            if models:
                name += "-" + "+".join(models)
        return Window(name, kind, length_s, float(limit), models, anchor)

    def check_under_weekly(self, windows: list[tuple[str, Window]]) -> None:
        weeklies = [w for _, w in windows if w.kind == "weekly"]
        for path, window in windows:
            if window.kind == "weekly" or window.length_s <= SECONDS_PER_WEEK:
                continue
            for weekly in weeklies:
                if _covers(weekly, window):
                    self.add(
                        key_path(path, "length"),
                        f"{window.kind} window of {format_duration(window.length_s)} is longer "
                        f"than the weekly cap {weekly.name!r} it sits under",
                    )
                    break

    def anchor(self, table: Table, path: str) -> WeeklyAnchor:
        text = self.string(table, path, "anchor", MISSING)
        if text is MISSING:
            return MISSING
        day, _, clock = text.strip().partition(" ")
        weekday = _weekday(day)
        seconds = _clock_seconds(clock.strip())
        if weekday is None or seconds is None or seconds >= SECONDS_PER_DAY:
            self.add(
                key_path(path, "anchor"),
                f"expected a weekday and a time such as 'Mon 00:00', got {text!r}",
            )
            return MISSING
        return WeeklyAnchor(weekday, seconds)

    def peak(self, table: Table, path: str) -> Peak | None:
        if "peak" not in table:
            return None
        peak = self.table(table, path, "peak", required=True)
        if peak is MISSING:
            return MISSING
        ppath = key_path(path, "peak")
        self.keys(peak, ppath, _PEAK_KEYS)
        hours = self.string(peak, ppath, "hours", MISSING)
        span = MISSING
        if hours is not MISSING:
            span = _parse_hours(hours)
            if span is None:
                self.add(
                    key_path(ppath, "hours"),
                    f"expected a local time span such as '05:00-11:00', got {hours!r}",
                )
                span = MISSING
        days_text = self.string(peak, ppath, "days", "daily")
        days = MISSING
        if days_text is not MISSING:
            days = _parse_days(days_text)
            if days is None:
                self.add(
                    key_path(ppath, "days"),
                    f"expected days such as 'Mon-Fri', 'Mon,Wed,Fri' or 'daily', got {days_text!r}",
                )
                days = MISSING
        zone = self.zone(peak, ppath, "timezone", self.timezone)
        factor = self.number(peak, ppath, "factor", MISSING, minimum=0, exclusive=True)
        if MISSING in (span, days, zone, factor):
            return MISSING
        start_s, end_s = span
        return Peak(start_s, end_s, days, zone, float(factor))

    def degrade(self, table: Table, path: str, allowed: tuple[str, ...]) -> Degrade | None:
        if "degrade" not in table:
            return None
        degrade = self.table(table, path, "degrade", required=True)
        if degrade is MISSING:
            return MISSING
        dpath = key_path(path, "degrade")
        self.keys(degrade, dpath, _DEGRADE_KEYS)
        above = self.number(degrade, dpath, "above_load", MISSING, minimum=0, exclusive=True)
        if above is not MISSING and above > 1:
            self.add(
                key_path(dpath, "above_load"),
                f"expected a share of capacity in (0, 1], got {above}",
            )
            above = MISSING
        max_tokens = self.integer(degrade, dpath, "max_tokens", None)
        thinking = self.integer(degrade, dpath, "thinking_budget", None, minimum=0)
        fallback = self.string(degrade, dpath, "fallback_model", None)
        if fallback not in (None, MISSING) and not self.known_model(
            fallback, key_path(dpath, "fallback_model"), allowed
        ):
            fallback = MISSING
        if (max_tokens, thinking, fallback) == (None, None, None):
            self.add(
                dpath,
                "degrade gives nothing up; set max_tokens, thinking_budget or fallback_model",
            )
            return MISSING
        if MISSING in (above, max_tokens, thinking, fallback):
            return MISSING
        return Degrade(above, max_tokens, thinking, fallback)

    # -- shared pieces ----------------------------------------------------------------------

    def keys(self, table: Table, path: str, allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in table:
            if key in allowed:
                continue
            hint = difflib.get_close_matches(key, allowed, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            if path and key in _TOP_KEYS and not hint:
                # TOML puts every key after a [table] header into that table.
                suggestion = "; top-level keys go before the first [table] header"
            self.add(key_path(path, key), f"unknown key {key!r}{suggestion}")

    def named_tables(self, data: Table, key: str) -> list[tuple[str, str, Table]]:
        tables = self.table(data, "", key, required=False)
        out = []
        for name, value in tables.items():
            path = key_path(key, name)
            if not name.strip():
                self.add(path, "a name cannot be empty")
            elif not isinstance(value, dict):
                self.add(path, f"expected a table, got {describe_value(value)}")
            else:
                out.append((name, path, value))
        return out

    def table(self, table: Table, path: str, key: str, *, required: bool) -> Table:
        if key not in table:
            if required:
                self.add(key_path(path, key), "missing (required)")
                return MISSING
            return {}
        value = table[key]
        if not isinstance(value, dict):
            self.add(key_path(path, key), f"expected a table, got {describe_value(value)}")
            return MISSING if required else {}
        return value

    def table_array(self, table: Table, path: str, key: str) -> list[tuple[str, Table]]:
        value = table.get(key, [])
        apath = key_path(path, key)
        if not isinstance(value, list):
            self.add(apath, f"expected an array of tables, got {describe_value(value)}")
            return []
        out = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                out.append((f"{apath}[{i}]", item))
            else:
                self.add(f"{apath}[{i}]", f"expected a table, got {describe_value(item)}")
        return out

    def value(self, table: Table, path: str, key: str, default: Any) -> Any:
        """The raw value, `default` if absent; reports a missing required key (default MISSING)."""
        if key in table:
            return table[key]
        if default is MISSING:
            self.add(key_path(path, key), "missing (required)")
        return default

    def typed(
        self,
        table: Table,
        path: str,
        key: str,
        default: Any,
        expected: str,
        check: Callable[[Any], bool],
    ) -> Any:
        value = self.value(table, path, key, default)
        if key in table and not check(value):
            self.add(key_path(path, key), f"expected {expected}, got {describe_value(value)}")
            return MISSING
        return value

    def string(self, table: Table, path: str, key: str, default: Any) -> Any:
        return self.typed(table, path, key, default, "a string", lambda v: isinstance(v, str))

    def boolean(self, table: Table, path: str, key: str, default: Any) -> Any:
        return self.typed(table, path, key, default, "true or false", lambda v: isinstance(v, bool))

    def integer(
        self, table: Table, path: str, key: str, default: Any, *, minimum: int | None = 1
    ) -> Any:
        value = self.typed(table, path, key, default, "an integer", _is_int)
        if key in table and value is not MISSING and minimum is not None and value < minimum:
            bound = "greater than 0" if minimum == 1 else f"at least {minimum}"
            self.add(key_path(path, key), f"must be {bound}, got {value}")
            return MISSING
        return value

    def number(
        self,
        table: Table,
        path: str,
        key: str,
        default: Any,
        *,
        minimum: float,
        exclusive: bool = False,
    ) -> Any:
        value = self.typed(table, path, key, default, "a number", _is_number)
        if key not in table or value is MISSING:
            return value
        if value < minimum or (exclusive and value == minimum):
            bound = f"greater than {minimum:g}" if exclusive else f"at least {minimum:g}"
            self.add(key_path(path, key), f"must be {bound}, got {value}")
            return MISSING
        return value

    def choice(
        self, table: Table, path: str, key: str, choices: tuple[str, ...], default: Any
    ) -> Any:
        value = self.string(table, path, key, default)
        if key in table and value is not MISSING and value not in choices:
            options = ", ".join(repr(c) for c in choices)
            hint = difflib.get_close_matches(value, choices, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            self.add(key_path(path, key), f"expected one of {options}, got {value!r}{suggestion}")
            return MISSING
        return value

    def duration(self, table: Table, path: str, key: str, default: Any) -> Any:
        return self.parsed(table, path, key, default, parse_duration)

    def seconds(
        self, table: Table, path: str, key: str, default: str, *, positive: bool = True
    ) -> Any:
        return self.parsed(
            table, path, key, default, lambda text: parse_seconds(text, positive=positive)
        )

    def parsed(
        self, table: Table, path: str, key: str, default: Any, parse: Callable[[str], T]
    ) -> T:
        text = self.value(table, path, key, default)
        if text in (None, MISSING):
            return text
        if not isinstance(text, str):
            self.add(
                key_path(path, key),
                f'expected a duration string such as "30s" or "5h", got {describe_value(text)}',
            )
            return MISSING
        try:
            return parse(text)
        except ValueError as exc:
            self.add(key_path(path, key), str(exc))
            return MISSING

    def zone(self, table: Table, path: str, key: str, default: str) -> Any:
        name = self.string(table, path, key, default)
        if name is MISSING:
            return MISSING
        try:
            ZoneInfo(name)
        # A directory of the zone database ("Pacific") raises IsADirectoryError, an OSError,
        # when the zones come from the tzdata package rather than the system's files.
        except (ZoneInfoNotFoundError, ValueError, OSError):
            self.add(
                key_path(path, key),
                f"unknown time zone {name!r}; use an IANA name such as 'America/Los_Angeles'",
            )
            return MISSING
        return name

    def model_list(
        self,
        table: Table,
        path: str,
        key: str,
        default: Any,
        allowed: tuple[str, ...],
        *,
        allow_empty: bool = False,
    ) -> Any:
        value = self.value(table, path, key, default)
        if key not in table:
            return default if default is MISSING else tuple(default)
        lpath = key_path(path, key)
        if not isinstance(value, list):
            self.add(lpath, f"expected an array of model names, got {describe_value(value)}")
            return MISSING
        if not value and not allow_empty:
            self.add(lpath, "expected at least one model name")
            return MISSING
        ok = True
        seen: set[str] = set()
        for i, item in enumerate(value):
            ipath = f"{lpath}[{i}]"
            if not isinstance(item, str):
                self.add(ipath, f"expected a model name, got {describe_value(item)}")
                ok = False
            elif item in seen:
                self.add(ipath, f"model {item!r} is listed twice")
                ok = False
            elif not self.known_model(item, ipath, allowed):
                ok = False
            else:
                seen.add(item)
        return tuple(value) if ok else MISSING

    def known_model(self, name: str, path: str, allowed: tuple[str, ...]) -> bool:
        if name in allowed:
            return True
        if name in self.model_names:
            self.add(path, f"model {name!r} is not one of this plan's models")
            return False
        hint = difflib.get_close_matches(name, self.model_names, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        self.add(path, f"unknown model {name!r}{suggestion}")
        return False


# The limiter stores model and window names inside its state records, where these separate fields.
_NAME_SEPARATORS = frozenset(",;|=")


def _bad_name(name: str) -> str | None:
    """Why a model or window name is unusable, or None if it is fine."""
    if any(c.isspace() for c in name) or _NAME_SEPARATORS & set(name):
        return f"name {name!r} may not contain spaces or any of , ; | ="
    return None


def _covers(weekly: Window, window: Window) -> bool:
    """Whether every request counted in `window` also counts in the weekly cap."""
    if not weekly.models:
        return True
    return bool(window.models) and set(window.models) <= set(weekly.models)


def _or(value: T, fallback: T) -> T:
    """`value`, or a placeholder when it was invalid (the policy is discarded in that case)."""
    return fallback if value is MISSING else value


def _is_int(value: Any) -> bool:
    # bool is a subclass of int; `limit = true` is a mistake, not 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return _is_int(value)


def describe_value(value: Any) -> str:
    """A TOML value as a problem names it: "integer 3", "string 'x'", "an array"."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime | date | time):
        return f"date/time {value.isoformat()}"
    return type(value).__name__


def _parse_listen(text: str) -> tuple[str, int] | None:
    host, sep, port = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or int(port) > 65_535:
        return None
    return host, int(port)


def _clock_seconds(text: str) -> int | None:
    """Seconds into the day of "HH:MM"; "24:00" is allowed (as the end of a span)."""
    match = _CLOCK.fullmatch(text)
    if match is None:
        return None
    hours, minutes = int(match[1]), int(match[2])
    if minutes >= 60 or hours > 24 or (hours == 24 and minutes):
        return None
    return hours * 3_600 + minutes * 60


def _parse_hours(text: str) -> tuple[int, int] | None:
    start_text, sep, end_text = text.partition("-")
    start = _clock_seconds(start_text.strip())
    end = _clock_seconds(end_text.strip())
    if not sep or start is None or end is None or start >= SECONDS_PER_DAY or start == end:
        return None
    # Peak stores the end modulo a day; "00:00-24:00" becomes the whole day.
    return start, end % SECONDS_PER_DAY


def _weekday(text: str) -> int | None:
    name = text.strip().lower()
    if name in _DAY_NAMES:
        return _DAY_NAMES.index(name)
    if name in _FULL_DAY_NAMES:
        return _FULL_DAY_NAMES.index(name)
    return None


def _parse_days(text: str) -> frozenset[int] | None:
    """ "Mon-Fri", "Mon,Wed,Fri", "Fri-Mon" (wrapping), "daily", "all", "weekdays", "weekends"."""
    word = text.strip().lower()
    if word in _DAY_WORDS:
        return _DAY_WORDS[word]
    days: set[int] = set()
    for part in word.split(","):
        first, sep, last = part.partition("-")
        start = _weekday(first)
        end = _weekday(last) if sep else start
        if start is None or end is None:
            return None
        days.update((start + i) % 7 for i in range((end - start) % 7 + 1))
    return frozenset(days)


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
