"""Streams, one upstream event at a time, each way.

Both classes hold the little state a translation needs (which block is open, which tool call is
which) and the running usage the upstream has reported, so a stream cut off midway can still be
charged for what it produced.
"""

from __future__ import annotations

import time
from typing import Any

from gigawatt.gateway.translate._common import (
    JSON,
    TranslationError,
    UsageTuple,
    anthropic_message_id,
    anthropic_stop,
    anthropic_tool_id,
    anthropic_usage,
    openai_completion_id,
    openai_finish,
    openai_usage,
    usage_from_anthropic,
    usage_from_openai,
)

Event = tuple[str, JSON]


class OpenAIToAnthropicStream:
    """Chat Completions chunks in, Messages stream events `(event_name, data)` out.

    The closing events wait for the usage chunk that follows the finish reason (requests
    translated here always ask for it); `finish()` sends them when the upstream ends without one,
    or ends early.
    """

    def __init__(self, model: str) -> None:
        self._model = model
        self._started = False
        self._stopped = False
        self._next_block = 0
        self._open: tuple[str, int] | None = None  # ("text", block) or ("tool", OpenAI index)
        self._tool_blocks: dict[int, int] = {}  # tool call number -> block index
        self._calls: dict[object, tuple[int, object]] = {}  # OpenAI index -> (number, id)
        self._stop: tuple[str, str | None] | None = None
        self._usage: UsageTuple | None = None
        self._output_chars = 0

    @property
    def usage(self) -> UsageTuple | None:
        """(input, output, cache_read, cache_write) as last reported upstream; None before any."""
        return self._usage

    @property
    def output_chars(self) -> int:
        """Characters of text and tool arguments passed on, to estimate tokens with no usage."""
        return self._output_chars

    @property
    def complete(self) -> bool:
        """Whether the upstream sent its finish reason (a stream cut before it is not)."""
        return self._stop is not None

    def feed(self, chunk: JSON) -> list[Event]:
        events: list[Event] = []
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = usage_from_openai(usage)
        if self._stopped:
            return events
        if not self._started:
            events.append(self._message_start(chunk.get("id")))
        for choice in chunk.get("choices") or []:
            # Requests with n > 1 are refused, so any other index is not ours to show.
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            for text in (delta.get("content"), delta.get("refusal")):
                if isinstance(text, str) and text:
                    events.extend(self._text(text))
            for call in delta.get("tool_calls") or []:
                events.extend(self._tool_call(call))
            if choice.get("finish_reason"):
                self._stop = anthropic_stop(choice["finish_reason"], choice.get("stop_reason"))
                events.extend(self._close_block())
        if self._stop is not None and isinstance(usage, dict):
            events.extend(self._end())
        return events

    def finish(self) -> list[Event]:
        """The closing events, when the upstream ended without sending what they need."""
        if self._stopped:
            return []
        events = [] if self._started else [self._message_start(None)]
        return events + self._end()

    def _message_start(self, upstream_id: object) -> Event:
        self._started = True
        message = {
            "id": anthropic_message_id(upstream_id),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # Chat Completions reports usage only at the end; message_delta carries it then.
            "usage": anthropic_usage(self._usage or (0, 0, 0, 0)),
        }
        return "message_start", {"type": "message_start", "message": message}

    def _open_block(self, kind: str, key: int, block: JSON) -> list[Event]:
        events = self._close_block()
        index = self._next_block
        self._next_block += 1
        self._open = (kind, key if kind == "tool" else index)
        if kind == "tool":
            self._tool_blocks[key] = index
        start = {"type": "content_block_start", "index": index, "content_block": block}
        return [*events, ("content_block_start", start)]

    def _close_block(self) -> list[Event]:
        if self._open is None:
            return []
        kind, key = self._open
        index = self._tool_blocks[key] if kind == "tool" else key
        self._open = None
        return [("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _delta(self, index: int, delta: JSON) -> Event:
        return "content_block_delta", {
            "type": "content_block_delta",
            "index": index,
            "delta": delta,
        }

    def _text(self, text: str) -> list[Event]:
        events: list[Event] = []
        if self._open is None or self._open[0] != "text":
            events = self._open_block("text", 0, {"type": "text", "text": ""})
        assert self._open is not None
        self._output_chars += len(text)
        return [*events, self._delta(self._open[1], {"type": "text_delta", "text": text})]

    def _tool_call(self, call: Any) -> list[Event]:
        if not isinstance(call, dict):
            return []
        index, call_id = call.get("index", 0), call.get("id")
        function = call.get("function") or {}
        events: list[Event] = []
        known = self._calls.get(index)
        # Servers that omit or reuse `index` still give each new call its own id.
        if known is None or (call_id and call_id != known[1]):
            key = len(self._tool_blocks)
            self._calls[index] = (key, call_id)
            block = {
                "type": "tool_use",
                "id": anthropic_tool_id(call_id),
                "name": function.get("name") or "",
                "input": {},
            }
            events = self._open_block("tool", key, block)
        else:
            key = known[0]
            if self._open != ("tool", key):
                # A closed Messages block cannot be reopened; servers send each call whole.
                raise TranslationError(
                    f"the upstream interleaved tool call {index} with another block", "tool_calls"
                )
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            self._output_chars += len(arguments)
            delta = {"type": "input_json_delta", "partial_json": arguments}
            events.append(self._delta(self._tool_blocks[key], delta))
        return events

    def _end(self) -> list[Event]:
        self._stopped = True
        stop_reason, stop_sequence = self._stop or (None, None)
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
            "usage": anthropic_usage(self._usage or (0, 0, 0, 0)),
        }
        return [
            *self._close_block(),
            ("message_delta", delta),
            ("message_stop", {"type": "message_stop"}),
        ]


class AnthropicToOpenAIStream:
    """Messages stream events in, Chat Completions chunks out.

    With `include_usage` (the client's `stream_options.include_usage`) every chunk carries
    `"usage": null` and a last chunk with no choices carries the usage, as OpenAI sends them.
    An upstream `error` event becomes `{"error": {...}}`, which OpenAI's SDKs raise as an error.
    """

    def __init__(self, model: str, include_usage: bool, *, created: int | None = None) -> None:
        self._model = model
        self._include_usage = include_usage
        self._created = int(time.time()) if created is None else created
        self._id = openai_completion_id(None)
        self._blocks: dict[int, int | None] = {}  # block index -> tool call index (None: text)
        self._tool_calls = 0
        self._usage: UsageTuple | None = None
        self._finished = False
        self._done = False
        self._output_chars = 0

    @property
    def usage(self) -> UsageTuple | None:
        """(input, output, cache_read, cache_write) as last reported upstream; None before any."""
        return self._usage

    @property
    def output_chars(self) -> int:
        """Characters of text and tool arguments passed on, to estimate tokens with no usage."""
        return self._output_chars

    @property
    def complete(self) -> bool:
        """Whether the upstream sent its stop reason (a stream cut before it is not)."""
        return self._finished

    def feed(self, event_name: str, data: JSON) -> list[JSON]:
        if self._done:
            return []
        kind = data.get("type", event_name)
        if kind == "message_start":
            message = data.get("message") or {}
            self._id = openai_completion_id(message.get("id"))
            if isinstance(message.get("usage"), dict):
                self._usage = usage_from_anthropic(message["usage"], self._usage)
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "content_block_delta":
            return self._block_delta(data)
        if kind == "message_delta":
            if isinstance(data.get("usage"), dict):
                self._usage = usage_from_anthropic(data["usage"], self._usage)
            stop_reason = (data.get("delta") or {}).get("stop_reason")
            if stop_reason is None:
                return []
            self._finished = True
            return [self._chunk({}, openai_finish(stop_reason))]
        if kind == "message_stop":
            return self.finish()
        if kind == "error":
            self._done = True
            error = data.get("error") or {}
            return [
                {
                    "error": {
                        "message": error.get("message", "the upstream stream failed"),
                        "type": error.get("type", "api_error"),
                        "param": None,
                        "code": None,
                    }
                }
            ]
        # ping, content_block_stop, and event types added after this was written.
        return []

    def finish(self) -> list[JSON]:
        """The usage chunk (when asked for), if the upstream ended without message_stop."""
        if self._done:
            return []
        self._done = True
        if not self._include_usage:
            return []
        chunk = self._chunk(None)
        chunk["choices"] = []
        chunk["usage"] = openai_usage(self._usage or (0, 0, 0, 0))
        return [chunk]

    def _chunk(self, delta: JSON | None, finish_reason: str | None = None) -> JSON:
        chunk: JSON = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [
                {"index": 0, "delta": delta or {}, "finish_reason": finish_reason, "logprobs": None}
            ],
        }
        if self._include_usage:
            chunk["usage"] = None
        return chunk

    def _block_start(self, data: JSON) -> list[JSON]:
        block = data.get("content_block") or {}
        index = data.get("index", 0)
        if block.get("type") == "text":
            self._blocks[index] = None
            return self._text(block.get("text"))
        if block.get("type") != "tool_use":
            return []  # thinking, server tools and their results have no Chat Completions form
        call = self._tool_calls
        self._tool_calls += 1
        self._blocks[index] = call
        start = {
            "index": call,
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": ""},
        }
        return [self._chunk({"tool_calls": [start]})]

    def _block_delta(self, data: JSON) -> list[JSON]:
        index = data.get("index", 0)
        delta = data.get("delta") or {}
        if index not in self._blocks:
            return []
        call = self._blocks[index]
        if call is None and delta.get("type") == "text_delta":
            return self._text(delta.get("text"))
        arguments = delta.get("partial_json")
        if call is not None and delta.get("type") == "input_json_delta" and arguments:
            self._output_chars += len(arguments)
            fragment = {"index": call, "function": {"arguments": arguments}}
            return [self._chunk({"tool_calls": [fragment]})]
        return []

    def _text(self, text: object) -> list[JSON]:
        if not isinstance(text, str) or not text:
            return []
        self._output_chars += len(text)
        return [self._chunk({"content": text})]
