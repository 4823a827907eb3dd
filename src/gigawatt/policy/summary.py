"""A readable summary of a checked policy, for `gigawatt check-config` and logs at start-up."""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from gigawatt.policy.durations import format_duration, format_seconds
from gigawatt.policy.model import Degrade, Peak, Plan, Policy, Rate, Window

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def render_policy(policy: Policy) -> RenderableType:
    """The policy as rich renderables: gateway, upstreams, models, plans and rate limits."""
    parts: list[RenderableType] = [
        Text.assemble(("policy ", "bold"), policy.source),
        _gateway_line(policy),
        _upstreams_table(policy),
        _models_table(policy),
        _plans_table(policy),
    ]
    # Tables with no rows (no plan has rate limits, peak hours or degradation) are left out.
    parts.extend(t for t in (_rates_table(policy), _peak_degrade_table(policy)) if t.row_count)
    return Group(*parts)


def print_policy(policy: Policy, console: Console | None = None) -> None:
    (console or Console()).print(render_policy(policy))


def _gateway_line(policy: Policy) -> Text:
    g = policy.gateway
    host = f"[{g.host}]" if ":" in g.host else g.host
    facts = [
        f"listen {host}:{g.port}",
        f"state {g.state}",
        f"timezone {g.timezone}",
        f"on state error {g.on_state_error} (timeout {format_seconds(g.state_timeout_s)})",
        f"reservations expire after {format_seconds(g.reservation_ttl_s)}",
        f"max body {g.max_body_bytes:,} bytes",
        f"admin token from ${g.admin_token_env}",
    ]
    return Text.assemble(("gateway ", "bold"), " · ".join(facts))


def _upstreams_table(policy: Policy) -> Table:
    table = Table(title="upstreams", title_justify="left", expand=False)
    for header in ("name", "protocol", "url", "models", "in flight", "timeout", "priority"):
        # URLs have no spaces to wrap at; fold them rather than cut them short with an ellipsis.
        table.add_column(header, no_wrap=header in ("name", "protocol"), overflow="fold")
    for u in policy.upstreams:
        table.add_row(
            u.name,
            u.protocol,
            u.url or "(in-process)",
            ", ".join(u.models),
            str(u.max_inflight),
            format_seconds(u.timeout_s),
            "forwarded" if u.forward_priority else "-",
        )
    if not policy.upstreams:
        table.add_row("(none)", "", "", "", "", "", "")
    return table


def _models_table(policy: Policy) -> Table:
    table = Table(title="models (credits per token)", title_justify="left")
    table.add_column("model", no_wrap=True)
    for header in ("input", "output", "cache read", "cache write"):
        table.add_column(header, justify="right")
    for model in policy.models.values():
        c = model.credits
        table.add_row(
            model.name, *(f"{x:g}" for x in (c.input, c.output, c.cache_read, c.cache_write))
        )
    return table


def _plans_table(policy: Policy) -> Table:
    table = Table(title="plans", title_justify="left", show_lines=True)
    table.add_column("plan", no_wrap=True, style="bold")
    table.add_column("priority", justify="right")
    table.add_column("models")
    table.add_column("windows (credits)", no_wrap=True)
    table.add_column("queue", justify="right")
    every_model = tuple(policy.models)
    for plan in policy.plans.values():
        table.add_row(
            plan.name,
            str(plan.priority),
            "all" if plan.models == every_model else ", ".join(plan.models),
            "\n".join(_window(w) for w in plan.windows) or "-",
            format_seconds(plan.queue_timeout_s),
        )
    return table


def _peak_degrade_table(policy: Policy) -> Table:
    table = Table(title="peak hours and degradation", title_justify="left", show_lines=True)
    table.add_column("plan", no_wrap=True, style="bold")
    table.add_column("peak hours")
    table.add_column("degrade")
    for plan in policy.plans.values():
        if plan.peak is None and plan.degrade is None:
            continue
        table.add_row(
            plan.name,
            _peak(plan.peak) if plan.peak else "-",
            _degrade(plan.degrade) if plan.degrade else "-",
        )
    return table


def _rates_table(policy: Policy) -> Table:
    table = Table(title="rate limits per model", title_justify="left")
    table.add_column("plan", no_wrap=True, style="bold")
    table.add_column("models")
    for header in ("req/min", "input tok/min", "output tok/min"):
        table.add_column(header, justify="right")
    for plan in policy.plans.values():
        for models, rate in _rate_groups(plan):
            if rate == Rate():
                continue
            table.add_row(
                plan.name,
                ", ".join(models),
                *(_limit(x) for x in (rate.rpm, rate.input_tpm, rate.output_tpm)),
            )
    return table


def _rate_groups(plan: Plan) -> list[tuple[list[str], Rate]]:
    """Models that share the same rate, so a plan-wide rate takes one row, not one per model."""
    groups: dict[Rate, list[str]] = {}
    for model in plan.models:
        groups.setdefault(plan.rate.get(model, Rate()), []).append(model)
    return [(models, rate) for rate, models in groups.items()]


def _window(w: Window) -> str:
    text = f"{w.name} {_amount(w.limit)}"
    length = format_duration(w.length_s)
    if w.kind != "weekly" and length not in w.name:
        text += f" per {length}"
    if w.anchor is not None:
        day = _DAY_NAMES[w.anchor.weekday]
        text += f" from {day} {_clock(w.anchor.seconds_into_day)}"
    return text


def _peak(peak: Peak) -> str:
    return (
        f"{_days(peak.days)} {_clock(peak.start_s)}-{_clock(peak.end_s)} {peak.timezone}: "
        f"window limits x{peak.factor:g}"
    )


def _degrade(d: Degrade) -> str:
    cuts = []
    if d.max_tokens is not None:
        cuts.append(f"max_tokens {d.max_tokens}")
    if d.thinking_budget is not None:
        cuts.append(f"thinking {d.thinking_budget}")
    if d.fallback_model is not None:
        cuts.append(f"fallback {d.fallback_model}")
    return f"above {d.above_load:.0%} load: " + ", ".join(cuts)


def _days(days: frozenset[int]) -> str:
    if len(days) == 7:
        return "daily"
    ordered = sorted(days)
    if ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 2:
        return f"{_DAY_NAMES[ordered[0]]}-{_DAY_NAMES[ordered[-1]]}"
    return ",".join(_DAY_NAMES[d] for d in ordered)


def _clock(seconds: int) -> str:
    hours, rest = divmod(seconds, 3_600)
    return f"{hours:02d}:{rest // 60:02d}"


def _amount(x: float) -> str:
    """500000 -> "500k", 2.5e7 -> "25M": credit limits are read at a glance, not to the unit."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= size:
            return f"{x / size:.4g}{suffix}"
    return f"{x:g}"


def _limit(x: int | None) -> str:
    return "-" if x is None else f"{x:,}"
