"""A simulated LLM server that speaks the OpenAI and Anthropic HTTP APIs, for demos and tests.

    from gigawatt.simbackend import run_sim_backend_in_thread

    with run_sim_backend_in_thread(time_scale=0.01) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x")

It streams made-up English with the timing of a batching inference engine (first-token latency
that grows with the prompt, per-stream speed that falls as streams share a model), counts prompts
with `o200k_base`, and obeys `[[sim:...]]` directives that provoke failures through real HTTP.
See docs/sim-backend.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gigawatt.simbackend.app import SimApp, create_app
    from gigawatt.simbackend.directives import Directives, parse_directives
    from gigawatt.simbackend.server import SimServer, run_sim_backend_in_thread, serve_sim_backend
    from gigawatt.simbackend.stats import Counters, SimStats
    from gigawatt.simbackend.text import count_tokens
    from gigawatt.simbackend.timing import DEFAULT_MODELS, FALLBACK_MODEL, SimModel

# Loaded on first use: the command line imports `gigawatt.simbackend.cli` for every command, and
# the tokenizer and the server behind these names take half a second to import.
_HOMES = {
    "SimApp": "app",
    "create_app": "app",
    "Directives": "directives",
    "parse_directives": "directives",
    "SimServer": "server",
    "run_sim_backend_in_thread": "server",
    "serve_sim_backend": "server",
    "Counters": "stats",
    "SimStats": "stats",
    "count_tokens": "text",
    "DEFAULT_MODELS": "timing",
    "FALLBACK_MODEL": "timing",
    "SimModel": "timing",
}

__all__ = [
    "DEFAULT_MODELS",
    "FALLBACK_MODEL",
    "Counters",
    "Directives",
    "SimApp",
    "SimModel",
    "SimServer",
    "SimStats",
    "count_tokens",
    "create_app",
    "parse_directives",
    "run_sim_backend_in_thread",
    "serve_sim_backend",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
