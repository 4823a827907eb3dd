"""What a plan's request gets when its pool is busy: the gateway and the simulator share this.

`degrade` applies a plan's `Degrade` rule to one request once its pool is at or above the
rule's `above_load`: the fallback model, a cap on `max_tokens`, a cap on the thinking budget,
each only where it changes something, and a note for each (the gateway sends them in its
`gigawatt-degraded` header). A request that waited its plan's whole queue timeout is refused as
overloaded with a retry-after of `OVERLOAD_RETRY_AFTER_S`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gigawatt.policy.model import Degrade

OVERLOAD_RETRY_AFTER_S = 2


@dataclass(frozen=True, slots=True)
class Degraded:
    model: str
    max_tokens: int | None
    thinking_budget: int | None  # None: the request does not think, or its budget is kept
    notes: tuple[str, ...]  # "model=small", "max_tokens=2048", "thinking_budget=1024"


def degrade(
    rule: Degrade, model: str, max_tokens: int | None, thinking_budget: int | None
) -> Degraded:
    """The request as `rule` leaves it. `max_tokens` None means the request names none, which
    a cap replaces; `thinking_budget` None means it asks for no thinking.

    >>> rule = Degrade(above_load=0.8, max_tokens=2048, fallback_model="small")
    >>> degrade(rule, "large", None, None).notes
    ('model=small', 'max_tokens=2048')
    """
    notes = []
    if rule.fallback_model and rule.fallback_model != model:
        model = rule.fallback_model
        notes.append(f"model={model}")
    if rule.max_tokens is not None and (max_tokens is None or max_tokens > rule.max_tokens):
        max_tokens = rule.max_tokens
        notes.append(f"max_tokens={max_tokens}")
    if (
        rule.thinking_budget is not None
        and thinking_budget is not None
        and thinking_budget > rule.thinking_budget
    ):
        thinking_budget = rule.thinking_budget
        notes.append(f"thinking_budget={thinking_budget}")
    return Degraded(model, max_tokens, thinking_budget, tuple(notes))
