"""A real gateway on a real port, in front of the simulated backend, for the SDK tests."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import uvicorn

from gigawatt.gateway.app import Gateway
from gigawatt.gateway.serve import build_gateway
from gigawatt.limits import Limiter, open_store
from gigawatt.policy.load import parse_policy
from gigawatt.simbackend import run_sim_backend_in_thread

POLICY = """
[gateway]
state = "{state}"
max_body_bytes = 20000
reservation_ttl = "10m"
on_state_error = "{on_state_error}"

[[upstreams]]
name = "sim"
protocol = "{protocol}"
url = "{sim_url}/v1"
models = ["small", "large"]
max_inflight = {max_inflight}
timeout = "{timeout}"
forward_priority = {forward_priority}

[models.small]
credits = {{ input = 1, output = 5 }}

[models.large]
credits = {{ input = 15, output = 75 }}

[plans.pro]
priority = 2
rate = {{ rpm = 600, input_tpm = 1000000, output_tpm = 100000 }}
windows = [{{ kind = "session", length = "5h", limit = 10000000 }}]

[plans.lite]
models = ["small"]
degrade = {{ above_load = 0.5, max_tokens = 7 }}

[plans.tiny]
priority = 0
models = ["small"]
rate = {{ rpm = {tiny_rpm} }}
queue_timeout = "{queue_timeout}"
"""


@dataclass
class Running:
    url: str
    gateway: Gateway
    sim_url: str

    def key(self, plan: str = "pro", account: str = "alice") -> str:
        _, secret = self.gateway.keys.store.create(account, plan, 0.0)
        return secret

    def window_used(self, key: str) -> float:
        """Credits used in the first window of `key`'s account, from `GET /v1/usage`."""
        request = urllib.request.Request(self.url + "/v1/usage", headers={"x-api-key": key})
        with urllib.request.urlopen(request) as response:
            return float(json.load(response)["windows"][0]["used"])


@contextmanager
def serve(gateway: Gateway) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        gateway, loop="asyncio", http="httptools", lifespan="on", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the gateway failed to start")
            threading.Event().wait(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


MakeGateway = Callable[..., Running]


def stop_serving(proc: subprocess.Popen[str]) -> None:
    """Stop a `gigawatt serve` process as Ctrl-C would, killing it if it does not stop."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture
def make_gateway() -> Iterator[MakeGateway]:
    stack: list[contextmanager] = []  # type: ignore[valid-type]

    def make(
        *,
        protocol: str = "sim",
        time_scale: float = 0.0,
        tiny_rpm: int = 2,
        max_inflight: int = 64,
        timeout: str = "5s",
        queue_timeout: str = "1s",
        state: str = "memory://",
        on_state_error: str = "closed",
        limiter_state: str | None = None,
        forward_priority: bool = False,
    ) -> Running:
        sim = run_sim_backend_in_thread(time_scale=time_scale)
        sim_url = sim.__enter__()
        stack.append(sim)
        text = POLICY.format(
            state=state,
            protocol=protocol,
            sim_url=sim_url,
            tiny_rpm=tiny_rpm,
            max_inflight=max_inflight,
            timeout=timeout,
            queue_timeout=queue_timeout,
            on_state_error=on_state_error,
            forward_priority=str(forward_priority).lower(),
        )
        policy = parse_policy(text)
        gateway = build_gateway(policy)
        if limiter_state is not None:
            # Only the limiter's store differs (say, one that is down); keys stay reachable.
            gateway.limiter = Limiter(policy, open_store(limiter_state, 0.2))
        served = serve(gateway)
        url = served.__enter__()
        stack.append(served)
        return Running(url, gateway, sim_url)

    yield make
    for cm in reversed(stack):
        cm.__exit__(None, None, None)
