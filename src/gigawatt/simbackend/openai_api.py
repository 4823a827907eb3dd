"""`POST /v1/chat/completions`, the OpenAI way: requests, answers, stream chunks and errors."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

from gigawatt.simbackend import fields
from gigawatt.simbackend.core import RequestError, SimRequest
from gigawatt.simbackend.http import dump_json
from gigawatt.simbackend.text import Answer

_FINISH = {"end": "stop", "length": "length", "stop_sequence": "stop"}
_DONE = b"data: [DONE]\n\n"


class OpenAIChat:
    request_id_header = b"x-request-id"

    def parse(self, body: dict[str, Any]) -> SimRequest:
        model = fields.string(body, "model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError(400, "messages: expected a non-empty list", param="messages")
        texts: list[str] = []
        last_user: list[str] = []
        for index, message in enumerate(messages):
            key = f"messages.{index}"
            if not isinstance(message, dict):
                raise RequestError(400, f"{key}: expected an object", param=key)
            role = fields.string(message, "role")
            parts = fields.texts_of(message.get("content"), f"{key}.content")
            texts.extend(parts)
            if role == "user":
                last_user = parts
        max_tokens = fields.integer(body, "max_completion_tokens", minimum=1)
        if max_tokens is None:
            max_tokens = fields.integer(body, "max_tokens", minimum=1)
        if body.get("n", 1) not in (1, None):
            raise RequestError(400, "n: the simulator answers with one choice only", param="n")
        stream = fields.flag(body, "stream")
        options = body.get("stream_options") or {}
        if not isinstance(options, dict):
            raise RequestError(400, "stream_options: expected an object", param="stream_options")
        return SimRequest(
            model=model,
            prompt_texts=tuple(texts),
            last_user_text="\n".join(last_user),
            max_tokens=max_tokens,
            stream=stream,
            stop=fields.strings(body.get("stop"), "stop", most=4),
            include_usage=stream and fields.flag(options, "include_usage"),
            priority=fields.integer(body, "priority", minimum=-(2**31)),
        )

    def error_body(self, error: RequestError) -> dict[str, Any]:
        code: str | None
        if error.status == 429:
            kind, code = "requests", error.code or "rate_limit_exceeded"
        elif error.status >= 500:
            kind, code = "server_error", error.code
        else:
            kind, code = "invalid_request_error", error.code
        return {
            "error": {"message": error.message, "type": kind, "param": error.param, "code": code}
        }

    def reply(self, request: SimRequest, answer: Answer, prompt_tokens: int) -> ChatReply:
        return ChatReply(request, answer, prompt_tokens)


class ChatReply:
    """A chat.completion, or the chat.completion.chunk events of one."""

    __slots__ = ("_answer", "_chunk_prefix", "_chunk_suffix", "_request", "_usage", "created", "id")

    def __init__(self, request: SimRequest, answer: Answer, prompt_tokens: int) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self._request = request
        self._answer = answer
        completion_tokens = len(answer.tokens)
        self._usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        # Every content chunk is the same JSON but for its text: built once, filled per token.
        head = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": request.model,
            "system_fingerprint": None,
        }
        self._chunk_prefix = b"data: " + dump_json(head)[:-1] + b',"choices":[{"index":0,"delta":'
        self._chunk_suffix = b',"logprobs":null,"finish_reason":null}]'
        if request.include_usage:
            # With include_usage every chunk carries "usage": null until the last one.
            self._chunk_suffix += b',"usage":null'
        self._chunk_suffix += b"}\n\n"

    def head(self) -> bytes:
        return self._chunk({"role": "assistant", "content": "", "refusal": None})

    def chunk(self, tokens: Sequence[str]) -> bytes:
        prefix, suffix = self._chunk_prefix, self._chunk_suffix
        return b"".join(
            b'%s{"content":%s}%s' % (prefix, json.dumps(token).encode(), suffix) for token in tokens
        )

    def tail(self) -> bytes:
        finish = _FINISH[self._answer.finish]
        last = self._event([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}])
        if not self._request.include_usage:
            return last + _DONE
        return last + self._event([], usage=self._usage) + _DONE

    def body(self) -> dict[str, Any]:
        message = {"role": "assistant", "content": "".join(self._answer.tokens), "refusal": None}
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self._request.model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": _FINISH[self._answer.finish],
                }
            ],
            "usage": self._usage,
        }

    def _chunk(self, delta: dict[str, Any]) -> bytes:
        return b"%s%s%s" % (self._chunk_prefix, dump_json(delta), self._chunk_suffix)

    def _event(self, choices: list[Any], *, usage: dict[str, Any] | None = None) -> bytes:
        event: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self._request.model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if self._request.include_usage:
            event["usage"] = usage
        return b"data: " + dump_json(event) + b"\n\n"
