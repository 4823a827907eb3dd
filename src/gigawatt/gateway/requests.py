"""Reading and checking client requests: bodies, keys and the fields the gateway relies on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from gigawatt.gateway.errors import GatewayError

Dialect = Literal["openai", "anthropic"]


@dataclass(slots=True)
class LLMRequest:
    dialect: Dialect
    model: str
    stream: bool
    max_tokens: int | None  # what the client asked for, if anything
    body: dict[str, Any]
    raw: bytes | None = None  # the client's bytes, while `body` is still exactly what they say


def api_key(headers: dict[str, str]) -> str | None:
    """The key from `Authorization: Bearer ...` or `x-api-key`, as either SDK sends it."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return headers.get("x-api-key") or None


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise GatewayError("invalid_request", f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise GatewayError("invalid_request", "the request body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = body.get(name)
    if value is None:
        return None
    # bool is an int; a boolean max_tokens is a client bug, not 1 token.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
        raise GatewayError("invalid_request", f"'{name}' must be {what}", param=name)
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _common(body: dict[str, Any], dialect: Dialect) -> tuple[str, bool]:
    model = _field(body, "model", str, "a string naming a model")
    if not model:
        raise GatewayError("invalid_request", "'model' is required", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise GatewayError(
            "invalid_request", "'messages' must be a non-empty array", param="messages"
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise GatewayError(
                "invalid_request",
                f"messages[{i}] must be an object with a string 'role'",
                param=f"messages[{i}]",
            )
    stream = _field(body, "stream", bool, "true or false") or False
    return model, stream


def parse_openai(raw: bytes) -> LLMRequest:
    body = parse_json(raw)
    model, stream = _common(body, "openai")
    max_tokens = _field(body, "max_completion_tokens", int, "a positive integer")
    if max_tokens is None:
        max_tokens = _field(body, "max_tokens", int, "a positive integer")
    if max_tokens is not None and max_tokens < 1:
        raise GatewayError("invalid_request", "max_tokens must be at least 1", param="max_tokens")
    if body.get("stream_options") is not None and not isinstance(body["stream_options"], dict):
        raise GatewayError(
            "invalid_request", "'stream_options' must be an object", param="stream_options"
        )
    return LLMRequest("openai", model, stream, max_tokens, body, raw)


def parse_anthropic(raw: bytes) -> LLMRequest:
    body = parse_json(raw)
    model, stream = _common(body, "anthropic")
    max_tokens = _field(body, "max_tokens", int, "a positive integer")
    if max_tokens is None:
        raise GatewayError("invalid_request", "max_tokens: field required", param="max_tokens")
    if max_tokens < 1:
        raise GatewayError("invalid_request", "max_tokens must be at least 1", param="max_tokens")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise GatewayError("invalid_request", "'system' must be a string or an array", "system")
    return LLMRequest("anthropic", model, stream, max_tokens, body, raw)


def with_max_tokens(request: LLMRequest, cap: int) -> LLMRequest:
    """The same request with max_tokens lowered to `cap` (degradation)."""
    body = dict(request.body)
    if request.dialect == "openai":
        body.pop("max_tokens", None)
        body["max_completion_tokens"] = cap
    else:
        body["max_tokens"] = cap
    return LLMRequest(request.dialect, request.model, request.stream, cap, body)
