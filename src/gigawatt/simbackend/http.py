"""The little HTTP the backend needs on top of ASGI: a router, bodies, responses, disconnects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from gigawatt.simbackend.types import Message, Receive, Scope, Send

T = TypeVar("T")
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = Sequence[tuple[bytes, bytes]]

MAX_BODY_BYTES = 32 * 1024 * 1024
JSON_HEADERS: Headers = ((b"content-type", b"application/json"),)
SSE_HEADERS: Headers = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
)


class BodyTooLarge(Exception):
    pass


class Router:
    """Dispatch on (method, path); other scope types get nothing, lifespan is acknowledged."""

    def __init__(self, routes: Mapping[tuple[str, str], Handler]) -> None:
        self._routes = dict(routes)
        self._paths = {path for _, path in routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        handler = self._routes.get((scope["method"], scope["path"]))
        if handler is not None:
            await handler(scope, receive, send)
        elif scope["path"] in self._paths:
            await send_json(send, 405, _plain_error("method not allowed"))
        else:
            await send_json(send, 404, _plain_error(f"no route for {scope['path']}"))


async def _lifespan(receive: Receive, send: Send) -> None:
    # Nothing to set up; answering lets servers that run lifespan by default start cleanly.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _plain_error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error"}}


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None if the client went away first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value)
    return None


def dump_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


async def send_json(send: Send, status: int, value: Any, headers: Headers = ()) -> None:
    await send_bytes(send, status, dump_json(value), (*JSON_HEADERS, *headers))


async def send_bytes(send: Send, status: int, body: bytes, headers: Headers) -> None:
    length = (b"content-length", str(len(body)).encode())
    await send({"type": "http.response.start", "status": status, "headers": [*headers, length]})
    await send({"type": "http.response.body", "body": body})


async def until_disconnect(receive: Receive, work: Awaitable[T]) -> T | None:
    """Run `work` unless the client disconnects first: its result, or None if it was cancelled.

    ASGI reports a disconnect only to a pending `receive`, so one waits beside the work, and the
    work is cancelled the moment the client goes: generation stops at once, not at the next token.
    """
    job = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((job, watcher), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        job.cancel()
        watcher.cancel()
        raise
    watcher.cancel()
    # Checked first: once the response is complete, receive() reports a disconnect at once.
    if job.done():
        return job.result()
    job.cancel()
    await asyncio.wait((job,))
    if not job.cancelled():
        job.result()  # an error raised while stopping is still an error
    return None


async def _disconnected(receive: Receive) -> None:
    message: Message = await receive()
    while message["type"] != "http.disconnect":
        message = await receive()
