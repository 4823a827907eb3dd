"""The simulated backend as one ASGI application."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from gigawatt.simbackend.anthropic_api import AnthropicMessages
from gigawatt.simbackend.core import Backend
from gigawatt.simbackend.http import Router, header, send_json
from gigawatt.simbackend.openai_api import OpenAIChat
from gigawatt.simbackend.stats import SimStats
from gigawatt.simbackend.timing import DEFAULT_MODELS, SimModel
from gigawatt.simbackend.types import Receive, Scope, Send

_OPENAI = OpenAIChat()
_ANTHROPIC = AnthropicMessages()


class SimApp:
    """An ASGI app serving the simulated models; `stats` holds its counters."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._router = Router(
            {
                ("POST", "/v1/chat/completions"): self._chat_completions,
                ("POST", "/v1/messages"): self._messages,
                ("GET", "/v1/models"): self._models,
                ("GET", "/healthz"): self._healthz,
                ("GET", "/sim/stats"): self._stats,
            }
        )

    @property
    def stats(self) -> SimStats:
        return self._backend.stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._router(scope, receive, send)

    async def _chat_completions(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._backend.handle(_OPENAI, scope, receive, send)

    async def _messages(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._backend.handle(_ANTHROPIC, scope, receive, send)

    async def _models(self, scope: Scope, receive: Receive, send: Send) -> None:
        names = list(self._backend.models)
        # The Anthropic SDK always sends anthropic-version; anyone else gets OpenAI's list.
        data: list[dict[str, Any]]
        if header(scope, b"anthropic-version") is not None:
            data = [
                {"type": "model", "id": n, "display_name": n, "created_at": "2025-01-01T00:00:00Z"}
                for n in names
            ]
            first, last = (names[0], names[-1]) if names else (None, None)
            body = {"data": data, "has_more": False, "first_id": first, "last_id": last}
        else:
            data = [{"id": n, "object": "model", "created": 0, "owned_by": "sim"} for n in names]
            body = {"object": "list", "data": data}
        await send_json(send, 200, body)

    async def _healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_json(send, 200, {"status": "ok"})

    async def _stats(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_json(send, 200, self._backend.stats.as_json())


def create_app(
    models: Mapping[str, SimModel] | None = None, *, time_scale: float = 1.0, seed: int = 0
) -> SimApp:
    """A simulated LLM server speaking the OpenAI and Anthropic HTTP APIs, as an ASGI app.

    `models` maps the model names it serves to their timing; None serves any name, with the
    `DEFAULT_MODELS` timing for `small`, `medium` and `large` and `FALLBACK_MODEL` for the rest.
    `time_scale` multiplies every simulated delay (0: answer at once; a `delay` directive is
    never scaled). `seed` picks the answers: the same seed and prompt give the same answer.
    """
    if not (math.isfinite(time_scale) and time_scale >= 0):
        raise ValueError(f"time_scale must be a finite number >= 0: {time_scale}")
    if models is not None and not models:
        raise ValueError("models must name at least one model (or be None to accept any)")
    served = DEFAULT_MODELS if models is None else models
    return SimApp(Backend(served, accept_any=models is None, time_scale=time_scale, seed=seed))
