"""`gigawatt serve`: build the gateway from a policy and run it under uvicorn.

uvicorn with uvloop and httptools serves the ASGI app; with `--workers N` it forks N processes
that share the listening socket, and each builds its own gateway from the same policy (passed
to them in the environment), so every worker sees the same state store.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

from gigawatt.gateway.app import Gateway
from gigawatt.keys import open_key_store
from gigawatt.limits import Limiter, open_store
from gigawatt.policy.load import load_default_policy, load_policy
from gigawatt.policy.model import Policy

CONFIG_ENV = "GIGAWATT_CONFIG"
# Young objects a cycle collection waits for (CPython's default: 700). A request allocates
# hundreds of short-lived objects that reference counting frees, so at the default a collection
# ran every few requests; this many served 5 to 12% more requests per second.
GC_YOUNG_THRESHOLD = 50_000


def build_gateway(policy: Policy) -> Gateway:
    timeout_s = policy.gateway.state_timeout_s
    limiter = Limiter(policy, open_store(policy.gateway.state, timeout_s))
    keys = open_key_store(policy.gateway.state, timeout_s)
    return Gateway(policy, limiter, keys)


def load(config: Path | None) -> Policy:
    return load_policy(config) if config is not None else load_default_policy()


# How `gigawatt serve` runs uvicorn, host and port aside.
UVICORN_OPTIONS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "httptools",
    "lifespan": "on",
    "log_level": "warning",
    "access_log": False,
    # No `server: uvicorn` header: it names the software to every caller and costs a header
    # check per response.
    "server_header": False,
    # Nothing in the gateway reads the client's address, so X-Forwarded-For is not parsed.
    "proxy_headers": False,
}


def app_from_env() -> Gateway:
    """The factory each uvicorn worker calls."""
    config = os.environ.get(CONFIG_ENV)
    gateway = build_gateway(load(Path(config) if config else None))
    tune_gc()
    return gateway


def tune_gc() -> None:
    """For a serving process: what exists now (modules, the policy) is kept out of every cycle
    collection, and collections wait for `GC_YOUNG_THRESHOLD` young objects. Cycles (an
    exception and its traceback) are still collected, a little later."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
