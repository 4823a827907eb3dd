"""Non-streamed responses each way, checked against the official SDKs' response types."""

from __future__ import annotations

from typing import Any

import anthropic.types
import openai.types.chat
import pytest

from gigawatt.gateway.translate import (
    TranslationError,
    anthropic_to_openai_response,
    openai_to_anthropic_response,
)

JSON = dict[str, Any]


def openai_response(message: JSON, finish_reason: str = "stop", **choice: Any) -> JSON:
    return {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "upstream-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, **choice}],
        "usage": {
            "prompt_tokens": 1200,
            "completion_tokens": 30,
            "total_tokens": 1230,
            "prompt_tokens_details": {"cached_tokens": 1000},
        },
    }


def anthropic_response(content: list[JSON], stop_reason: str | None = "end_turn") -> JSON:
    return {
        "id": "msg_01XYZ",
        "type": "message",
        "role": "assistant",
        "model": "upstream-model",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 150,
            "output_tokens": 30,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 50,
        },
    }


def as_anthropic(resp: JSON) -> JSON:
    out = openai_to_anthropic_response(resp, model="big")
    anthropic.types.Message.model_validate(out)
    return out


def as_openai(resp: JSON) -> JSON:
    out = anthropic_to_openai_response(resp, model="big", created=1_700_000_001)
    openai.types.chat.ChatCompletion.model_validate(out)
    return out


def test_openai_text_response_becomes_a_message() -> None:
    out = as_anthropic(openai_response({"role": "assistant", "content": "Hello."}))
    assert out == {
        "id": "msg_abc",
        "type": "message",
        "role": "assistant",
        "model": "big",
        "content": [{"type": "text", "text": "Hello."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        # prompt_tokens include the cached ones; Anthropic's input_tokens do not.
        "usage": {
            "input_tokens": 200,
            "output_tokens": 30,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 0,
        },
    }


def test_openai_tool_calls_become_tool_use_blocks() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get", "arguments": '{"c":1}'},
            },
            {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": ""}},
        ],
    }
    out = as_anthropic(openai_response(message, "tool_calls"))
    assert out["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get", "input": {"c": 1}},
        {"type": "tool_use", "id": "call_2", "name": "now", "input": {}},
    ]
    assert out["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("finish_reason", "matched", "stop_reason", "stop_sequence"),
    [
        ("stop", None, "end_turn", None),
        ("stop", "###", "stop_sequence", "###"),  # vLLM names the stop string that matched
        ("stop", 50256, "end_turn", None),  # ... or the stop token id
        ("length", None, "max_tokens", None),
        ("tool_calls", None, "tool_use", None),
        ("function_call", None, "tool_use", None),
        ("content_filter", None, "refusal", None),
        ("abort", None, "end_turn", None),
    ],
)
def test_openai_finish_reasons(
    finish_reason: str, matched: Any, stop_reason: str, stop_sequence: str | None
) -> None:
    resp = openai_response(
        {"role": "assistant", "content": "x"}, finish_reason, stop_reason=matched
    )
    # A finish reason outside OpenAI's own list would not validate; skip the SDK check there.
    out = openai_to_anthropic_response(resp, model="big")
    assert (out["stop_reason"], out["stop_sequence"]) == (stop_reason, stop_sequence)


def test_openai_refusal_becomes_text_with_refusal_stop() -> None:
    message = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    out = as_anthropic(openai_response(message))
    assert out["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert out["stop_reason"] == "refusal"


def test_openai_response_without_usage_or_id() -> None:
    resp = openai_response({"role": "assistant", "content": "x"})
    del resp["usage"], resp["id"]
    out = as_anthropic(resp)
    assert out["id"].startswith("msg_")
    assert out["usage"]["input_tokens"] == out["usage"]["output_tokens"] == 0


@pytest.mark.parametrize(
    ("resp", "param"),
    [
        ({"choices": []}, "choices"),
        ({"choices": None}, "choices"),
        (
            openai_response(
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": '{"a": '}}],
                },
                "tool_calls",
            ),
            "choices[0].message.tool_calls[0].function.arguments",
        ),
    ],
)
def test_openai_responses_that_cannot_be_translated(resp: JSON, param: str) -> None:
    with pytest.raises(TranslationError) as caught:
        openai_to_anthropic_response(resp, model="big")
    assert caught.value.param == param


def test_anthropic_message_becomes_a_chat_completion() -> None:
    content = [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": "It is ", "citations": None},
        {"type": "text", "text": "12C."},
    ]
    out = as_openai(anthropic_response(content))
    assert out == {
        "id": "chatcmpl-01XYZ",
        "object": "chat.completion",
        "created": 1_700_000_001,
        "model": "big",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "It is 12C.", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        # prompt_tokens = input + cache reads + cache writes; cached_tokens = cache reads.
        "usage": {
            "prompt_tokens": 1200,
            "completion_tokens": 30,
            "total_tokens": 1230,
            "prompt_tokens_details": {"cached_tokens": 1000},
        },
    }


def test_anthropic_tool_use_becomes_tool_calls() -> None:
    content = [{"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"city": "Zürich"}}]
    out = as_openai(anthropic_response(content, "tool_use"))
    assert out["choices"][0]["message"] == {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "get", "arguments": '{"city": "Zürich"}'},
            }
        ],
    }
    assert out["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
        (None, "stop"),
    ],
)
def test_anthropic_stop_reasons(stop_reason: str | None, finish_reason: str) -> None:
    out = as_openai(anthropic_response([{"type": "text", "text": "x"}], stop_reason))
    assert out["choices"][0]["finish_reason"] == finish_reason


def test_anthropic_response_without_cache_fields() -> None:
    resp = anthropic_response([])
    resp["usage"] = {"input_tokens": 7, "output_tokens": 2}
    out = as_openai(resp)
    assert out["choices"][0]["message"]["content"] == ""
    assert out["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 2,
        "total_tokens": 9,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def test_anthropic_created_defaults_to_now() -> None:
    out = anthropic_to_openai_response(anthropic_response([]), model="big")
    assert out["created"] > 1_700_000_000


def test_response_round_trip_keeps_the_meaning() -> None:
    content = [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"city": "Oslo"}},
    ]
    original = anthropic_response(content, "tool_use")
    original["usage"]["cache_creation_input_tokens"] = 0  # OpenAI cannot carry cache writes
    back = as_anthropic(as_openai(original))
    assert back == {**original, "model": "big"}
