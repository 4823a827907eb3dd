"""Talking to upstreams: where a model is served, how to call it, and what a response cost.

The HTTP itself is `http_client`'s, one client per process with pooled connections.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from gigawatt.gateway.http_client import Response
from gigawatt.gateway.requests import Dialect
from gigawatt.gateway.tokens import count_text
from gigawatt.limits import Usage
from gigawatt.policy.model import Upstream

ANTHROPIC_VERSION = "2023-06-01"


@dataclass(slots=True)
class Route:
    """Where one request goes: the upstream, its base URL (ending in /v1) and its dialect."""

    upstream: Upstream
    base_url: str
    dialect: Dialect

    def url(self) -> str:
        path = "/chat/completions" if self.dialect == "openai" else "/messages"
        return self.base_url.rstrip("/") + path

    def headers(self) -> dict[str, str]:
        # The gateway reads every answer (its usage) and passes on the plain bytes: an upstream
        # need not compress them (the client decodes gzip and deflate if one does anyway).
        headers = {"content-type": "application/json", "accept-encoding": "identity"}
        key = os.environ.get(self.upstream.api_key_env, "") if self.upstream.api_key_env else ""
        if self.dialect == "anthropic":
            headers["anthropic-version"] = ANTHROPIC_VERSION
            if key:
                headers["x-api-key"] = key
        elif key:
            headers["authorization"] = f"Bearer {key}"
        return headers


def usage_from_openai(usage: dict[str, Any] | None) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    details = usage.get("prompt_tokens_details")
    # The common answers (OpenAI and vLLM send the details, often with no cached tokens),
    # checked in one go: every non-streaming response comes here.
    cached = details.get("cached_tokens", 0) if type(details) is dict else 0
    if (
        type(prompt) is int
        and type(completion) is int
        and type(cached) is int
        and prompt >= cached >= 0
        and completion >= 0
    ):
        return Usage(prompt - cached, completion, cached) if cached else Usage(prompt, completion)
    prompt, completion = _int(prompt), _int(completion)
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return Usage(max(0, prompt - cached), completion, cached, 0)


def usage_from_anthropic(usage: dict[str, Any] | None) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    return Usage(
        _int(usage.get("input_tokens")),
        _int(usage.get("output_tokens")),
        _int(usage.get("cache_read_input_tokens")),
        _int(usage.get("cache_creation_input_tokens")),
    )


def _int(value: Any) -> int:
    # Upstreams send counts as ints; anything else is treated as unknown (0), never trusted.
    return value if type(value) is int and value >= 0 else 0


@dataclass(slots=True)
class StreamMeter:
    """Follows an upstream stream to know what it cost, even when it is cut off.

    Reported usage wins when the stream finishes; otherwise the input is the reservation's
    estimate and the output is the produced text, tokenized.
    """

    dialect: Dialect
    input_estimate: int
    input_tokens: int | None = None
    cache_read: int = 0
    cache_write: int = 0
    output_tokens: int | None = None
    produced: list[str] = field(default_factory=list)
    finished: bool = False

    def feed(self, event: str | None, data: dict[str, Any]) -> None:
        if self.dialect == "openai":
            for choice in data.get("choices") or ():
                delta = choice.get("delta") or {}
                if isinstance(delta.get("content"), str):
                    self.produced.append(delta["content"])
                for call in delta.get("tool_calls") or ():
                    args = (call.get("function") or {}).get("arguments")
                    if isinstance(args, str):
                        self.produced.append(args)
            usage = usage_from_openai(data.get("usage"))
            if usage is not None:
                self.input_tokens = usage.input_tokens
                self.cache_read = usage.cache_read_tokens
                self.output_tokens = usage.output_tokens
                self.finished = True
            return
        kind = data.get("type", event)
        if kind == "message_start":
            usage = usage_from_anthropic((data.get("message") or {}).get("usage"))
            if usage is not None:
                self.input_tokens = usage.input_tokens
                self.cache_read = usage.cache_read_tokens
                self.cache_write = usage.cache_write_tokens
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            text = delta.get("text") or delta.get("partial_json") or delta.get("thinking")
            if isinstance(text, str):
                self.produced.append(text)
        elif kind == "message_delta":
            usage = data.get("usage") or {}
            if type(usage.get("output_tokens")) is int:
                self.output_tokens = usage["output_tokens"]
        elif kind == "message_stop":
            self.finished = True

    def usage(self) -> Usage:
        output = self.output_tokens
        if output is None or not self.finished:
            output = max(output or 0, count_text("".join(self.produced)))
        inputs = self.input_tokens if self.input_tokens is not None else self.input_estimate
        return Usage(inputs, output, self.cache_read, self.cache_write)


async def sse_events(
    response: Response,
) -> AsyncIterator[tuple[bytes, str | None, dict[str, Any] | None]]:
    """Each server-sent event as (its raw bytes, its event name, its JSON data or None)."""
    lines: list[bytes] = []
    event: str | None = None
    data: list[bytes] = []
    async for line in response.lines():
        lines.append(line)
        stripped = line.rstrip(b"\r\n")
        if stripped:
            if stripped.startswith(b"event:"):
                event = stripped[6:].strip().decode()
            elif stripped.startswith(b"data:"):
                data.append(stripped[5:].strip())
            continue
        yield b"".join(lines), event, _decode(data)
        lines, event, data = [], None, []
    if lines:
        yield b"".join(lines), event, _decode(data)


def _decode(data: list[bytes]) -> dict[str, Any] | None:
    if not data:
        return None
    text = b"\n".join(data)
    if text == b"[DONE]":
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
