"""Gateway throughput and latency, side by side with direct calls, a pass-through proxy and LiteLLM.

    .venv/bin/python benchmarks/gateway.py [--seconds S] [--concurrency 64] [--rounds 5]
    .venv/bin/python benchmarks/gateway.py --stack    # the server and client the gateway runs on
    .venv/bin/python benchmarks/gateway.py --profile  # cProfile top 15 of the gateway under load

Every target is served by its own process in front of one upstream: the simulated backend
(`gigawatt sim-backend --time-scale 0`, which answers at once), with non-streaming chat completions
of 16 output tokens. The targets: the upstream directly; `benchmarks/passthrough.py`, a pass-through
proxy on the gateway's own stack with no limits; `gigawatt serve` with memory, SQLite and Redis
state; and LiteLLM's proxy with model-level rpm and tpm limits. A closed loop of `--concurrency`
connections (wrk, or a Python load generator when wrk is missing) drives each in turn for
`--rounds` rounds, every other one in reverse order. Then an open loop at half the rate of each
SQLite gateway (one worker, two), three runs per target, measures the latency it adds when it is
not saturated. CPU time of every process is read from /proc around each timed run. The tables
go to the `## Gateway` section of docs/benchmarks.md.

`--stack` instead compares the pass-through proxy with the gateway's own client, aiohttp's and
httpx's as upstream client and uvicorn and granian as server (those installed), and the gateway
itself on both servers, and writes the `## Measured` section of docs/gateway.md. LiteLLM runs
from its own virtual environment (`--litellm-venv`), created and filled from the package index
on first use; `--no-litellm` skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import pstats
import re
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from report import library_version, md_table, run_stamp, write_section

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODEL = PLAN = "bench"
ACCOUNTS = 256
PROMPT = "Say hello in one short sentence. [[sim:tokens=16]]"
BODY = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]})
START, END = "<!-- gateway:start -->", "<!-- gateway:end -->"
STACK_START, STACK_END = "<!-- stack:start -->", "<!-- stack:end -->"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Targets this benchmark checks.
SHARE_OF_PASSTHROUGH_TARGET = 0.60
TIMES_LITELLM_TARGET = 20.0
ADDED_P50_TARGET_MS = 2.0

POLICY = """\
[gateway]
listen = "127.0.0.1:{port}"
state = "{state}"
timezone = "UTC"
on_state_error = "closed"

[[upstreams]]
name = "sim"
protocol = "sim"
url = "{upstream}/v1"
models = ["{model}"]
max_inflight = 1024

[models.{model}]
credits = {{ input = 1, output = 5 }}

# Every limit is on, each far above what the benchmark can reach.
[plans.{plan}]
priority = 1
models = ["{model}"]
rate = {{ rpm = 100_000_000, input_tpm = 10_000_000_000, output_tpm = 10_000_000_000 }}
windows = [
    {{ kind = "session", length = "5h", limit = 1e15 }},
    {{ kind = "weekly", limit = 1e16 }},
]
"""

LITELLM_CONFIG = """\
model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: {upstream}/v1
      api_key: sk-upstream-unused
      rpm: 100000000
      tpm: 10000000000
router_settings:
  num_retries: 0
general_settings:
  master_key: {master_key}
"""

# wrk's script: POST the body, round-robin over the keys in $KEYS, print a JSON summary.
WRK_LUA = """\
local keys = {}
for line in io.lines(os.getenv("KEYS")) do keys[#keys + 1] = line end
local body = os.getenv("BODY")
local i = 0
request = function()
  i = i % #keys + 1
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. keys[i],
  }, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'GWBENCH {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


# --- processes and their CPU time --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, user+system CPU seconds) for every process now."""
    out: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                text = f.read()
        except OSError:
            continue
        rest = text[text.rfind(")") + 2 :].split()
        out[int(entry.name)] = (int(rest[1]), (int(rest[11]) + int(rest[12])) / CLK_TCK)
    return out


def tree_cpu_s(table: dict[int, tuple[int, float]], root: int) -> float:
    """CPU seconds of a process and every live descendant."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            total += table[pid][1]
        todo += children.get(pid, [])
    return total


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    url: str  # where the load goes
    keys: Path  # one bearer secret a line
    log: Path


def spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "wb")  # noqa: SIM115 (the child keeps it)
    try:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=log.parent,
            start_new_session=True,  # its own process group, so workers stop with it
        )
    finally:
        out.close()


def stop(proc: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    """Wait until `url` answers with any HTTP status; raise with the log's tail if the process
    exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"exited with {proc.returncode} before answering:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
    raise RuntimeError(f"no answer from {url} within {timeout_s:g} s")


# --- load ------------------------------------------------------------------------------------


@dataclass
class Load:
    ok: int
    errors: int  # non-2xx answers, socket errors and timeouts
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    lag_p99_ms: float | None = None  # open loop: how late requests left against their schedule
    cpu_s: dict[str, float] = field(default_factory=dict)
    # Requests answered during a warm-up inside the measured span (the Python generator's):
    # CPU per request counts them too.
    warm_ok: int = 0

    @property
    def per_s(self) -> float:
        return self.ok / self.seconds

    def cpu_us(self, role: str) -> float:
        return self.cpu_s.get(role, 0.0) * 1e6 / max(1, self.ok + self.warm_ok)


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class LoadTool:
    """wrk when installed (closed loop); the Python generator otherwise, and for open loops."""

    def __init__(self, tmp: Path, force_python: bool = False) -> None:
        self.wrk = None if force_python else shutil.which("wrk")
        self.lua = tmp / "post.lua"
        self.lua.write_text(WRK_LUA)

    def version(self) -> str:
        if self.wrk is None:
            return "the Python generator of benchmarks/gateway.py"
        done = subprocess.run([self.wrk, "--version"], capture_output=True, text=True)
        return " ".join((done.stdout or done.stderr).split()[:2])

    def closed(self, server: Server, concurrency: int, seconds: float) -> Load:
        if self.wrk is None:
            return self._python("closed", server, concurrency, 0.0, seconds)
        cmd = [
            self.wrk,
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "-s",
            str(self.lua),
            server.url,
        ]
        env = {**os.environ, "KEYS": str(server.keys), "BODY": BODY}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        line = next(x for x in done.stdout.splitlines() if x.startswith("GWBENCH "))
        s = json.loads(line.removeprefix("GWBENCH "))
        errors = s["connect"] + s["read"] + s["write"] + s["status"] + s["timeout"]
        return Load(
            ok=s["requests"] - s["status"],
            errors=errors,
            seconds=s["duration_us"] / 1e6,
            p50_ms=s["p50"] / 1000,
            p90_ms=s["p90"] / 1000,
            p99_ms=s["p99"] / 1000,
            max_ms=s["max"] / 1000,
        )

    def open(self, server: Server, rate: float, seconds: float, warm_s: float) -> Load:
        return self._python("open", server, 0, rate, seconds, warm_s)

    def _python(
        self,
        mode: str,
        server: Server,
        concurrency: int,
        rate: float,
        seconds: float,
        warm_s: float = 0.0,
    ) -> Load:
        spec = {
            "mode": mode,
            "url": server.url,
            "keys": str(server.keys),
            "concurrency": concurrency,
            "rate": rate,
            "seconds": seconds,
            "warm_s": warm_s,
        }
        cmd = [sys.executable, str(Path(__file__).resolve()), "--loadgen", json.dumps(spec)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return Load(**json.loads(done.stdout.strip().splitlines()[-1]))


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    """The Python load generator: a closed loop of N connections, or an open loop at a rate.

    It sends with the gateway's own HTTP client, the cheapest in CPU per request of those
    measured (`--stack`): on two cores shared with the upstream and the proxy, every microsecond
    the generator spends delays the others. Latency is timed from the moment a request is sent;
    in the open loop, `lag` is how late that was against the schedule (the generator's own
    delay, not the target's).
    """
    from gigawatt.gateway.http_client import Client, Endpoint, Timeouts, UpstreamConnectionError

    keys = Path(spec["keys"]).read_text().split()
    body = BODY.encode()
    endpoints = [
        Endpoint.post(
            spec["url"], {"content-type": "application/json", "authorization": f"Bearer {k}"}
        )
        for k in keys
    ]
    clock = time.perf_counter
    latencies: list[float] = []
    lags: list[float] = []
    counts = {"ok": 0, "errors": 0, "warm_ok": 0}
    timeouts = Timeouts(total=30.0, read=None, connect=10.0)
    recording = [False]

    async def one(i: int, due: float | None) -> None:
        t0 = clock()
        try:
            response = await client.post(endpoints[i % len(endpoints)], body, timeouts)
            await response.read()
            good = response.status < 400
        except (UpstreamConnectionError, TimeoutError):
            good = False
        if not recording[0]:
            counts["warm_ok"] += good
            return
        if good:
            counts["ok"] += 1
            latencies.append(clock() - t0)
            if due is not None:
                lags.append(t0 - due)
        else:
            counts["errors"] += 1

    # A closed loop's workers send one request each at a time: at most N connections.
    client = Client()
    try:

        async def closed(until: float) -> None:
            async def worker(w: int) -> None:
                i = w
                while clock() < until:
                    await one(i, None)
                    i += spec["concurrency"]

            await asyncio.gather(*(worker(w) for w in range(spec["concurrency"])))

        async def open_loop(start: float, seconds: float) -> None:
            interval, n = 1.0 / spec["rate"], int(spec["rate"] * seconds)
            pending: set[asyncio.Task[None]] = set()
            for i in range(n):
                due = start + i * interval
                delay = due - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.ensure_future(one(i, due))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if pending:
                await asyncio.gather(*pending)

        warm, seconds = spec["warm_s"], spec["seconds"]
        if spec["mode"] == "closed":
            await closed(clock() + max(warm, 0.5))
            recording[0] = True
            t0 = clock()
            await closed(t0 + seconds)
            elapsed = clock() - t0
        else:
            if warm > 0:
                await open_loop(clock(), warm)
            recording[0] = True
            t0 = clock()
            await open_loop(t0, seconds)
            elapsed = max(seconds, clock() - t0)
    finally:
        await client.close()
    latencies.sort()
    lags.sort()
    return {
        "ok": counts["ok"],
        "errors": counts["errors"],
        "warm_ok": counts["warm_ok"],
        "seconds": elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p90_ms": percentile(latencies, 0.9) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": percentile(latencies, 1.0) * 1000,
        "lag_p99_ms": percentile(lags, 0.99) * 1000 if lags else None,
    }


def run_loadgen(spec_json: str) -> int:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    print(json.dumps(asyncio.run(loadgen(json.loads(spec_json)))))
    return 0


# --- the targets -----------------------------------------------------------------------------


@dataclass
class Target:
    key: str  # short name in the results
    label: str
    kind: str  # direct | pass-through | gigawatt | litellm
    state: str = ""
    workers: int = 1
    accounts: int = ACCOUNTS


class Lab:
    """Starts and stops every process of a run, all against one simulated upstream."""

    def __init__(self, tmp: Path, stack: contextlib.ExitStack, console: Console) -> None:
        self.tmp, self.stack, self.console = tmp, stack, console
        self.servers: dict[str, Server] = {}
        self.redis_url = ""
        self.redis_proc: subprocess.Popen[bytes] | None = None
        self.upstream = self._start_upstream()

    def _start_upstream(self) -> Server:
        port = free_port()
        log = self.tmp / "sim.log"
        cmd = [sys.executable, "-m", "gigawatt", "sim-backend", "--port", str(port)]
        proc = spawn([*cmd, "--time-scale", "0"], log)
        self.stack.callback(stop, proc)
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/v1/models", proc, log, 60)
        keys = self.tmp / "no-keys.txt"
        keys.write_text("unused\n")
        return Server("direct", proc, base + "/v1/chat/completions", keys, log)

    @property
    def upstream_base(self) -> str:
        return self.upstream.url.removesuffix("/v1/chat/completions")

    def redis(self) -> str:
        if self.redis_url:
            return self.redis_url
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not on PATH")
        port = free_port()
        directory = self.tmp / "redis"
        directory.mkdir()
        log = directory / "redis.log"
        cmd = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        proc = spawn([*cmd, "no", "--dir", str(directory)], log)
        self.stack.callback(stop, proc)
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        self.redis_proc = proc
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        return self.redis_url

    def start(self, target: Target) -> Server:
        if target.kind == "direct":
            server = self.upstream
        elif target.kind == "pass-through":
            server = self._passthrough(target)
        elif target.kind == "gigawatt":
            server = self._gigawatt(target)
        elif target.kind == "litellm":
            server = self._litellm(target)
        else:
            raise ValueError(target.kind)
        self.servers[target.key] = server
        return server

    def _passthrough(self, target: Target) -> Server:
        port = free_port()
        client, _, server_name = target.state.partition("@")
        log = self.tmp / f"{target.key}.log"
        cmd = [sys.executable, str(HERE / "passthrough.py"), "--upstream", self.upstream_base]
        cmd += ["--port", str(port), "--client", client or "gigawatt"]
        cmd += ["--workers", str(target.workers)]
        proc = spawn([*cmd, "--server", server_name or "uvicorn"], log)
        self.stack.callback(stop, proc)
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/v1/models", proc, log, 60)
        return Server(target.key, proc, base + "/v1/chat/completions", self.upstream.keys, log)

    def state_url(self, target: Target) -> str:
        if target.state == "memory":
            return "memory://"
        if target.state == "sqlite":
            return f"sqlite:///{self.tmp / (target.key + '.db')}"
        if target.state == "redis":
            return self.redis()
        raise ValueError(target.state)

    def _gigawatt(self, target: Target, profile_to: Path | None = None) -> Server:
        """`gigawatt serve`; with `profile_to`, the launcher, whose profiler SIGUSR1 toggles.

        Keys go into the state store before it starts; memory:// lives inside the gateway's
        process, so there they are made through its admin API once it is up.
        """
        port = free_port()
        state = self.state_url(target)
        policy = self.tmp / f"{target.key}.toml"
        policy.write_text(
            POLICY.format(
                port=port, state=state, upstream=self.upstream_base, model=MODEL, plan=PLAN
            )
        )
        keys = self.tmp / f"{target.key}.keys"
        log = self.tmp / f"{target.key}.log"
        if target.state != "memory":
            write_keys(state, keys, target.key, target.accounts)
        if profile_to is not None:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", str(policy)]
            cmd += ["--port", str(port), "--keys-out", str(keys), "--profile-out"]
            cmd += [str(profile_to), "--accounts"]
            cmd.append(str(target.accounts if target.state == "memory" else 0))
        else:
            cmd = [sys.executable, "-m", "gigawatt", "serve", "--config", str(policy)]
            cmd += ["--port", str(port), "--workers", str(target.workers)]
        admin_token = secrets.token_urlsafe(24)
        proc = spawn(cmd, log, {"GIGAWATT_ADMIN_TOKEN": admin_token})
        self.stack.callback(stop, proc)
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz", proc, log, 60)
        if target.state == "memory" and profile_to is None:
            keys.write_text(admin_keys(base, admin_token, target.key, target.accounts))
        return Server(target.key, proc, base + "/v1/chat/completions", keys, log)

    def gigawatt_on_granian(self, target: Target) -> Server:
        """The gateway's own app factory under granian, with the options of the pass-through's."""
        port = free_port()
        state = self.state_url(target)
        policy = self.tmp / f"{target.key}.toml"
        policy.write_text(
            POLICY.format(
                port=port, state=state, upstream=self.upstream_base, model=MODEL, plan=PLAN
            )
        )
        keys = self.tmp / f"{target.key}.keys"
        write_keys(state, keys, target.key, target.accounts)
        log = self.tmp / f"{target.key}.log"
        granian = str(Path(sys.executable).parent / "granian")
        cmd = [granian, "--interface", "asgi", "--loop", "uvloop", "--http", "1", "--no-ws"]
        cmd += ["--factory", "--log-level", "warning", "--host", "127.0.0.1", "--port", str(port)]
        cmd.append("gigawatt.gateway.serve:app_from_env")
        proc = spawn(cmd, log, {"GIGAWATT_CONFIG": str(policy)})
        self.stack.callback(stop, proc)
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz", proc, log, 60)
        server = Server(target.key, proc, base + "/v1/chat/completions", keys, log)
        self.servers[target.key] = server
        return server

    def _litellm(self, target: Target) -> Server:
        exe = Path(target.state) / "bin" / "litellm"
        port = free_port()
        master = "sk-" + secrets.token_hex(24)
        config = self.tmp / "litellm_config.yaml"
        config.write_text(
            LITELLM_CONFIG.format(model=MODEL, upstream=self.upstream_base, master_key=master)
        )
        keys = self.tmp / "litellm.keys"
        keys.write_text(master + "\n")
        log = self.tmp / "litellm.log"
        cmd = [str(exe), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
        # No network here: the cost map ships in the package. LITELLM_LOG=ERROR also turns off
        # uvicorn's access log, which gigawatt and the pass-through do not write either.
        env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
        proc = spawn(cmd, log, env)
        self.stack.callback(stop, proc)
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/health/liveliness", proc, log, 180)
        return Server(target.key, proc, base + "/v1/chat/completions", keys, log)

    def measure(self, load: Callable[[Server], Load], server: Server) -> Load:
        """Run `load` against `server`, with the CPU time each process spent meanwhile."""
        roles = {"upstream": self.upstream.proc.pid}
        if server is not self.upstream:
            roles["proxy"] = server.proc.pid
        if self.redis_proc is not None:
            roles["redis"] = self.redis_proc.pid
        idle = [
            s.proc.pid for s in self.servers.values() if s is not server and s is not self.upstream
        ]
        before_t, before_m, before_c = proc_table(), machine_busy_s(), children_cpu_s()
        started = time.monotonic()
        result = load(server)
        span = time.monotonic() - started
        after_t, after_m, after_c = proc_table(), machine_busy_s(), children_cpu_s()
        cpu = {
            role: tree_cpu_s(after_t, pid) - tree_cpu_s(before_t, pid)
            for role, pid in roles.items()
        }
        cpu["idle servers"] = sum(tree_cpu_s(after_t, p) - tree_cpu_s(before_t, p) for p in idle)
        # The load generator's whole life: with the Python one, its start-up and warm-up too.
        cpu["load"] = after_c - before_c
        cpu["outside"] = max(0.0, (after_m - before_m) - sum(cpu.values()))
        cpu["wall"] = result.seconds
        # How busy the whole machine was, in cores, over the whole call (warm-up included).
        cpu["machine cores"] = (after_m - before_m) / span
        result.cpu_s = cpu
        return result


def write_keys(state_url: str, path: Path, prefix: str, accounts: int) -> None:
    from gigawatt.keys import open_key_store

    store = open_key_store(state_url)
    now = time.time()
    secrets_ = [store.create(f"{prefix}-{i:04d}", PLAN, now)[1] for i in range(accounts)]
    store.close()
    path.write_text("\n".join(secrets_) + "\n")


def admin_keys(base: str, token: str, prefix: str, accounts: int) -> str:
    """A key for each of `accounts` accounts, made through the gateway's admin API."""
    made = []
    for i in range(accounts):
        body = json.dumps({"account": f"{prefix}-{i:04d}", "plan": PLAN}).encode()
        request = urllib.request.Request(
            base + "/admin/keys",
            data=body,
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            made.append(json.loads(response.read())["secret"])
    return "\n".join(made) + "\n"


def serve(policy_path: str, port: int, keys_out: str, accounts: int, profile_out: str) -> int:
    """`gigawatt serve`'s app, uvicorn options and collector settings, with a profiler that
    each SIGUSR1 turns on, then off (writing `profile_out`), so only the timed load is profiled.
    For memory:// state it first makes `accounts` keys inside the gateway's process."""
    import cProfile

    import uvicorn

    from gigawatt.gateway.serve import UVICORN_OPTIONS, build_gateway, load, tune_gc

    gateway = build_gateway(load(Path(policy_path)))
    if accounts:
        now = time.time()
        store = gateway.keys.store
        made = [store.create(f"memory-{i:04d}", PLAN, now)[1] for i in range(accounts)]
        Path(keys_out).write_text("\n".join(made) + "\n")
    if profile_out:
        profiler, running = cProfile.Profile(), [False]

        def toggle(signum: int, frame: Any) -> None:
            if running[0]:
                profiler.disable()
                profiler.dump_stats(profile_out)
            else:
                profiler.enable()
            running[0] = not running[0]

        signal.signal(signal.SIGUSR1, toggle)
    tune_gc()
    uvicorn.run(gateway, host="127.0.0.1", port=port, **UVICORN_OPTIONS)  # type: ignore[arg-type]
    return 0


def litellm_venv(directory: Path, console: Console) -> tuple[Path | None, str]:
    """LiteLLM's proxy in its own virtual environment: (the venv, its version) or (None, why)."""
    exe = directory / "bin" / "litellm"
    if not exe.exists():
        console.print(f"installing litellm\\[proxy] into {directory} (once; not timed)")
        python = shutil.which("python3") or sys.executable
        try:
            subprocess.run([python, "-m", "venv", str(directory)], check=True, capture_output=True)
            pip = [str(directory / "bin" / "python"), "-m", "pip", "install", "-q"]
            subprocess.run([*pip, "litellm[proxy]"], check=True, capture_output=True, timeout=1200)
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            why = f"install failed: {exc}; {detail.decode(errors='replace')[-500:]}"
            return None, why
    done = subprocess.run(
        [
            str(directory / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return None, f"litellm does not import: {done.stderr.strip()[-500:]}"
    return directory, done.stdout.strip()


# --- the run ---------------------------------------------------------------------------------

# The run starts once the 1-minute load average is below this (or `--settle-s` has passed): a run
# begun straight after a test run measured its gateway a few percent slower and its half-load
# latency up to twice as high as runs begun on a quiet machine.
QUIET_LOAD = 0.5


def wait_for_quiet(console: Console, settle_s: float) -> float:
    """Wait, up to `settle_s`, for the machine to be quiet; the seconds waited."""
    started = time.monotonic()
    with console.status("") as status:
        while (load := os.getloadavg()[0]) >= QUIET_LOAD:
            waited = time.monotonic() - started
            if waited >= settle_s:
                break
            status.update(
                f"waiting for a quiet machine: load average {load:.2f}, "
                f"starting below {QUIET_LOAD:g} ({waited:.0f} of at most {settle_s:g} s)"
            )
            time.sleep(2.0)
    return time.monotonic() - started


def waited_words(machine: dict[str, str]) -> str:
    waited = float(machine.get("waited", "0"))
    if waited < 1:
        return ""
    return f", after waiting {waited:.0f} s for it to fall below {QUIET_LOAD:g}"


@dataclass
class OpenLoop:
    """One gateway at half its closed-loop rate, with direct and the pass-through at that rate:
    for each, the run with the median p50."""

    gateway: str  # the gateway target's key
    rate: float
    loads: dict[str, Load]  # "direct", "pass" and the gateway's key


@dataclass
class Results:
    targets: list[Target]
    closed: dict[str, list[Load]]  # one Load per round
    open: list[OpenLoop]
    skipped: dict[str, str]  # target key -> why it was not measured
    machine: dict[str, str]
    seconds: float
    warm: float
    rounds: int
    concurrency: int


def main_targets(litellm: Path | None) -> list[Target]:
    targets = [
        Target("direct", "direct to the upstream", "direct"),
        Target("pass", "pass-through proxy", "pass-through"),
        Target("pass-2w", "pass-through proxy", "pass-through", workers=2),
        Target("gw-memory", "gigawatt", "gigawatt", "memory"),
        Target("gw-sqlite", "gigawatt", "gigawatt", "sqlite"),
        Target("gw-redis", "gigawatt", "gigawatt", "redis"),
        Target("gw-sqlite-2w", "gigawatt", "gigawatt", "sqlite", workers=2),
        Target("gw-sqlite-1acct", "gigawatt, one account", "gigawatt", "sqlite", accounts=1),
    ]
    if litellm is not None:
        targets.append(Target("litellm", "LiteLLM proxy", "litellm", str(litellm)))
    return targets


def progress_bar(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        refresh_per_second=4,
    )


# The gateways measured open-loop at half their own closed-loop rate, each beside direct and the
# pass-through at that rate, OPEN_ROUNDS runs of each.
OPEN_GATEWAYS = ("gw-sqlite", "gw-sqlite-2w")
OPEN_ROUNDS = 3


def closed_rounds(
    lab: Lab,
    targets: list[Target],
    tool: LoadTool,
    args: argparse.Namespace,
    progress: Progress,
    task: Any,
) -> dict[str, list[Load]]:
    closed: dict[str, list[Load]] = {t.key: [] for t in targets}
    for r in range(args.rounds):
        # Every other round in reverse, so a drift in the machine's speed moves all alike.
        for target in targets if r % 2 == 0 else targets[::-1]:
            server = lab.servers[target.key]
            progress.update(task, description=f"round {r + 1}: {target.key}, warm-up")
            tool.closed(server, args.concurrency, args.warm)
            progress.update(task, description=f"round {r + 1}: {target.key}, {args.seconds:g} s")
            closed[target.key].append(
                lab.measure(lambda s: tool.closed(s, args.concurrency, args.seconds), server)
            )
            progress.advance(task)
    return closed


def open_loop(
    lab: Lab,
    tool: LoadTool,
    gateway: str,
    closed: list[Load],
    args: argparse.Namespace,
    progress: Progress,
    task: Any,
) -> OpenLoop:
    rate = round(sum(x.ok for x in closed) / sum(x.seconds for x in closed) / 2, -1)
    keys = ("direct", "pass", gateway)
    runs: dict[str, list[Load]] = {key: [] for key in keys}
    for r in range(OPEN_ROUNDS):
        for key in keys if r % 2 == 0 else keys[::-1]:
            progress.update(task, description=f"open loop at {rate:,.0f}/s: {key}")
            runs[key].append(
                lab.measure(lambda s: tool.open(s, rate, args.seconds, args.warm), lab.servers[key])
            )
            progress.advance(task)
    # Near a process's capacity latency swings from run to run: the run with the median p50.
    return OpenLoop(
        gateway,
        rate,
        {key: sorted(x, key=lambda x: x.p50_ms)[len(x) // 2] for key, x in runs.items()},
    )


def benchmark(args: argparse.Namespace, console: Console) -> Results:
    skipped: dict[str, str] = {}
    litellm_dir: Path | None = None
    litellm_version = "not run"
    if not args.no_litellm:
        litellm_dir, litellm_version = litellm_venv(args.litellm_venv, console)
        if litellm_dir is None:
            skipped["litellm"], litellm_version = litellm_version, "not run"
    else:
        skipped["litellm"] = "skipped with --no-litellm"
    targets = main_targets(litellm_dir)
    waited_s = wait_for_quiet(console, args.settle_s)
    load_before = "/".join(f"{x:.2f}" for x in os.getloadavg())
    with (
        tempfile.TemporaryDirectory(prefix="gigawatt-gw-bench-") as tmp_name,
        contextlib.ExitStack() as stack,
    ):
        tmp = Path(tmp_name)
        tool = LoadTool(tmp, args.python_load)
        progress = stack.enter_context(progress_bar(console))
        steps = len(targets) + len(targets) * args.rounds + 3 * len(OPEN_GATEWAYS) * OPEN_ROUNDS
        task = progress.add_task("starting the upstream", total=steps)
        lab = Lab(tmp, stack, console)
        for target in list(targets):
            progress.update(task, description=f"starting {target.key}")
            try:
                lab.start(target)
            except RuntimeError as exc:
                if target.kind != "litellm":
                    raise
                skipped[target.key] = f"did not start: {str(exc)[-400:]}"
                targets.remove(target)
            progress.advance(task)
        closed = closed_rounds(lab, targets, tool, args, progress, task)
        opened = [
            open_loop(lab, tool, gateway, closed[gateway], args, progress, task)
            for gateway in OPEN_GATEWAYS
        ]
        progress.update(task, description="done")
        redis_version = "?"
        if lab.redis_url:
            import redis

            client = redis.Redis.from_url(lab.redis_url)
            redis_version = str(client.info("server")["redis_version"])
            client.close()
        machine = machine_info(tool, tmp)
        machine.update(
            load=load_before,
            waited=f"{waited_s:.0f}",
            redis=redis_version,
            litellm=litellm_version,
            library=library_version(),
        )
    return Results(
        targets,
        closed,
        opened,
        skipped,
        machine,
        args.seconds,
        args.warm,
        args.rounds,
        args.concurrency,
    )


def machine_info(tool: LoadTool, tmp: Path) -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "-"

    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_tool": tool.version(),
        "stack": ", ".join(f"{n} {version(n)}" for n in ("uvicorn", "uvloop", "httptools")),
        "sqlite": sqlite3.sqlite_version,
    }


# --- reporting -------------------------------------------------------------------------------


@dataclass
class Row:
    """One target's rounds: the median round's rate and latencies, CPU summed over all."""

    target: Target
    loads: list[Load]

    def median(self, get: Callable[[Load], float]) -> float:
        return statistics.median(get(x) for x in self.loads)

    @property
    def per_s(self) -> float:
        return self.median(lambda x: x.per_s)

    @property
    def p50(self) -> float:
        return self.median(lambda x: x.p50_ms)

    @property
    def p99(self) -> float:
        return self.median(lambda x: x.p99_ms)

    @property
    def errors(self) -> int:
        return sum(x.errors for x in self.loads)

    @property
    def spread(self) -> float:
        rates = [x.per_s for x in self.loads]
        return max(rates) / min(rates) - 1 if min(rates) > 0 else 0.0

    def cpu_us(self, role: str) -> float:
        ok = sum(x.ok + x.warm_ok for x in self.loads)
        return sum(x.cpu_s.get(role, 0.0) for x in self.loads) * 1e6 / max(1, ok)

    def cores(self, role: str) -> float:
        wall = sum(x.cpu_s.get("wall", 0.0) for x in self.loads)
        return sum(x.cpu_s.get(role, 0.0) for x in self.loads) / max(wall, 1e-9)


def rows(results: Results) -> dict[str, Row]:
    return {t.key: Row(t, results.closed[t.key]) for t in results.targets}


def describe(target: Target) -> str:
    if target.kind == "gigawatt":
        return f"{target.label}, {target.state}" + (
            f", {target.workers} workers" if target.workers > 1 else ""
        )
    return target.label


def state_text(target: Target) -> str:
    if target.kind == "gigawatt":
        return target.state
    if target.kind == "litellm":
        return "none (model rpm/tpm)"
    return "-"


CLOSED_COLUMNS = (
    "target",
    "state",
    "workers",
    "requests/s",
    "p50 (ms)",
    "p99 (ms)",
    "+p50 (ms)",
    "+p99 (ms)",
    "x direct",
    "x pass-through",
    "proxy CPU µs/req",
    "upstream µs/req",
    "load µs/req",
    "spread",
    "outside (cores)",
    "errors",
)


def closed_rows(results: Results) -> list[list[str]]:
    by = rows(results)
    direct, passthrough = by["direct"], by["pass"]
    out = []
    for key, row in by.items():
        t = row.target
        out.append(
            [
                t.label,
                state_text(t),
                str(t.workers) if t.kind != "direct" else "-",
                f"{row.per_s:,.0f}",
                f"{row.p50:,.1f}",
                f"{row.p99:,.1f}",
                "-" if key == "direct" else f"{row.p50 - direct.p50:+,.1f}",
                "-" if key == "direct" else f"{row.p99 - direct.p99:+,.1f}",
                f"{row.per_s / direct.per_s:.2f}",
                f"{row.per_s / passthrough.per_s:.2f}",
                "-" if key == "direct" else f"{row.cpu_us('proxy'):,.0f}",
                f"{row.cpu_us('upstream'):,.0f}",
                f"{row.cpu_us('load'):,.0f}",
                f"{row.spread:.0%}",
                f"{row.cores('outside'):.2f}",
                str(row.errors),
            ]
        )
    return out


OPEN_COLUMNS = (
    "target",
    "asked/s",
    "got/s",
    "p50 (ms)",
    "p99 (ms)",
    "+p50 vs direct (ms)",
    "+p50 vs pass-through (ms)",
    "+p99 vs direct (ms)",
    "send lag p99 (ms)",
    "proxy CPU µs/req",
    "machine busy (cores)",
    "errors",
)
OPEN_LABELS = {
    "direct": "direct",
    "pass": "pass-through proxy, 1 worker",
    "gw-sqlite": "gigawatt, sqlite, 1 worker",
    "gw-sqlite-2w": "gigawatt, sqlite, 2 workers",
}


def open_rows(results: Results) -> list[list[str]]:
    out = []
    for loop in results.open:
        direct, passthrough = loop.loads["direct"], loop.loads["pass"]
        for key, load in loop.loads.items():
            out.append(
                [
                    OPEN_LABELS[key],
                    f"{loop.rate:,.0f}",
                    f"{load.per_s:,.0f}",
                    f"{load.p50_ms:.2f}",
                    f"{load.p99_ms:.2f}",
                    "-" if key == "direct" else f"{load.p50_ms - direct.p50_ms:+.2f}",
                    "-" if key != loop.gateway else f"{load.p50_ms - passthrough.p50_ms:+.2f}",
                    "-" if key == "direct" else f"{load.p99_ms - direct.p99_ms:+.2f}",
                    f"{load.lag_p99_ms or 0.0:.2f}",
                    "-" if key == "direct" else f"{load.cpu_us('proxy'):,.0f}",
                    f"{load.cpu_s.get('machine cores', 0.0):.2f}",
                    str(load.errors),
                ]
            )
    return out


def targets_met(results: Results) -> list[tuple[str, str, bool | None]]:
    by = rows(results)
    sqlite, passthrough = by["gw-sqlite"], by["pass"]
    share = sqlite.per_s / passthrough.per_s
    out: list[tuple[str, str, bool | None]] = [
        (
            f"gigawatt (SQLite, 1 worker) >= {SHARE_OF_PASSTHROUGH_TARGET:.0%} of the "
            "pass-through proxy's requests/s (1 worker)",
            f"{share:.0%}",
            share >= SHARE_OF_PASSTHROUGH_TARGET,
        )
    ]
    if "gw-sqlite-2w" in by and "pass-2w" in by:
        # Each at its best on this machine, with 1 or 2 worker processes.
        best_gw = max(sqlite.per_s, by["gw-sqlite-2w"].per_s)
        best_pass = max(passthrough.per_s, by["pass-2w"].per_s)
        out.append(
            (
                f"gigawatt (SQLite, best of 1 and 2 workers) >= "
                f"{SHARE_OF_PASSTHROUGH_TARGET:.0%} of the pass-through proxy's best",
                f"{best_gw / best_pass:.0%}",
                best_gw / best_pass >= SHARE_OF_PASSTHROUGH_TARGET,
            )
        )
    if "litellm" in by:
        times = sqlite.per_s / by["litellm"].per_s
        out.append(
            (
                f"gigawatt (SQLite, 1 worker) >= {TIMES_LITELLM_TARGET:g}x LiteLLM's requests/s",
                f"{times:.1f}x",
                times >= TIMES_LITELLM_TARGET,
            )
        )
    else:
        out.append(
            (
                f"gigawatt (SQLite) >= {TIMES_LITELLM_TARGET:g}x LiteLLM's requests/s",
                "not run",
                None,
            )
        )
    for loop in results.open:
        added = loop.loads[loop.gateway].p50_ms - loop.loads["direct"].p50_ms
        workers = next(t.workers for t in results.targets if t.key == loop.gateway)
        out.append(
            (
                f"gigawatt (SQLite, {workers} worker{'s' if workers > 1 else ''}) added p50 <= "
                f"{ADDED_P50_TARGET_MS:g} ms at half its maximum rate",
                f"{added:.2f} ms",
                added <= ADDED_P50_TARGET_MS,
            )
        )
    return out


def met_text(met: bool | None, rich: bool) -> str:
    if met is None:
        return "-"
    if rich:
        return "[green]yes[/]" if met else "[red]no[/]"
    return "yes" if met else "**no**"


def print_table(
    console: Console, title: str, columns: tuple[str, ...], body: list[list[str]]
) -> None:
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in body:
        table.add_row(*row)
    console.print(table)


def print_results(results: Results, console: Console) -> None:
    print_table(
        console,
        f"Closed loop, {results.concurrency} connections ({results.machine['load_tool']})",
        CLOSED_COLUMNS,
        closed_rows(results),
    )
    print_table(
        console, "Open loop at half each SQLite gateway's rate", OPEN_COLUMNS, open_rows(results)
    )
    table = Table(title="Targets")
    for column in ("target", "measured", "met"):
        table.add_column(column)
    for name, measured, met in targets_met(results):
        table.add_row(name, measured, met_text(met, rich=True))
    console.print(table)
    for key, why in results.skipped.items():
        console.print(f"[yellow]{key} not measured[/]: {why}")


def reading(results: Results) -> str:
    by = rows(results)
    m = results.machine
    direct, pt = by["direct"], by["pass"]
    mem, sq, rd = by["gw-memory"], by["gw-sqlite"], by["gw-redis"]
    sq2, hot = by["gw-sqlite-2w"], by["gw-sqlite-1acct"]
    pt_us, mem_us, sq_us, rd_us = (r.cpu_us("proxy") for r in (pt, mem, sq, rd))
    parts = [
        f"**Where the CPU goes.** The machine has {m['nproc']} cores, and the load generator, "
        "the upstream and the proxy share them. Direct, the upstream answers "
        f"{direct.per_s:,.0f} requests/s on {direct.cpu_us('upstream'):,.0f} µs of CPU each. "
        f"The pass-through proxy adds {pt_us:,.0f} µs of its own per request and reaches "
        f"{pt.per_s:,.0f} requests/s ({pt.per_s / direct.per_s:.0%} of direct"
        + (
            f": more, since behind it the upstream spends {pt.cpu_us('upstream'):,.0f} µs a "
            f"request against {direct.cpu_us('upstream'):,.0f} called directly"
            if pt.per_s > direct.per_s and pt.cpu_us("upstream") < direct.cpu_us("upstream")
            else ""
        )
        + "). Each proxy "
        "below with one worker keeps its process busy nearly all the time (Redis aside, see "
        "below), so its requests/s is about one core over its CPU per request: CPU per request "
        "is the column to compare. "
        f"The closed-loop latencies are mostly queueing ({results.concurrency} requests always "
        "in flight, so p50 is about concurrency over throughput); the open loop below measures "
        "what one request pays.",
        f"**gigawatt** spends {mem_us:,.0f} µs of CPU per request with memory state, "
        f"{sq_us:,.0f} µs with SQLite and {rd_us:,.0f} µs with Redis (plus "
        f"{rd.cpu_us('redis'):,.0f} µs in redis-server), against the pass-through's "
        f"{pt_us:,.0f} µs, and so reaches {mem.per_s / pt.per_s:.0%} (memory), "
        f"{sq.per_s / pt.per_s:.0%} (SQLite) and {rd.per_s / pt.per_s:.0%} (Redis) of the "
        f"pass-through's requests/s. The {mem_us - pt_us:,.0f} µs it adds even in memory are "
        "its own Python per request: parsing the request and the response JSON (to size the "
        "reservation and read the usage), counting the prompt's tokens, the limiter's admit "
        "and reconcile, the limit headers (ten in OpenAI's dialect, each built and then checked "
        "by uvicorn), metrics. The state store adds "
        f"{sq_us - mem_us:,.0f} µs (SQLite) and {rd_us - mem_us:,.0f} µs (Redis) on top. "
        "`benchmarks/gateway.py --profile` shows where the time goes.",
    ]
    rd_busy, sq_busy = rd.cores("proxy"), sq.cores("proxy")
    if rd_busy < 0.9 * sq_busy:
        parts.append(
            f"**Redis** also leaves the gateway process idle part of the time: it used "
            f"{rd_busy:.2f} of a core against {sq_busy:.2f} with SQLite. Its calls are awaited, "
            "so the event loop serves other requests meanwhile, but each request waits out two "
            "round trips (admit, reconcile), and when every request in flight is waiting on Redis "
            "or the upstream the process has nothing to do."
        )
    two = sq2.per_s / sq.per_s
    parts.append(
        f"**Two workers** with SQLite reach {sq2.per_s:,.0f} requests/s ({two:.2f}x one), "
        f"using {sq2.cores('proxy'):.2f} cores against {sq_busy:.2f} for one: "
        + (
            "with the upstream and the load generator on the same two cores, a second "
            "process has little idle CPU to take."
            if two < 1.3
            else "the second process finds CPU the first left idle."
        )
        + (
            f" The pass-through with two workers serves {by['pass-2w'].per_s:,.0f} requests/s "
            f"({by['pass-2w'].per_s / pt.per_s:.2f}x one), so at their best gigawatt with SQLite "
            f"serves {max(sq.per_s, sq2.per_s) / max(pt.per_s, by['pass-2w'].per_s):.0%} of "
            "what the pass-through does."
            if "pass-2w" in by
            else ""
        )
        + f" **One account** for all {results.concurrency} connections (the same SQLite "
        f"gateway, one key) gets {hot.per_s:,.0f} requests/s ({hot.per_s / sq.per_s:.0%} of "
        f"the {ACCOUNTS}-account rate) at {hot.cpu_us('proxy'):,.0f} µs per request: an "
        "account's row holds every reservation it has in flight, and each admit and reconcile "
        "encodes and rewrites the whole row, so an account with many requests in flight costs "
        "more per request."
    )
    if "litellm" in by:
        ll = by["litellm"]
        parts.append(
            f"**LiteLLM's proxy** ({m['litellm']}, one process) serves {ll.per_s:,.0f} "
            f"requests/s at {ll.cpu_us('proxy'):,.0f} µs of CPU per request, "
            f"{ll.cpu_us('proxy') / sq_us:.0f} times gigawatt's with SQLite; gigawatt serves "
            f"{sq.per_s / ll.per_s:.1f}x its requests/s."
        )
    else:
        parts.append(f"**LiteLLM** was not measured: {results.skipped.get('litellm', '?')}")
    one, two = results.open
    o_direct, o_pt, o_sq = one.loads["direct"], one.loads["pass"], one.loads[one.gateway]
    t_direct, t_sq = two.loads["direct"], two.loads[two.gateway]
    t_machine = t_sq.cpu_s.get("machine cores", 0.0)
    o_machine = o_sq.cpu_s.get("machine cores", 0.0)
    parts.append(
        f"**Latency at half load.** At {one.rate:,.0f} requests/s, about half the "
        "SQLite gateway's closed-loop rate, sent open-loop at a fixed rate, its p50 is "
        f"{o_sq.p50_ms:.2f} ms against {o_direct.p50_ms:.2f} ms direct and {o_pt.p50_ms:.2f} ms "
        f"through the pass-through: it adds {o_sq.p50_ms - o_direct.p50_ms:.2f} ms at p50 "
        f"({o_sq.p50_ms - o_pt.p50_ms:.2f} ms more than the pass-through) and "
        f"{o_sq.p99_ms - o_direct.p99_ms:.2f} ms at p99. The generator sent 99% of its requests "
        f"within {o_sq.lag_p99_ms or 0.0:.2f} ms of their schedule. At this rate each request "
        f"costs the proxies more CPU than at saturation ({o_sq.cpu_us('proxy'):,.0f} against "
        f"{sq_us:,.0f} µs for the gateway): at saturation each wake-up of an event loop serves "
        "several requests, here about one, and SQLite commits one call at a time rather than a "
        "turn's worth. So at half its closed-loop rate the gateway needs "
        f"{one.rate * o_sq.cpu_us('proxy') / 1e6:.2f} of a core (its event loop and the SQLite "
        "store's checkpoint thread), and the upstream and the load generator also cost more per "
        "request at this rate: the whole machine was "
        f"{o_machine:.2f} of its {m['nproc']} cores busy over the run"
        + (
            ", so much of what the gateway adds is waiting for a core. "
            if o_machine >= 0.85 * float(m["nproc"])
            else ". "
        )
        + "Two workers at half their own rate "
        f"({two.rate:,.0f} requests/s) add {t_sq.p50_ms - t_direct.p50_ms:.2f} ms at p50 and "
        f"{t_sq.p99_ms - t_direct.p99_ms:.2f} ms at p99, on {t_sq.cpu_us('proxy'):,.0f} µs of "
        "CPU per request, with the whole machine "
        f"{t_machine:.2f} of its {m['nproc']} cores busy"
        + (
            ": their higher rate and the rereads two processes cause (a row another process "
            "changed since it was cached) leave the load generator, the upstream and the two "
            "workers queueing for the same cores."
            if t_machine >= 0.9 * float(m["nproc"])
            else ". Why two workers add more than one is not pinned down: with two processes "
            "writing the same accounts about a quarter of the calls find the row changed since "
            "they cached it and read it again, and some wait for the other's write lock."
        )
    )
    outside = max(r.cores("outside") for r in by.values())
    idle = max(r.cores("idle servers") for r in by.values())
    worst = max(by.values(), key=lambda r: r.spread)
    order = "every other round in reverse order" if results.rounds > 1 else "one round"
    parts.append(
        f"One run: {results.rounds} rounds of {results.seconds:g} s per target, {order}, with "
        f"every server up throughout (the idle ones used at most {idle:.2f} of a core). Load "
        f"average before it: {m['load']}{waited_words(m)}. The rest of the machine used up to "
        f"{outside:.2f} of a core during a target's rounds (column `outside`), and a target's "
        f"rounds differ by up to {worst.spread:.0%} ({describe(worst.target)}); the median "
        "round is reported. CPU per request moves "
        "much less than requests/s with what else runs on the machine."
    )
    return "\n\n".join(parts)


def markdown(results: Results, command: str, when: str) -> str:
    m = results.machine
    skipped = "".join(f" {k} was not measured: {why}." for k, why in results.skipped.items())
    setup = (
        "Requests per second and latency of non-streaming chat completions through each "
        "target, all in front of one upstream: the simulated backend (`gigawatt sim-backend "
        "--time-scale 0`, one process, answers at once) with a short prompt and "
        "`[[sim:tokens=16]]`. The targets: the upstream directly; `benchmarks/passthrough.py`, "
        "a pass-through proxy with no limits on the gateway's stack (pure ASGI on uvicorn with "
        "uvloop and httptools, the gateway's own upstream client, the cycle collector set as "
        "`gigawatt serve` sets it), with one and with two worker processes; `gigawatt serve` "
        "with memory, SQLite and Redis state and a policy whose rpm, input_tpm and output_tpm "
        "buckets, 5-hour session and "
        f"weekly windows all apply but never refuse, with {ACCOUNTS} accounts of one key each "
        "taken in turn (memory:// keys are made through the admin API, since they live in the "
        "gateway's process); and LiteLLM's proxy with model-level rpm and tpm limits set as "
        "high, `num_retries: 0`, a master key, no database and `LITELLM_LOG=ERROR` (no access "
        "log, like the others)."
    )
    method = (
        f"Closed loop: {m['load_tool']}, 1 thread, {results.concurrency} connections, "
        f"{results.rounds} round{'s' if results.rounds != 1 else ''} per target of a "
        f"{results.warm:g} s warm-up and {results.seconds:g} s timed, "
        "every other round in reverse order; the median round's requests/s and latencies. "
        "CPU per request is the user+system time of each process tree over the timed runs "
        "(from /proc), divided by the requests answered; `outside` is the CPU the rest of the "
        "machine used meanwhile (other processes, and kernel work charged to none), in cores. "
        "Open loop: a Python generator in its own process (uvloop, the gateway's own HTTP "
        "client, the cheapest measured in CPU per request), "
        "sending at a fixed rate, latency timed from each send."
    )
    lines = [
        START,
        "## Gateway",
        "",
        setup + skipped,
        "",
        method,
        "",
        "```console",
        f"$ {command}",
        "```",
        "",
        f"Run {when}, gigawatt at {m['library']}, on {m['nproc']} CPUs ({m['cpu']}), {m['os']}, "
        f"Python {m['python']}, {m['stack']}, SQLite {m['sqlite']}, Redis {m['redis']} "
        "(throwaway local redis-server), "
        + (
            f"LiteLLM {m['litellm']} (its own virtual environment), "
            if m["litellm"] != "not run"
            else ""
        )
        + "every process on the same machine.",
        "",
        f"Closed loop, {results.concurrency} connections. `+p50`, `+p99`: over direct. "
        "`x direct`, `x pass-through`: requests/s over theirs. `spread`: how far the fastest "
        "round's requests/s is above the slowest's.",
        "",
        *md_table(CLOSED_COLUMNS, closed_rows(results), left=3),
        "",
        "Open loop: each SQLite gateway at half its own closed-loop rate, beside direct and the "
        f"pass-through at that rate, same upstream, {OPEN_ROUNDS} runs of each, every other in "
        "reverse order; the run with the median p50. CPU per request counts the requests of the "
        "generator's warm-up too; `machine busy`: the whole machine's CPU over each run "
        "(start-up and warm-up included), in cores.",
        "",
        *md_table(OPEN_COLUMNS, open_rows(results)),
        "",
        *md_table(
            ("target", "measured", "met"),
            [[n, v, met_text(ok, rich=False)] for n, v, ok in targets_met(results)],
        ),
        "",
        reading(results),
        END,
    ]
    return "\n".join(lines) + "\n"


# --- the stack -------------------------------------------------------------------------------


def stack_targets() -> list[Target]:
    targets = [Target("direct", "direct to the upstream", "direct")]
    servers = ["uvicorn"] + (["granian"] if has("granian") else [])
    clients = ["gigawatt", "aiohttp"] + (["httpx"] if has("httpx") else [])
    for server in servers:
        for client in clients:
            key = f"pass-{server}-{client}"
            targets.append(
                Target(key, f"pass-through, {server}", "pass-through", f"{client}@{server}")
            )
    return targets


def has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@dataclass
class StackResults:
    targets: list[Target]
    closed: dict[str, list[Load]]
    machine: dict[str, str]
    seconds: float
    rounds: int
    concurrency: int


def stack_benchmark(args: argparse.Namespace, console: Console) -> StackResults:
    targets = stack_targets()
    gateways = [Target("gw-uvicorn", "gigawatt, uvicorn", "gigawatt", "sqlite")]
    if has("granian"):
        gateways.append(Target("gw-granian", "gigawatt, granian", "gigawatt", "sqlite"))
    load_before = "/".join(f"{x:.2f}" for x in os.getloadavg())
    with (
        tempfile.TemporaryDirectory(prefix="gigawatt-gw-stack-") as tmp_name,
        contextlib.ExitStack() as stack,
    ):
        tmp = Path(tmp_name)
        tool = LoadTool(tmp, args.python_load)
        progress = stack.enter_context(progress_bar(console))
        everything = targets + gateways
        task = progress.add_task("starting", total=len(everything) * (1 + args.rounds))
        lab = Lab(tmp, stack, console)
        for target in everything:
            progress.update(task, description=f"starting {target.key}")
            if target.key == "gw-granian":
                lab.gigawatt_on_granian(target)
            else:
                lab.start(target)
            progress.advance(task)
        closed = closed_rounds(lab, everything, tool, args, progress, task)
        machine = machine_info(tool, tmp)
        machine.update(load=load_before, library=library_version())
        machine["granian"] = version_of("granian")
        machine["httpx"] = version_of("httpx")
        machine["aiohttp"] = version_of("aiohttp")
    return StackResults(everything, closed, machine, args.seconds, args.rounds, args.concurrency)


def version_of(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


STACK_COLUMNS = (
    "target",
    "server",
    "upstream client",
    "requests/s",
    "p50 (ms)",
    "p99 (ms)",
    "proxy CPU µs/req",
    "x the gateway's stack",
    "spread",
    "outside (cores)",
    "errors",
)


def stack_rows(results: StackResults) -> list[list[str]]:
    by = {t.key: Row(t, results.closed[t.key]) for t in results.targets}
    base = by["pass-uvicorn-gigawatt"]
    out = []
    for key, row in by.items():
        t = row.target
        if t.kind == "pass-through":
            client, _, server = t.state.partition("@")
            what = "pass-through proxy"
        elif t.kind == "gigawatt":
            client, server = "gigawatt", key.removeprefix("gw-")
            what = "gigawatt, SQLite"
        else:
            client = server = "-"
            what = "direct"
        out.append(
            [
                what,
                server,
                client,
                f"{row.per_s:,.0f}",
                f"{row.p50:,.1f}",
                f"{row.p99:,.1f}",
                "-" if t.kind == "direct" else f"{row.cpu_us('proxy'):,.0f}",
                "-" if t.kind != "pass-through" else f"{row.per_s / base.per_s:.2f}",
                f"{row.spread:.0%}",
                f"{row.cores('outside'):.2f}",
                str(row.errors),
            ]
        )
    return out


def stack_reading(results: StackResults) -> str:
    by = {t.key: Row(t, results.closed[t.key]) for t in results.targets}
    base = by["pass-uvicorn-gigawatt"]
    parts = []
    others = (("aiohttp", "aiohttp's `ClientSession`"), ("httpx", "`httpx.AsyncClient`"))
    for client, name in others:
        if f"pass-uvicorn-{client}" in by:
            other = by[f"pass-uvicorn-{client}"]
            parts.append(
                f"With {name} as upstream client the pass-through spends "
                f"{other.cpu_us('proxy'):,.0f} µs of CPU per request against the gateway's "
                f"client's {base.cpu_us('proxy'):,.0f} µs "
                f"({other.cpu_us('proxy') / base.cpu_us('proxy'):.1f}x) and serves "
                f"{other.per_s:,.0f} requests/s against {base.per_s:,.0f}."
            )
    if "pass-granian-gigawatt" in by:
        gr = by["pass-granian-gigawatt"]
        parts.append(
            f"granian as server serves the pass-through at {gr.per_s:,.0f} requests/s "
            f"({gr.per_s / base.per_s:.2f}x uvicorn's) on {gr.cpu_us('proxy'):,.0f} µs of "
            f"CPU per request against uvicorn's {base.cpu_us('proxy'):,.0f} µs."
        )
    if "gw-granian" in by:
        gu, gg = by["gw-uvicorn"], by["gw-granian"]
        parts.append(
            f"The gateway itself (SQLite state) serves {gu.per_s:,.0f} requests/s on uvicorn "
            f"({gu.cpu_us('proxy'):,.0f} µs per request) and {gg.per_s:,.0f} on granian "
            f"({gg.cpu_us('proxy'):,.0f} µs): {gg.per_s / gu.per_s:.2f}x."
        )
    return " ".join(parts)


def stack_markdown(results: StackResults, command: str, when: str) -> str:
    m = results.machine
    setup = (
        f"Run {when}, gigawatt at {m['library']}, on {m['nproc']} CPUs ({m['cpu']}), {m['os']}, "
        f"Python {m['python']}, {m['stack']}, aiohttp {m['aiohttp']}, httpx {m['httpx']}, "
        f"granian {m['granian']}; load "
        f"from {m['load_tool']}, 1 thread, {results.concurrency} connections, {results.rounds} "
        f"rounds of {results.seconds:g} s per target (every other in reverse order), every "
        f"process on the same machine (load average before it: {m['load']}). The pass-through "
        "proxy is `benchmarks/passthrough.py` in front of `gigawatt sim-backend --time-scale 0`, "
        "with non-streaming chat completions of 16 tokens; the gateway rows are `gigawatt serve` "
        "with SQLite state and the same app under granian. granian runs with one worker, one "
        "runtime thread, uvloop and HTTP/1, as uvicorn does. CPU per request: user+system time "
        "of the proxy's processes over the timed runs, divided by the requests answered; "
        "`outside`: CPU used meanwhile by the rest of the machine (other processes, and kernel "
        "work charged to none), in cores; the median round's requests/s and latencies."
    )
    lines = [
        STACK_START,
        "## Measured",
        "",
        "```console",
        f"$ {command}",
        "```",
        "",
        setup,
        "",
        *md_table(STACK_COLUMNS, stack_rows(results), left=3),
        "",
        stack_reading(results),
        STACK_END,
    ]
    return "\n".join(lines) + "\n"


# --- profiling -------------------------------------------------------------------------------


def profile(args: argparse.Namespace, console: Console) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="gigawatt-gw-prof-") as tmp_name,
        contextlib.ExitStack() as stack,
    ):
        tmp = Path(tmp_name)
        tool = LoadTool(tmp, args.python_load)
        lab = Lab(tmp, stack, console)
        target = Target("gw-prof", "gigawatt", "gigawatt", args.profile_state)
        out = tmp / "gateway.prof"
        server = lab._gigawatt(target, profile_to=out)
        tool.closed(server, args.concurrency, args.warm)
        os.kill(server.proc.pid, signal.SIGUSR1)
        load = tool.closed(server, args.concurrency, args.seconds)
        os.kill(server.proc.pid, signal.SIGUSR1)
        for _ in range(100):
            if out.exists():
                break
            time.sleep(0.1)
        stop(server.proc)
        time.sleep(0.5)  # the dump may still be being written when the file appears
        if args.profile_file:
            shutil.copyfile(out, args.profile_file)
        stats = pstats.Stats(str(out))
        total = sum(tt for _, _, tt, _, _ in stats.stats.values())  # type: ignore[attr-defined]
        console.rule(
            f"gigawatt ({args.profile_state}) under cProfile: {load.per_s:,.0f} requests/s, "
            f"{load.ok:,} requests in {load.seconds:.1f} s, {total:.2f} s profiled"
        )
        groups: dict[str, float] = {}
        for (path, _, name), (_, _, tt, _, _) in stats.stats.items():  # type: ignore[attr-defined]
            group = profile_group(path, name)
            groups[group] = groups.get(group, 0.0) + tt
        table = Table(
            title="Own time by where the code lives (µs/request include the profiler's overhead)"
        )
        for column in ("code", "s", "share", "µs/request"):
            table.add_column(column, justify="left" if column == "code" else "right")
        for group, tt in sorted(groups.items(), key=lambda kv: -kv[1]):
            share = f"{tt / total:.1%}"
            table.add_row(group, f"{tt:.3f}", share, f"{tt * 1e6 / max(1, load.ok):.1f}")
        console.print(table)
        console.rule("top 15 by own time")
        stats.stream = sys.stdout  # type: ignore[attr-defined]
        stats.strip_dirs().sort_stats("tottime").print_stats(15)


def profile_group(path: str, name: str) -> str:
    """A profile entry's home: gigawatt's modules by name, everything else by package."""
    if "/gigawatt/" in path:
        return "gigawatt." + path.rsplit("/gigawatt/", 1)[1].removesuffix(".py").replace("/", ".")
    if path == "~":  # a built-in: "{method 'execute' of 'sqlite3.Connection' objects}"
        found = re.search(r"of '([\w.]+)'", name) or re.search(r"method ([\w.]+)", name)
        home = found.group(1).split(".")[0] if found else "?"
        return "builtins" if home in BUILTIN_TYPES else home
    parts = Path(path).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    for i, part in enumerate(parts[:-1]):
        if part.startswith("python3") and i > 0 and parts[i - 1] == "lib":  # the stdlib
            return parts[i + 1].removesuffix(".py")
    return Path(path).stem


BUILTIN_TYPES = {"str", "bytes", "dict", "list", "tuple", "set", "int", "float", "builtins"}


# --- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="timed seconds per run")
    parser.add_argument("--warm", type=float, default=2.0, help="warm-up seconds before each run")
    parser.add_argument("--concurrency", type=int, default=64, help="connections (closed loop)")
    parser.add_argument("--rounds", type=int, default=5, help="closed-loop rounds per target")
    parser.add_argument("--no-litellm", action="store_true", help="do not run LiteLLM")
    parser.add_argument(
        "--settle-s",
        type=float,
        default=180.0,
        help=f"wait up to this long for the load average to fall below {QUIET_LOAD:g} (0: never)",
    )
    parser.add_argument(
        "--litellm-venv",
        type=Path,
        default=Path(tempfile.gettempdir()) / "gigawatt-bench-litellm",
        help="virtual environment for LiteLLM, created on first use",
    )
    parser.add_argument(
        "--python-load", action="store_true", help="the Python generator even where wrk exists"
    )
    parser.add_argument("--stack", action="store_true", help="compare servers and clients")
    parser.add_argument("--profile", action="store_true", help="cProfile the gateway under load")
    parser.add_argument("--profile-state", choices=("memory", "sqlite", "redis"), default="sqlite")
    parser.add_argument("--profile-file", type=Path, help="with --profile: keep the raw profile")
    parser.add_argument("--out", type=Path, help="markdown file to write (default: the docs)")
    # Internal: the load generator and the gateway launcher run as child processes.
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--keys-out", help=argparse.SUPPRESS)
    parser.add_argument("--accounts", type=int, default=ACCOUNTS, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.loadgen:
        return run_loadgen(args.loadgen)
    if args.serve:
        return serve(args.serve, args.port, args.keys_out, args.accounts, args.profile_out)
    # Wide enough for the tables when the output is not a terminal.
    console = Console() if sys.stdout.isatty() else Console(width=200)
    command, when = run_stamp("gateway.py", argv)
    if args.profile:
        profile(args, console)
        return 0
    if args.stack:
        stack_results = stack_benchmark(args, console)
        print_table(console, "Stack", STACK_COLUMNS, stack_rows(stack_results))
        console.print(stack_reading(stack_results))
        out = args.out or ROOT / "docs" / "gateway.md"
        write_section(
            out, stack_markdown(stack_results, command, when), STACK_START, STACK_END, None
        )
        console.print(f"wrote the Measured section of {out}")
        return 0
    results = benchmark(args, console)
    print_results(results, console)
    out = args.out or ROOT / "docs" / "benchmarks.md"
    write_section(out, markdown(results, command, when), START, END, "<!-- limiter:end -->")
    console.print(f"wrote the Gateway section of {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
