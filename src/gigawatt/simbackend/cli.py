"""`gigawatt sim-backend`: serve the simulated models until interrupted."""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING

from gigawatt.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from gigawatt.cli import Subparsers

_GRACE_S = 5


def add_sim_backend(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "sim-backend",
        help="serve simulated models over the OpenAI and Anthropic HTTP APIs",
        description="Serve simulated LLMs that speak the OpenAI (/v1/chat/completions) and "
        "Anthropic (/v1/messages) APIs, streaming made-up text with realistic timing. Any model "
        "name is accepted; small, medium and large have preset speeds. See docs/sim-backend.md.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply every simulated delay by this (0: answer at once; default 1)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the answers (default 0)")
    parser.set_defaults(run=sim_backend)


def sim_backend(args: argparse.Namespace) -> int:
    # Imported here so other commands do not pay for the server at start-up.
    import uvicorn

    from gigawatt.simbackend.app import create_app
    from gigawatt.simbackend.server import (
        bind_socket,
        server_config,
        socket_url,
    )

    if not (math.isfinite(args.time_scale) and args.time_scale >= 0):
        print("gigawatt: --time-scale must be a number >= 0", file=sys.stderr)
        return EXIT_USAGE
    if not 0 <= args.port <= 65535:
        print("gigawatt: --port must be from 0 to 65535", file=sys.stderr)
        return EXIT_USAGE
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        print(f"gigawatt: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    app = create_app(time_scale=args.time_scale, seed=args.seed)
    server = uvicorn.Server(server_config(app, grace_s=_GRACE_S))
    print(f"simulated backend on {socket_url(sock)} (time scale {args.time_scale:g})", flush=True)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn shuts down cleanly on Ctrl-C, then raises it again for the caller to see.
        pass
    finally:
        sock.close()
    return EXIT_OK
