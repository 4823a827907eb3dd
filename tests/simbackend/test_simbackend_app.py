"""The ASGI app on its own, driven in memory: routing, lifespan, bodies and disconnects."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gigawatt.simbackend import DEFAULT_MODELS, SimApp, create_app
from gigawatt.simbackend.types import Message


class FakeClient:
    """Sends one request body (None: never), then waits; `disconnect()` makes it go away."""

    def __init__(self, body: bytes | None = b"", *, chunks: int = 1) -> None:
        if body is None:
            self._parts: list[bytes] = []
        elif body:
            size = -(-len(body) // chunks)
            self._parts = [body[i : i + size] for i in range(0, len(body), size)]
        else:
            self._parts = [b""]
        self._gone = asyncio.Event()
        self.sent: list[Message] = []

    def disconnect(self) -> None:
        self._gone.set()

    async def receive(self) -> Message:
        if self._parts:
            part = self._parts.pop(0)
            return {"type": "http.request", "body": part, "more_body": bool(self._parts)}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])

    def json(self) -> Any:
        return json.loads(self.body)


def http_scope(method: str, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    return {"type": "http", "method": method, "path": path, "headers": headers or []}


async def call(app: SimApp, method: str, path: str, body: Any = None) -> FakeClient:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body else b""
    client = FakeClient(raw, chunks=3)
    await app(http_scope(method, path), client.receive, client.send)
    return client


CHAT = "/v1/chat/completions"


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "small", "messages": [{"role": "user", "content": text}], **extra}


def test_unknown_paths_and_methods() -> None:
    app = create_app(time_scale=0)
    assert asyncio.run(call(app, "GET", "/nowhere")).status == 404
    assert asyncio.run(call(app, "GET", CHAT)).status == 405
    assert asyncio.run(call(app, "POST", "/healthz")).status == 405


def test_lifespan_is_acknowledged_and_other_scopes_ignored() -> None:
    app = create_app()
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[Message] = []

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app({"type": "lifespan"}, receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    asyncio.run(app({"type": "websocket"}, receive, send))
    assert len(sent) == 2


def test_a_body_in_several_parts_and_an_instant_stream() -> None:
    app = create_app(time_scale=0)
    client = asyncio.run(call(app, "POST", CHAT, chat("[[sim:tokens=3]]", stream=True)))
    assert client.status == 200
    events = client.body.decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    contents = [json.loads(e[6:])["choices"][0]["delta"].get("content") for e in events[:-2]]
    assert contents[0] == "" and all(contents[1:4]) and contents[4] is None


def test_any_model_name_when_models_is_none() -> None:
    app = create_app(time_scale=0)
    client = asyncio.run(call(app, "POST", CHAT, {**chat("Hi"), "model": "my-own-model"}))
    assert client.status == 200 and client.json()["model"] == "my-own-model"
    listed = asyncio.run(call(app, "GET", "/v1/models")).json()
    assert [m["id"] for m in listed["data"]] == list(DEFAULT_MODELS)


def test_a_too_large_body_is_refused_in_each_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gigawatt.simbackend.http.MAX_BODY_BYTES", 100)
    app = create_app(time_scale=0)
    openai_error = asyncio.run(call(app, "POST", CHAT, chat("x" * 200)))
    anthropic_error = asyncio.run(call(app, "POST", "/v1/messages", chat("x" * 200)))
    assert openai_error.status == anthropic_error.status == 413
    assert openai_error.json()["error"]["type"] == "invalid_request_error"
    assert anthropic_error.json()["error"]["type"] == "request_too_large"


def test_a_client_gone_before_its_body_arrived_is_cancelled() -> None:
    app = create_app(time_scale=0)

    async def scenario() -> FakeClient:
        client = FakeClient(None)
        task = asyncio.ensure_future(app(http_scope("POST", CHAT), client.receive, client.send))
        await asyncio.sleep(0)
        client.disconnect()
        await task
        return client

    client = asyncio.run(scenario())
    assert client.sent == []
    assert app.stats.total.cancelled == 1 and app.stats.total.requests == 1


def test_a_disconnect_stops_the_stream_between_tokens() -> None:
    app = create_app(time_scale=0.001)

    async def scenario() -> FakeClient:
        client = FakeClient(json.dumps(chat("[[sim:tokens=100000]]", stream=True)).encode())
        task = asyncio.ensure_future(app(http_scope("POST", CHAT), client.receive, client.send))
        while len(client.sent) < 5:
            await asyncio.sleep(0.001)
        client.disconnect()
        await asyncio.wait_for(task, 1)
        return client

    client = asyncio.run(scenario())
    stats = app.stats.total
    assert (stats.cancelled, stats.completed, stats.active) == (1, 0, 0)
    assert 1 <= stats.output_tokens < 100_000
    assert b"[DONE]" not in client.body
    assert app.stats.models["small"].cancelled == 1


@pytest.mark.parametrize("time_scale", [-1, float("nan"), float("inf")])
def test_create_app_refuses_a_bad_time_scale(time_scale: float) -> None:
    with pytest.raises(ValueError, match="time_scale"):
        create_app(time_scale=time_scale)


def test_create_app_refuses_an_empty_model_table() -> None:
    with pytest.raises(ValueError, match="at least one model"):
        create_app({})
