"""`POST /v1/messages`, the Anthropic way: requests, messages, stream events and errors."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from gigawatt.simbackend import fields
from gigawatt.simbackend.core import RequestError, SimRequest
from gigawatt.simbackend.http import dump_json
from gigawatt.simbackend.text import Answer

_STOP_REASON = {"end": "end_turn", "length": "max_tokens", "stop_sequence": "stop_sequence"}
# Anthropic's error types by status; any other 4xx is invalid_request_error, any 5xx api_error.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_DELTA_PREFIX = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":'
)


class AnthropicMessages:
    request_id_header = b"request-id"

    def parse(self, body: dict[str, Any]) -> SimRequest:
        model = fields.string(body, "model")
        max_tokens = fields.integer(body, "max_tokens", minimum=1, required=True)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError(400, "messages: expected a non-empty list", param="messages")
        texts = fields.texts_of(body.get("system"), "system")
        last_user: list[str] = []
        for index, message in enumerate(messages):
            key = f"messages.{index}"
            if not isinstance(message, dict):
                raise RequestError(400, f"{key}: expected an object", param=key)
            role = fields.string(message, "role")
            if role not in ("user", "assistant"):
                raise RequestError(400, f"{key}.role: expected user or assistant", param=key)
            parts = fields.texts_of(message.get("content"), f"{key}.content")
            texts.extend(parts)
            if role == "user":
                last_user = parts
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise RequestError(400, "metadata: expected an object", param="metadata")
        return SimRequest(
            model=model,
            prompt_texts=tuple(texts),
            last_user_text="\n".join(last_user),
            max_tokens=max_tokens,
            stream=fields.flag(body, "stream"),
            stop=fields.strings(body.get("stop_sequences"), "stop_sequences", most=64),
            # Not part of Anthropic's API; read when a gateway passes one on, for the counters.
            priority=fields.integer(body, "priority", minimum=-(2**31)),
        )

    def error_body(self, error: RequestError) -> dict[str, Any]:
        kind = _ERROR_TYPES.get(error.status)
        if kind is None:
            kind = "api_error" if error.status >= 500 else "invalid_request_error"
        return {"type": "error", "error": {"type": kind, "message": error.message}}

    def reply(self, request: SimRequest, answer: Answer, prompt_tokens: int) -> MessageReply:
        return MessageReply(request, answer, prompt_tokens)


class MessageReply:
    """A message, or the server-sent events of one."""

    __slots__ = ("_answer", "_prompt_tokens", "_request", "id")

    def __init__(self, request: SimRequest, answer: Answer, prompt_tokens: int) -> None:
        self.id = f"msg_{uuid.uuid4().hex[:24]}"
        self._request = request
        self._answer = answer
        self._prompt_tokens = prompt_tokens

    def head(self) -> bytes:
        message = self._message(content=[], stop_reason=None, stop_sequence=None, output_tokens=1)
        return b"".join(
            (
                _event("message_start", {"type": "message_start", "message": message}),
                _event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                ),
                _event("ping", {"type": "ping"}),
            )
        )

    def chunk(self, tokens: Sequence[str]) -> bytes:
        return b"".join(
            b"%s%s}}\n\n" % (_DELTA_PREFIX, json.dumps(token).encode()) for token in tokens
        )

    def tail(self) -> bytes:
        delta = {
            "stop_reason": _STOP_REASON[self._answer.finish],
            "stop_sequence": self._answer.stop_sequence,
        }
        usage = {"output_tokens": len(self._answer.tokens)}
        return b"".join(
            (
                _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
                _event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}),
                _event("message_stop", {"type": "message_stop"}),
            )
        )

    def body(self) -> dict[str, Any]:
        return self._message(
            content=[{"type": "text", "text": "".join(self._answer.tokens)}],
            stop_reason=_STOP_REASON[self._answer.finish],
            stop_sequence=self._answer.stop_sequence,
            output_tokens=len(self._answer.tokens),
        )

    def _message(
        self,
        *,
        content: list[dict[str, Any]],
        stop_reason: str | None,
        stop_sequence: str | None,
        output_tokens: int,
    ) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "content": content,
            "model": self._request.model,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": {
                "input_tokens": self._prompt_tokens,
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (name.encode(), dump_json(data))
