"""`gigawatt serve`: the gateway, on the embedded default or a policy file."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gigawatt.exits import EXIT_FAILED, EXIT_USAGE

if TYPE_CHECKING:
    from gigawatt.cli import Subparsers

DEMO_ACCOUNT = "demo"
DEMO_PLAN = "pro"


def add_serve(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the OpenAI- and Anthropic-compatible gateway",
        description="Run the gateway. With no --config it runs the embedded default: SQLite "
        "state in ./.gigawatt/, the built-in simulated backend, the example plans, and a demo "
        "key printed at start.",
    )
    parser.add_argument("--config", type=Path, help="policy file (default: the embedded one)")
    parser.add_argument("--host", help="address to listen on (default: the policy's)")
    parser.add_argument("--port", type=int, help="port to listen on (default: the policy's)")
    parser.add_argument("--workers", type=int, default=1, help="processes (default: 1)")
    parser.set_defaults(run=serve)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gigawatt.cli import report_policy_error
    from gigawatt.errors import PolicyError, StateError
    from gigawatt.gateway.serve import CONFIG_ENV, UVICORN_OPTIONS, build_gateway, load, tune_gc
    from gigawatt.gateway.worker_metrics import METRICS_DIR_ENV

    try:
        policy = load(args.config)
    except PolicyError as exc:
        report_policy_error(exc)
        return EXIT_USAGE
    if args.workers < 1:
        print("gigawatt: --workers must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    host = args.host or policy.gateway.host
    port = args.port if args.port is not None else policy.gateway.port
    try:
        gateway = build_gateway(policy)
        demo_key = _demo_key(gateway) if args.config is None else None
    except StateError as exc:
        print(f"gigawatt: cannot open the state store: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _banner(host, port, demo_key, policy.gateway.state)
    options = {"host": host, "port": port, **UVICORN_OPTIONS}
    if args.workers == 1:
        tune_gc()
        uvicorn.run(gateway, **options)  # type: ignore[arg-type]
    else:
        if args.config is not None:
            os.environ[CONFIG_ENV] = str(args.config.resolve())
        # Where the workers leave their metrics for each other (`worker_metrics`).
        metrics_dir = tempfile.mkdtemp(prefix="gigawatt-metrics-")
        os.environ[METRICS_DIR_ENV] = metrics_dir
        try:
            uvicorn.run(
                "gigawatt.gateway.serve:app_from_env",
                factory=True,
                workers=args.workers,
                **options,  # type: ignore[arg-type]
            )
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _demo_key(gateway: object) -> str:
    """A fresh key for the demo account; earlier demo keys are revoked (their secrets are gone)."""
    store = gateway.keys.store  # type: ignore[attr-defined]
    now = time.time()
    for record in store.list(DEMO_ACCOUNT):
        if record.revoked_at is None and record.label == "demo":
            store.revoke(record.key_id, now)
    _, secret = store.create(DEMO_ACCOUNT, DEMO_PLAN, now, label="demo")
    return str(secret)


def _banner(host: str, port: int, key: str | None, state: str) -> None:
    url = f"http://{host}:{port}"
    print(f"gigawatt gateway on {url}  (state: {state})")
    if key is None:
        print("create a key with: gigawatt keys create --config FILE --account NAME --plan PLAN")
        sys.stdout.flush()
        return
    python = sys.executable
    sdk = (
        f"import openai; c = openai.OpenAI(base_url='{url}/v1', api_key='{key}'); "
        "print(c.chat.completions.create(model='small', "
        "messages=[{'role': 'user', 'content': 'Hello!'}]).choices[0].message.content)"
    )
    body = '{"model": "small", "messages": [{"role": "user", "content": "Hello!"}]}'
    print(f"""
demo key (plan {DEMO_PLAN}): {key}

try it:
  curl {url}/v1/chat/completions \\
    -H "Authorization: Bearer {key}" -H "content-type: application/json" \\
    -d '{body}'

  curl {url}/v1/usage -H "x-api-key: {key}"

  {python} -c "{sdk}"

metrics: {url}/metrics    stop: Ctrl-C
""")
    sys.stdout.flush()
