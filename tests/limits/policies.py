"""Policies built in code for the limiter's tests, independent of the TOML loader."""

from __future__ import annotations

from types import MappingProxyType

from gigawatt.policy.model import (
    CreditWeights,
    Gateway,
    Model,
    Peak,
    Plan,
    Policy,
    Rate,
    WeeklyAnchor,
    Window,
)

WEEK_S = 7 * 86_400
DEFAULT_RATE = Rate(rpm=10, input_tpm=10_000, output_tpm=2_000)


def make_policy(
    *,
    rate: Rate | None = None,
    windows: tuple[Window, ...] = (
        Window("session-5h", "session", 5 * 3600, 100_000.0),
        Window("weekly", "weekly", WEEK_S, 400_000.0),
    ),
    peak: Peak | None = None,
    timezone: str = "UTC",
    ttl_s: float = 600.0,
    weights: tuple[CreditWeights, CreditWeights] = (
        CreditWeights(1, 5, 0.1, 1.25),
        CreditWeights(5, 25, 0.5, 6.25),
    ),
) -> Policy:
    models = {"small": Model("small", weights[0]), "big": Model("big", weights[1])}
    rate = rate if rate is not None else DEFAULT_RATE
    rates = MappingProxyType({name: rate for name in models})
    plan = Plan(
        name="pro",
        priority=1,
        models=tuple(models),
        rate=rates,
        windows=windows,
        peak=peak,
        degrade=None,
        queue_timeout_s=30.0,
        output_estimate=1024,
    )
    gateway = Gateway(
        host="127.0.0.1",
        port=8080,
        state="memory://",
        timezone=timezone,
        on_state_error="closed",
        state_timeout_s=2.0,
        reservation_ttl_s=ttl_s,
        max_body_bytes=1_000_000,
        admin_token_env="GIGAWATT_ADMIN_TOKEN",
    )
    return Policy(
        source="<test>",
        gateway=gateway,
        upstreams=(),
        models=MappingProxyType(models),
        plans=MappingProxyType({"pro": plan}),
    )


__all__ = ["WEEK_S", "Peak", "Rate", "WeeklyAnchor", "Window", "make_policy"]
