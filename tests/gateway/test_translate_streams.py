"""Streams each way, fed realistic upstream sequences one event at a time."""

from __future__ import annotations

import json
from typing import Any

import anthropic.types
import openai.types.chat
import pytest
from pydantic import TypeAdapter

from gigawatt.gateway.translate import (
    AnthropicToOpenAIStream,
    OpenAIToAnthropicStream,
    TranslationError,
)

JSON = dict[str, Any]
ANTHROPIC_EVENT: TypeAdapter[Any] = TypeAdapter(anthropic.types.RawMessageStreamEvent)


# --- helpers: feed a whole sequence, check every item against the SDK, rebuild the result ---------


def run_openai_chunks(
    chunks: list[JSON], *, finish: bool = True
) -> tuple[list[tuple[str, JSON]], OpenAIToAnthropicStream]:
    stream = OpenAIToAnthropicStream("big")
    events = [event for chunk in chunks for event in stream.feed(chunk)]
    if finish:
        events += stream.finish()
    for name, data in events:
        assert data["type"] == name
        ANTHROPIC_EVENT.validate_python(data)
    return events, stream


def run_anthropic_events(
    events: list[tuple[str, JSON]], *, include_usage: bool = True, finish: bool = True
) -> tuple[list[JSON], AnthropicToOpenAIStream]:
    stream = AnthropicToOpenAIStream("big", include_usage, created=1_700_000_000)
    chunks = [chunk for name, data in events for chunk in stream.feed(name, data)]
    if finish:
        chunks += stream.finish()
    for chunk in chunks:
        openai.types.chat.ChatCompletionChunk.model_validate(chunk)
    return chunks, stream


def rebuild_message(events: list[tuple[str, JSON]]) -> JSON:
    """The Message a Messages client assembles from the events, as the SDK would."""
    message: JSON = {}
    partial: dict[int, str] = {}
    for name, data in events:
        if name == "message_start":
            message = json.loads(json.dumps(data["message"]))
        elif name == "content_block_start":
            assert data["index"] == len(message["content"])
            message["content"].append(dict(data["content_block"]))
        elif name == "content_block_delta":
            block, delta = message["content"][data["index"]], data["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            else:
                partial[data["index"]] = partial.get(data["index"], "") + delta["partial_json"]
        elif name == "content_block_stop":
            if data["index"] in partial:
                message["content"][data["index"]]["input"] = json.loads(partial[data["index"]])
        elif name == "message_delta":
            message.update(data["delta"])
            message["usage"].update({k: v for k, v in data["usage"].items() if v is not None})
    anthropic.types.Message.model_validate(message)
    return message


def rebuild_completion(chunks: list[JSON]) -> JSON:
    """The text, tool calls, finish reason and usage an OpenAI client assembles from chunks."""
    text, calls, finish, usage = "", {}, None, None
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk["choices"]:
            delta = choice["delta"]
            text += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                entry = calls.setdefault(call["index"], {"id": None, "name": "", "arguments": ""})
                entry["id"] = call.get("id") or entry["id"]
                entry["name"] += (call.get("function") or {}).get("name") or ""
                entry["arguments"] += (call.get("function") or {}).get("arguments") or ""
            finish = choice["finish_reason"] or finish
    return {
        "text": text,
        "tool_calls": [calls[i] for i in sorted(calls)],
        "finish": finish,
        "usage": usage,
    }


# --- OpenAI upstream, Anthropic client -----------------------------------------------------------


def chunk(delta: JSON | None = None, finish_reason: str | None = None, **extra: Any) -> JSON:
    choices = (
        []
        if delta is None
        else [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]
    )
    return {
        "id": "chatcmpl-7",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "upstream",
        "choices": choices,
        **extra,
    }


USAGE_CHUNK = chunk(
    None,
    usage={
        "prompt_tokens": 120,
        "completion_tokens": 9,
        "total_tokens": 129,
        "prompt_tokens_details": {"cached_tokens": 100},
    },
)
USAGE = {
    "input_tokens": 20,
    "output_tokens": 9,
    "cache_read_input_tokens": 100,
    "cache_creation_input_tokens": 0,
}

TEXT_CHUNKS = [
    chunk({"role": "assistant", "content": ""}, usage=None),
    chunk({"content": "Hel"}, usage=None),
    chunk({"content": "lo."}, usage=None),
    chunk({}, "stop", usage=None),
    USAGE_CHUNK,  # include_usage: the usage arrives after the finish reason
]


def test_openai_text_stream_becomes_anthropic_events() -> None:
    events, stream = run_openai_chunks(TEXT_CHUNKS)
    assert events == [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_7",
                    "type": "message",
                    "role": "assistant",
                    "model": "big",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": 0,
                        "output_tokens": 0,
                        "cache_read_input_tokens": 0,
                        "cache_creation_input_tokens": 0,
                    },
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hel"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "lo."},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": USAGE,
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    assert stream.usage == (20, 9, 100, 0)
    assert stream.complete
    assert stream.output_chars == 6
    assert stream.finish() == []  # the usage chunk already closed the message


def test_openai_tool_call_stream_becomes_tool_use_blocks() -> None:
    def call(index: int, arguments: str, **first: Any) -> JSON:
        function = {"arguments": arguments}
        if first:
            function["name"] = first.pop("name")
        return chunk({"tool_calls": [{"index": index, **first, "function": function}]})

    chunks = [
        chunk({"role": "assistant", "content": "Checking."}),
        call(0, "", id="call_1", type="function", name="get"),
        call(0, '{"city": '),
        call(0, '"Oslo"}'),
        call(1, "{}", id="call_2", type="function", name="now"),
        chunk({}, "tool_calls"),
        USAGE_CHUNK,
    ]
    events, stream = run_openai_chunks(chunks)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[4][1]["content_block"] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "get",
        "input": {},
    }
    assert events[5][1]["delta"] == {"type": "input_json_delta", "partial_json": '{"city": '}
    message = rebuild_message(events)
    assert message["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_1", "name": "get", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "call_2", "name": "now", "input": {}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == USAGE
    assert stream.output_chars == len("Checking.") + len('{"city": "Oslo"}{}')


def test_openai_stream_without_usage_chunk_is_closed_by_finish() -> None:
    events, stream = run_openai_chunks(TEXT_CHUNKS[:4], finish=False)
    assert events[-1][0] == "content_block_stop"  # waits for a usage chunk that may follow
    closing = stream.finish()
    assert [name for name, _ in closing] == ["message_delta", "message_stop"]
    assert closing[0][1]["delta"]["stop_reason"] == "end_turn"
    assert stream.usage is None
    assert stream.complete
    assert stream.finish() == []


def test_openai_finish_chunk_carrying_usage_closes_at_once() -> None:
    # vLLM's continuous_usage_stats puts usage on every chunk, the finishing one included.
    usage = USAGE_CHUNK["usage"]
    chunks = [chunk({"content": "Hi"}, usage=usage), chunk({}, "length", usage=usage), USAGE_CHUNK]
    events, _ = run_openai_chunks(chunks, finish=False)
    assert [name for name, _ in events][-2:] == ["message_delta", "message_stop"]
    assert events[-2][1]["delta"]["stop_reason"] == "max_tokens"


def test_cut_openai_stream_is_closed_with_what_was_produced() -> None:
    events, stream = run_openai_chunks(TEXT_CHUNKS[:3])
    message = rebuild_message(events)
    assert message["content"] == [{"type": "text", "text": "Hello."}]
    assert message["stop_reason"] is None
    assert not stream.complete
    assert stream.usage is None  # the upstream never said; output_chars is all there is
    assert stream.output_chars == 6


def test_openai_stream_that_sent_nothing_still_closes_well_formed() -> None:
    events, _ = run_openai_chunks([])
    assert [name for name, _ in events] == ["message_start", "message_delta", "message_stop"]


def test_openai_stop_string_becomes_stop_sequence() -> None:
    chunks = [
        chunk({"content": "a"}),
        {
            **chunk({}, "stop"),
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "stop_reason": "###"}],
        },
    ]
    events, _ = run_openai_chunks(chunks)
    assert events[-2][1]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "###"}


def test_openai_interleaved_tool_calls_are_refused() -> None:
    stream = OpenAIToAnthropicStream("big")
    first = {"index": 0, "id": "a", "function": {"name": "f", "arguments": ""}}
    second = {"index": 1, "id": "b", "function": {"name": "g", "arguments": ""}}
    stream.feed(chunk({"tool_calls": [first]}))
    stream.feed(chunk({"tool_calls": [second]}))
    with pytest.raises(TranslationError, match="interleaved"):
        stream.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}))


def test_openai_reasoning_deltas_and_other_choices_are_not_shown() -> None:
    chunks = [
        chunk({"reasoning_content": "thinking..."}),
        {
            **chunk({"content": "other"}),
            "choices": [{"index": 1, "delta": {"content": "other"}, "finish_reason": None}],
        },
        chunk({"content": "ok"}),
    ]
    message = rebuild_message(run_openai_chunks(chunks)[0])
    assert message["content"] == [{"type": "text", "text": "ok"}]


# --- Anthropic upstream, OpenAI client -----------------------------------------------------------


def ev(data: JSON) -> tuple[str, JSON]:
    return data["type"], data


START = ev(
    {
        "type": "message_start",
        "message": {
            "id": "msg_01A",
            "type": "message",
            "role": "assistant",
            "model": "upstream",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 25,
                "output_tokens": 1,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 10,
            },
        },
    }
)
ANTHROPIC_EVENTS = [
    START,
    ev({"type": "ping"}),
    ev(
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        }
    ),
    ev(
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "hmm"},
        }
    ),
    ev(
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "s"},
        }
    ),
    ev({"type": "content_block_stop", "index": 0}),
    ev({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
    ev(
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "text_delta", "text": "Let me "},
        }
    ),
    ev(
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "text_delta", "text": "check."},
        }
    ),
    ev({"type": "content_block_stop", "index": 1}),
    ev(
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {}},
        }
    ),
    ev(
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": ""},
        }
    ),
    ev(
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"city": '},
        }
    ),
    ev(
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '"Oslo"}'},
        }
    ),
    ev({"type": "content_block_stop", "index": 2}),
    ev(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 42},
        }
    ),
    ev({"type": "message_stop"}),
]


def test_anthropic_stream_becomes_openai_chunks() -> None:
    chunks, stream = run_anthropic_events(ANTHROPIC_EVENTS, finish=False)
    deltas = [
        (c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) for c in chunks if c["choices"]
    ]
    assert deltas == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Let me "}, None),
        ({"content": "check."}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}, None),
        ({}, "tool_calls"),
    ]
    assert all(c["id"] == "chatcmpl-01A" and c["model"] == "big" for c in chunks)
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 135,
        "completion_tokens": 42,
        "total_tokens": 177,
        "prompt_tokens_details": {"cached_tokens": 100},
    }
    assert stream.usage == (25, 42, 100, 10)
    assert stream.complete
    assert stream.finish() == []


def test_anthropic_stream_without_include_usage_has_no_usage_fields() -> None:
    chunks, stream = run_anthropic_events(ANTHROPIC_EVENTS, include_usage=False)
    assert all("usage" not in c and c["choices"] for c in chunks)
    assert stream.usage == (25, 42, 100, 10)  # still counted, for the gateway's own accounts


def test_cut_anthropic_stream_is_charged_for_what_was_reported() -> None:
    chunks, stream = run_anthropic_events(ANTHROPIC_EVENTS[:9])
    completion = rebuild_completion(chunks)
    assert completion["text"] == "Let me check."
    assert completion["finish"] is None
    assert completion["usage"]["prompt_tokens"] == 135
    assert stream.usage == (25, 1, 100, 10)
    assert not stream.complete
    assert stream.output_chars == len("Let me check.")


def test_anthropic_message_delta_input_counts_update_usage() -> None:
    delta = ev(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 5, "input_tokens": 30, "cache_read_input_tokens": None},
        }
    )
    _, stream = run_anthropic_events([START, delta])
    assert stream.usage == (30, 5, 100, 10)


def test_anthropic_error_event_becomes_an_openai_error() -> None:
    stream = AnthropicToOpenAIStream("big", True)
    stream.feed(*START)
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert stream.feed("error", error) == [
        {
            "error": {
                "message": "Overloaded",
                "type": "overloaded_error",
                "param": None,
                "code": None,
            }
        }
    ]
    assert stream.feed("message_stop", {"type": "message_stop"}) == []
    assert stream.finish() == []


def test_anthropic_unknown_events_and_blocks_are_skipped() -> None:
    events = [
        START,
        ev(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {
                    "type": "server_tool_use",
                    "id": "s",
                    "name": "web_search",
                    "input": {},
                },
            }
        ),
        ev(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": "{}"},
            }
        ),
        ev(
            {
                "type": "content_block_delta",
                "index": 5,
                "delta": {"type": "text_delta", "text": "orphan"},
            }
        ),
        ev({"type": "brand_new_event"}),
    ]
    chunks, _ = run_anthropic_events(events, include_usage=False)
    assert len(chunks) == 1  # the role chunk


# --- Round trip ----------------------------------------------------------------------------------


def test_stream_round_trip_keeps_the_meaning() -> None:
    chunks, _ = run_anthropic_events(ANTHROPIC_EVENTS)
    events, stream = run_openai_chunks(chunks)
    message = rebuild_message(events)
    assert message["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"city": "Oslo"}},
    ]
    assert message["stop_reason"] == "tool_use"
    # Cache writes travel as plain prompt tokens through OpenAI's usage.
    assert stream.usage == (35, 42, 100, 0)


def test_openai_tool_calls_without_distinct_indices_are_told_apart_by_id() -> None:
    # Some OpenAI-compatible servers send every call whole, each with index 0 (or none).
    chunks = [
        chunk(
            {"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]}
        ),
        chunk({"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": '{"x": 1}'}}]}),
        chunk({}, "tool_calls"),
    ]
    message = rebuild_message(run_openai_chunks(chunks)[0])
    assert message["content"] == [
        {"type": "tool_use", "id": "a", "name": "f", "input": {}},
        {"type": "tool_use", "id": "b", "name": "g", "input": {"x": 1}},
    ]
