"""A minimal pass-through proxy: the floor a Python gateway on the same stack can reach.

    .venv/bin/python benchmarks/passthrough.py --upstream http://127.0.0.1:8001 --port 8002
        [--client gigawatt|aiohttp|httpx] [--server uvicorn|granian] [--workers N]

A pure ASGI app that forwards every request (method, path, query, body, content type and
authorization) to the upstream and sends back its status, content type and body. No limits, no
parsing, no logging. By default it runs on the gateway's own stack: uvicorn with uvloop and
httptools, and the gateway's own upstream client (`gigawatt.gateway.http_client`) with pooled
connections. `--client aiohttp`, `--client httpx` and `--server granian` swap one part each, for
`benchmarks/gateway.py --stack` (httpx and granian are optional: install them to measure them).

The app is configured through the environment (`PASSTHROUGH_UPSTREAM`, `PASSTHROUGH_CLIENT`), so
granian, which imports its target by name, builds the same app as uvicorn.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from gigawatt.gateway import http_client
from gigawatt.gateway.serve import UVICORN_OPTIONS, tune_gc

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

UPSTREAM_ENV, CLIENT_ENV = "PASSTHROUGH_UPSTREAM", "PASSTHROUGH_CLIENT"
FORWARDED = (b"content-type", b"authorization", b"x-api-key", b"anthropic-version")


class Client:
    """One pooled upstream client: `request` returns (status, content type, body)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes]:
        raise NotImplementedError


class GigawattClient(Client):
    """The gateway's own client. Only POST: the requests it forwards are chat completions."""

    async def start(self) -> None:
        self.client = http_client.Client()
        self.timeouts = http_client.Timeouts(total=600.0, read=None, connect=10.0)
        # A request's head depends on its URL and forwarded headers (each caller's key): made
        # once for each, as the gateway makes one per route.
        self.endpoints: dict[tuple[str, tuple[tuple[str, str], ...]], http_client.Endpoint] = {}

    async def close(self) -> None:
        await self.client.close()

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes]:
        if method != "POST":
            return 405, "text/plain", b"this pass-through forwards POST requests only"
        key = (url, tuple(headers.items()))
        endpoint = self.endpoints.get(key)
        if endpoint is None:
            endpoint = self.endpoints[key] = http_client.Endpoint.post(url, headers)
        response = await self.client.post(endpoint, body, self.timeouts)
        data = await response.read()
        return response.status, response.headers.get("content-type", ""), data


class AiohttpClient(Client):
    async def start(self) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            # Cookies an upstream sets must not be kept and sent on for the next caller.
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        await self.session.close()

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes]:
        async with self.session.request(method, url, data=body, headers=headers) as response:
            data = await response.read()
            return response.status, response.headers.get("content-type", ""), data


class HttpxClient(Client):
    async def start(self) -> None:
        import httpx

        limits = httpx.Limits(max_connections=None, max_keepalive_connections=1024)
        self.client = httpx.AsyncClient(limits=limits, timeout=600.0)

    async def close(self) -> None:
        await self.client.aclose()

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes]:
        response = await self.client.request(method, url, content=body, headers=headers)
        return response.status_code, response.headers.get("content-type", ""), response.content


CLIENTS: dict[str, type[Client]] = {
    "gigawatt": GigawattClient,
    "aiohttp": AiohttpClient,
    "httpx": HttpxClient,
}


class PassThrough:
    def __init__(self, upstream: str, client: str = "gigawatt") -> None:
        self.upstream = upstream.rstrip("/")
        self.client = CLIENTS[client]()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self.client.start()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.client.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in FORWARDED
        }
        url = self.upstream + scope["path"]
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        try:
            status, content_type, body = await self.client.request(
                scope["method"], url, headers, b"".join(chunks)
            )
        except Exception as exc:  # any upstream failure is a 502, as a gateway would answer
            status, content_type, body = 502, "text/plain", f"upstream failed: {exc}".encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode("latin-1")),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def app() -> PassThrough:
    """The factory granian and uvicorn call: the app the environment describes. The process's
    cycle collector is set as `gigawatt serve` sets its own."""
    tune_gc()
    return PassThrough(os.environ[UPSTREAM_ENV], os.environ.get(CLIENT_ENV, "gigawatt"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:8001")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client", choices=sorted(CLIENTS), default="gigawatt")
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args(argv)
    os.environ[UPSTREAM_ENV] = args.upstream
    os.environ[CLIENT_ENV] = args.client
    if args.server == "granian":
        from granian import Granian

        # Same shape as uvicorn's: one worker, one runtime thread, uvloop, no access log.
        Granian(
            "passthrough:app",
            address=args.host,
            port=args.port,
            interface="asgi",  # type: ignore[arg-type]
            loop="uvloop",  # type: ignore[arg-type]
            http="1",  # type: ignore[arg-type]
            workers=1,
            factory=True,
            log_level="warning",  # type: ignore[arg-type]
            log_access=False,
            working_dir=Path(__file__).resolve().parent,
        ).serve()
        return 0
    import uvicorn

    # The options `gigawatt serve` runs the gateway with.
    uvicorn.run(
        # Worker processes import the app by name, as `gigawatt serve --workers N` does.
        "passthrough:app" if args.workers > 1 else app(),
        factory=args.workers > 1,
        app_dir=str(Path(__file__).resolve().parent),
        workers=args.workers,
        host=args.host,
        port=args.port,
        **UVICORN_OPTIONS,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
