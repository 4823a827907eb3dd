"""Every error gigawatt raises on purpose.

    GigawattError
    ├── PolicyError            the policy file is unreadable or invalid; carries every problem found
    ├── PlanError              a capacity plan that cannot be made: an unknown GPU or model, a model
    │                          that does not fit its GPUs, impossible numbers; says what would work
    ├── StateError             the limiter's state store failed: unreachable, timed out, or refused
    │   └── StateTimeout       a state call took longer than its timeout
    └── TranslationError       a request or response with no faithful equivalent in the other
                               provider's API (gigawatt.gateway.translate)

The gateway's `GatewayError` (gigawatt.gateway.errors) is not in this tree: it is a response to
send, in the caller's dialect, rather than a failure of gigawatt itself.

Driver exceptions (sqlite3, redis) never leave a backend: they are wrapped into `StateError` so a
caller can decide to fail open or closed without knowing which store is behind the limiter.
Bad arguments to the limiter (negative or fractional token counts) raise the built-in `ValueError`.
"""

from __future__ import annotations

from dataclasses import dataclass


class GigawattError(Exception):
    """Base of every error gigawatt raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a policy: where it is and why it is wrong."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class PolicyError(GigawattError):
    """A policy that cannot be used; `problems` lists every problem found, not just the first."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        lines = "\n".join(f"  {source}: {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in {source}:\n{lines}")


class PlanError(GigawattError):
    """A capacity question with no answer as asked; the message says why and what would work."""


class StateError(GigawattError):
    """The state store could not be used (unreachable, failed, or too slow)."""


class StateTimeout(StateError):
    """A state call did not finish within its timeout."""
