"""Counters the backend keeps about itself, served at `GET /sim/stats`.

Tests read them to see what reached the upstream: how many requests, which were cancelled by a
client that went away, how many tokens were really generated, what priority the gateway passed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class Counters:
    """One set of counters: for the whole backend, or for one model."""

    requests: int = 0  # every generation request received, errors included
    active: int = 0  # generating now (a request held by a delay directive is not yet active)
    completed: int = 0  # answered in full
    cancelled: int = 0  # the client disconnected before the answer was complete
    dropped: int = 0  # cut off on purpose by a drop_after directive
    errors: int = 0  # answered with an error status
    input_tokens: int = 0  # prompt tokens of requests that started generating
    output_tokens: int = 0  # tokens actually sent (or, in one-piece answers, generated)
    last_priority: int | None = None  # the last `priority` field seen


@dataclass(slots=True)
class SimStats:
    """The backend's counters, overall and per model. Changed only on the event loop's thread."""

    total: Counters = field(default_factory=Counters)
    models: dict[str, Counters] = field(default_factory=dict)

    def model(self, name: str) -> Counters:
        counters = self.models.get(name)
        if counters is None:
            counters = self.models[name] = Counters()
        return counters

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self.total), "models": {n: asdict(c) for n, c in self.models.items()}}
