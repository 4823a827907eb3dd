"""Write a `Policy` back as TOML that `load_policy` reads to an equal policy.

The planner uses it to emit the limits it found (`gigawatt plan limits --emit-policy`), so
the file `serve` and `simulate` load is exactly the policy the planner checked. Every value is
written explicitly, defaults included, so the file says everything the gateway will do.
"""

from __future__ import annotations

import json
import math
import re

from gigawatt.policy.durations import format_duration, format_seconds
from gigawatt.policy.model import (
    SECONDS_PER_DAY,
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

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def policy_to_toml(policy: Policy, *, header: str = "") -> str:
    """The policy as TOML text; `header` lines are written first as comments."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    if lines:
        lines.append("")
    lines += _gateway(policy.gateway)
    for upstream in policy.upstreams:
        lines += ["", *_upstream(upstream)]
    for model in policy.models.values():
        lines += ["", *_model(model)]
    for plan in policy.plans.values():
        lines += ["", *_plan(plan)]
    return "\n".join(lines) + "\n"


def _gateway(gateway: Gateway) -> list[str]:
    host = f"[{gateway.host}]" if ":" in gateway.host else gateway.host
    return [
        "[gateway]",
        f"listen = {_string(f'{host}:{gateway.port}')}",
        f"state = {_string(gateway.state)}",
        f"timezone = {_string(gateway.timezone)}",
        f"on_state_error = {_string(gateway.on_state_error)}",
        f"state_timeout = {_string(format_seconds(gateway.state_timeout_s))}",
        f"reservation_ttl = {_string(format_seconds(gateway.reservation_ttl_s))}",
        f"max_body_bytes = {gateway.max_body_bytes}",
        f"admin_token_env = {_string(gateway.admin_token_env)}",
    ]


def _upstream(upstream: Upstream) -> list[str]:
    lines = [
        "[[upstreams]]",
        f"name = {_string(upstream.name)}",
        f"protocol = {_string(upstream.protocol)}",
    ]
    if upstream.url is not None:
        lines.append(f"url = {_string(upstream.url)}")
    lines += [
        f"models = {_strings(upstream.models)}",
        f"max_inflight = {upstream.max_inflight}",
        f"timeout = {_string(format_seconds(upstream.timeout_s))}",
        f"forward_priority = {'true' if upstream.forward_priority else 'false'}",
    ]
    if upstream.api_key_env is not None:
        lines.append(f"api_key_env = {_string(upstream.api_key_env)}")
    return lines


def _model(model: Model) -> list[str]:
    c = model.credits
    return [
        f"[models.{_key(model.name)}]",
        "credits = { "
        f"input = {_number(c.input)}, output = {_number(c.output)}, "
        f"cache_read = {_number(c.cache_read)}, cache_write = {_number(c.cache_write)}"
        " }",
    ]


def _plan(plan: Plan) -> list[str]:
    lines = [
        f"[plans.{_key(plan.name)}]",
        f"priority = {plan.priority}",
        f"models = {_strings(plan.models)}",
        f"queue_timeout = {_string(format_seconds(plan.queue_timeout_s))}",
        f"output_estimate = {plan.output_estimate}",
    ]
    for model, rate in plan.rate.items():
        fields = _rate(rate)
        if fields:
            lines.append(f"model_rates.{_key(model)} = {{ {fields} }}")
    if plan.windows:
        lines.append("windows = [")
        lines += [f"    {_window(window)}," for window in plan.windows]
        lines.append("]")
    if plan.peak is not None:
        lines.append(f"peak = {_peak(plan.peak)}")
    if plan.degrade is not None:
        lines.append(f"degrade = {_degrade(plan.degrade)}")
    return lines


def _rate(rate: Rate) -> str:
    fields = (("rpm", rate.rpm), ("input_tpm", rate.input_tpm), ("output_tpm", rate.output_tpm))
    return ", ".join(f"{name} = {value}" for name, value in fields if value is not None)


def _window(window: Window) -> str:
    fields = [f"name = {_string(window.name)}", f"kind = {_string(window.kind)}"]
    if window.kind != "weekly":
        fields.append(f"length = {_string(format_duration(window.length_s))}")
    fields.append(f"limit = {_number(window.limit)}")
    if window.models:
        fields.append(f"models = {_strings(window.models)}")
    if window.anchor is not None:
        fields.append(f"anchor = {_string(_anchor(window.anchor))}")
    return "{ " + ", ".join(fields) + " }"


def _anchor(anchor: WeeklyAnchor) -> str:
    return f"{_DAY_NAMES[anchor.weekday]} {_clock(anchor.seconds_into_day)}"


def _peak(peak: Peak) -> str:
    # The loader keeps the end modulo a day, so an end equal to the start is "until 24:00".
    end_s = peak.end_s if peak.end_s != peak.start_s else peak.start_s + SECONDS_PER_DAY
    days = ",".join(_DAY_NAMES[day] for day in sorted(peak.days))
    return (
        f"{{ hours = {_string(f'{_clock(peak.start_s)}-{_clock(end_s)}')}, "
        f"days = {_string(days)}, timezone = {_string(peak.timezone)}, "
        f"factor = {_number(peak.factor)} }}"
    )


def _degrade(degrade: Degrade) -> str:
    fields = [f"above_load = {_number(degrade.above_load)}"]
    if degrade.max_tokens is not None:
        fields.append(f"max_tokens = {degrade.max_tokens}")
    if degrade.thinking_budget is not None:
        fields.append(f"thinking_budget = {degrade.thinking_budget}")
    if degrade.fallback_model is not None:
        fields.append(f"fallback_model = {_string(degrade.fallback_model)}")
    return "{ " + ", ".join(fields) + " }"


def _clock(seconds_into_day: int) -> str:
    hours, rest = divmod(seconds_into_day, 3_600)
    return f"{hours:02d}:{rest // 60:02d}"


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _string(name)


def _string(text: str) -> str:
    # A JSON string is a valid TOML basic string: same quotes, same escapes.
    return json.dumps(text, ensure_ascii=False)


def _strings(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(_string(item) for item in items) + "]"


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"a policy number must be finite, got {value}")
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))
