"""The policy: plans, windows, rates, peak hours and degradation, loaded from one TOML file.

`load_policy` reads and checks a file and returns a `Policy`; any problem raises
`gigawatt.errors.PolicyError` listing every problem found. The typed objects live in `model`;
`summary.render_policy` draws a checked policy as tables (it needs `rich`, so it is not
imported here).
"""

from gigawatt.policy.durations import format_duration, format_seconds, parse_duration, parse_seconds
from gigawatt.policy.load import load_default_policy, load_policy, parse_policy
from gigawatt.policy.model import (
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

__all__ = [
    "CreditWeights",
    "Degrade",
    "Gateway",
    "Model",
    "Peak",
    "Plan",
    "Policy",
    "Rate",
    "Upstream",
    "WeeklyAnchor",
    "Window",
    "format_duration",
    "format_seconds",
    "load_default_policy",
    "load_policy",
    "parse_duration",
    "parse_policy",
    "parse_seconds",
]
