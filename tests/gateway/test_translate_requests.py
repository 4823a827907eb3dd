"""Requests each way: one table row per mapping, the refusals, the notes, and round trips."""

from __future__ import annotations

from typing import Any

import pytest

from gigawatt.gateway.translate import (
    TranslationError,
    TranslationNote,
    anthropic_to_openai_request,
    openai_to_anthropic_request,
)

JSON = dict[str, Any]
USER_HI: JSON = {"role": "user", "content": "hi"}
PNG = "iVBORw0KGgo="


def to_openai(**fields: Any) -> JSON:
    body = {"model": "m", "max_tokens": 100, "messages": [USER_HI], **fields}
    return anthropic_to_openai_request(body)


def to_anthropic(**fields: Any) -> JSON:
    body = {"model": "m", "messages": [USER_HI], **fields}
    return openai_to_anthropic_request(body, default_max_tokens=4096)


# --- Anthropic -> OpenAI -------------------------------------------------------------------------

A2O_FIELDS = [
    pytest.param({}, {"max_completion_tokens": 100}, id="max_tokens"),
    pytest.param({"stop_sequences": ["END"]}, {"stop": ["END"]}, id="stop_sequences"),
    pytest.param(
        {"temperature": 0.2, "top_p": 0.9}, {"temperature": 0.2, "top_p": 0.9}, id="sampling"
    ),
    pytest.param(
        {"stream": True},
        {"stream": True, "stream_options": {"include_usage": True}},
        id="stream-asks-for-usage",
    ),
    pytest.param({"stream": False}, {}, id="stream-false"),
    pytest.param({"metadata": {"user_id": "u-1"}}, {"user": "u-1"}, id="metadata.user_id"),
    pytest.param({"thinking": {"type": "disabled"}}, {}, id="thinking-disabled"),
]


@pytest.mark.parametrize(("fields", "expected"), A2O_FIELDS)
def test_anthropic_fields_map_to_openai(fields: JSON, expected: JSON) -> None:
    out = to_openai(**fields)
    want = {"model": "m", "messages": [USER_HI], "max_completion_tokens": 100, **expected}
    assert out == want


A2O_SYSTEM = [
    pytest.param("Be brief.", "Be brief.", id="string"),
    pytest.param(
        [{"type": "text", "text": "A."}, {"type": "text", "text": "B.", "cache_control": {}}],
        "A.\n\nB.",
        id="blocks-joined",
    ),
]


@pytest.mark.parametrize(("system", "expected"), A2O_SYSTEM)
def test_anthropic_system_becomes_first_message(system: Any, expected: str) -> None:
    assert to_openai(system=system)["messages"] == [
        {"role": "system", "content": expected},
        USER_HI,
    ]


A2O_MESSAGES = [
    pytest.param(
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            }
        ],
        id="text-blocks",
    ),
    pytest.param(
        {
            "role": "user",
            "content": [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                },
                {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
                {"type": "text", "text": "what?"},
            ],
        },
        [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
                    {"type": "text", "text": "what?"},
                ],
            }
        ],
        id="images",
    ),
    pytest.param(
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get", "input": {}},
            ],
        },
        [
            {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get", "arguments": '{"city": "Oslo"}'},
                    },
                    {
                        "id": "toolu_2",
                        "type": "function",
                        "function": {"name": "get", "arguments": "{}"},
                    },
                ],
            }
        ],
        id="tool-use",
    ),
    pytest.param(
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
        },
        [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            }
        ],
        id="tool-use-without-text",
    ),
    pytest.param(
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "12C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                },
                {"type": "tool_result", "tool_use_id": "toolu_3"},
                {"type": "text", "text": "thanks"},
            ],
        },
        [
            {"role": "tool", "tool_call_id": "toolu_1", "content": "12C"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "a\nb"},
            {"role": "tool", "tool_call_id": "toolu_3", "content": ""},
            {"role": "user", "content": [{"type": "text", "text": "thanks"}]},
        ],
        id="tool-results-then-text",
    ),
    pytest.param(
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "4"}, {"type": "text", "text": "2"}],
        },
        [{"role": "assistant", "content": "42"}],
        id="assistant-text-fragments",
    ),
]


@pytest.mark.parametrize(("message", "expected"), A2O_MESSAGES)
def test_anthropic_messages_map_to_openai(message: JSON, expected: list[JSON]) -> None:
    assert to_openai(messages=[message])["messages"] == expected


def test_anthropic_tools_and_tool_choice_map_to_openai() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    tools = [
        {"name": "get", "description": "Weather", "input_schema": schema},
        {"type": "custom", "name": "now", "input_schema": {"type": "object"}, "strict": True},
    ]
    out = to_openai(tools=tools, tool_choice={"type": "any", "disable_parallel_tool_use": True})
    assert out["tools"] == [
        {
            "type": "function",
            "function": {"name": "get", "parameters": schema, "description": "Weather"},
        },
        {
            "type": "function",
            "function": {"name": "now", "parameters": {"type": "object"}, "strict": True},
        },
    ]
    assert out["tool_choice"] == "required"
    assert out["parallel_tool_calls"] is False


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "get"}, {"type": "function", "function": {"name": "get"}}),
    ],
)
def test_anthropic_tool_choice(choice: JSON, expected: Any) -> None:
    tools = [{"name": "get", "input_schema": {"type": "object"}}]
    out = to_openai(tools=tools, tool_choice=choice)
    assert out["tool_choice"] == expected
    assert "parallel_tool_calls" not in out


A2O_NOTES = [
    pytest.param(
        {"thinking": {"type": "enabled", "budget_tokens": 2048}}, ["thinking"], id="thinking"
    ),
    pytest.param({"top_k": 5}, ["top_k"], id="top_k"),
    pytest.param(
        {"service_tier": "auto", "x_vendor": 1}, ["service_tier", "x_vendor"], id="others"
    ),
    pytest.param(
        {
            "messages": [
                USER_HI,
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "s"},
                        {"type": "redacted_thinking", "data": "x"},
                        {"type": "text", "text": "ok", "citations": [{"type": "char_location"}]},
                    ],
                },
            ]
        },
        ["messages[1].content[0]", "messages[1].content[1]", "messages[1].content[2].citations"],
        id="thinking-blocks-and-citations",
    ),
    pytest.param(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "content": "no",
                            "is_error": True,
                        }
                    ],
                }
            ]
        },
        ["messages[0].content[0].is_error"],
        id="tool-error-flag",
    ),
    pytest.param(
        {"tools": [{"name": "f", "input_schema": {"type": "object"}, "cache_control": {}}]},
        ["tools[0].cache_control"],
        id="tool-cache-control",
    ),
]


@pytest.mark.parametrize(("fields", "params"), A2O_NOTES)
def test_anthropic_inputs_dropped_are_noted(fields: JSON, params: list[str]) -> None:
    notes: list[TranslationNote] = []
    body = {"model": "m", "max_tokens": 100, "messages": [USER_HI], **fields}
    anthropic_to_openai_request(body, notes=notes)
    assert [note.param for note in notes] == params
    assert all(note.reason for note in notes)


def test_anthropic_thinking_is_dropped_from_the_request() -> None:
    out = to_openai(thinking={"type": "enabled", "budget_tokens": 2048})
    assert "thinking" not in out


A2O_ERRORS = [
    pytest.param(
        {"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
        "messages[0].content[0].type",
        "document",
        id="document",
    ),
    pytest.param(
        {"messages": [{"role": "user", "content": [{"type": "search_result"}]}]},
        "messages[0].content[0].type",
        "search_result",
        id="search-result",
    ),
    pytest.param(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                }
            ]
        },
        "messages[0].content[0].source.type",
        "base64 or a URL",
        id="image-file-source",
    ),
    pytest.param(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "content": [{"type": "image", "source": {}}],
                        }
                    ],
                }
            ]
        },
        "messages[0].content[0].content[0].type",
        "text only",
        id="image-in-tool-result",
    ),
    pytest.param(
        {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
        "tools[0].type",
        "Anthropic-defined tools",
        id="server-tool",
    ),
    pytest.param({"mcp_servers": [{}]}, "mcp_servers", "MCP", id="mcp"),
    pytest.param(
        {"messages": [{"role": "system", "content": "x"}]}, "messages[0].role", "role", id="role"
    ),
    pytest.param({"messages": "hi"}, "messages", "array", id="messages-not-list"),
    pytest.param(
        {"tool_choice": {"type": "sometimes"}}, "tool_choice.type", "not known", id="choice"
    ),
    pytest.param(
        {"system": [{"type": "image"}]}, "system[0].type", "text blocks", id="system-image"
    ),
]


@pytest.mark.parametrize(("fields", "param", "words"), A2O_ERRORS)
def test_anthropic_inputs_without_equivalent_are_refused(
    fields: JSON, param: str, words: str
) -> None:
    with pytest.raises(TranslationError) as caught:
        to_openai(**fields)
    assert caught.value.param == param
    assert words in caught.value.message


# --- OpenAI -> Anthropic -------------------------------------------------------------------------

O2A_FIELDS = [
    pytest.param({}, {"max_tokens": 4096}, id="default-max-tokens"),
    pytest.param({"max_tokens": 50}, {"max_tokens": 50}, id="max_tokens"),
    pytest.param(
        {"max_completion_tokens": 60, "max_tokens": 50},
        {"max_tokens": 60},
        id="max_completion_tokens",
    ),
    pytest.param({"stop": "END"}, {"stop_sequences": ["END"]}, id="stop-string"),
    pytest.param({"stop": ["a", "b"]}, {"stop_sequences": ["a", "b"]}, id="stop-list"),
    pytest.param({"stop": None}, {}, id="stop-null"),
    pytest.param({"temperature": 1, "top_p": 0.5}, {"temperature": 1, "top_p": 0.5}, id="sampling"),
    pytest.param({"top_k": 40}, {"top_k": 40}, id="top_k-extension"),
    pytest.param(
        {"stream": True, "stream_options": {"include_usage": True}}, {"stream": True}, id="stream"
    ),
    pytest.param({"user": "u-1"}, {"metadata": {"user_id": "u-1"}}, id="user"),
    pytest.param(
        {"n": 1, "logprobs": False, "response_format": {"type": "text"}}, {}, id="harmless"
    ),
    pytest.param({"modalities": ["text"], "frequency_penalty": 0, "seed": None}, {}, id="defaults"),
]


@pytest.mark.parametrize(("fields", "expected"), O2A_FIELDS)
def test_openai_fields_map_to_anthropic(fields: JSON, expected: JSON) -> None:
    want = {"model": "m", "messages": [USER_HI], "max_tokens": 4096, **expected}
    assert to_anthropic(**fields) == want


def test_openai_system_and_developer_messages_are_joined() -> None:
    messages = [
        {"role": "system", "content": "A."},
        {"role": "developer", "content": [{"type": "text", "text": "B."}]},
        USER_HI,
    ]
    out = to_anthropic(messages=messages)
    assert out["system"] == "A.\n\nB."
    assert out["messages"] == [USER_HI]


def test_openai_late_system_message_is_moved_with_a_note() -> None:
    notes: list[TranslationNote] = []
    body = {"model": "m", "messages": [USER_HI, {"role": "system", "content": "Now in French."}]}
    out = openai_to_anthropic_request(body, default_max_tokens=10, notes=notes)
    assert out["system"] == "Now in French."
    assert notes == [TranslationNote("messages[1]", notes[0].reason)]


O2A_MESSAGES = [
    pytest.param(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"},
                    },
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
                ],
            }
        ],
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
                ],
            }
        ],
        id="images",
    ),
    pytest.param(
        [
            USER_HI,
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get", "arguments": '{"c": 1}'},
                    },
                    {
                        "id": "call.2",
                        "type": "function",
                        "function": {"name": "now", "arguments": ""},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "12C"},
            {
                "role": "tool",
                "tool_call_id": "call.2",
                "content": [{"type": "text", "text": "noon"}],
            },
            {"role": "user", "content": "and?"},
        ],
        [
            USER_HI,
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_1", "name": "get", "input": {"c": 1}},
                    {"type": "tool_use", "id": "call_2", "name": "now", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "12C"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "noon"},
                    {"type": "text", "text": "and?"},
                ],
            },
        ],
        id="tool-calls-and-results-merged",
    ),
    pytest.param(
        [
            USER_HI,
            {"role": "assistant", "content": None, "tool_calls": []},
            {"role": "user", "content": "?"},
        ],
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "?"}],
            }
        ],
        id="empty-assistant-skipped",
    ),
    pytest.param(
        [USER_HI, {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]}],
        [USER_HI, {"role": "assistant", "content": [{"type": "text", "text": "No."}]}],
        id="refusal-part",
    ),
]


@pytest.mark.parametrize(("messages", "expected"), O2A_MESSAGES)
def test_openai_messages_map_to_anthropic(messages: list[JSON], expected: list[JSON]) -> None:
    assert to_anthropic(messages=messages)["messages"] == expected


def test_openai_tools_and_tool_choice_map_to_anthropic() -> None:
    schema = {"type": "object", "properties": {"c": {"type": "integer"}}}
    tools = [
        {
            "type": "function",
            "function": {"name": "get", "description": "Weather", "parameters": schema},
        },
        {"type": "function", "function": {"name": "now", "strict": True}},
    ]
    out = to_anthropic(tools=tools, tool_choice="required", parallel_tool_calls=False)
    assert out["tools"] == [
        {"name": "get", "input_schema": schema, "description": "Weather"},
        {"name": "now", "input_schema": {"type": "object", "properties": {}}, "strict": True},
    ]
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", True, {"type": "any"}),
        ("none", False, {"type": "none"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, None, None),
        ({"type": "function", "function": {"name": "get"}}, None, {"type": "tool", "name": "get"}),
    ],
)
def test_openai_tool_choice(choice: Any, parallel: bool | None, expected: JSON | None) -> None:
    tools = [{"type": "function", "function": {"name": "get"}}]
    out = to_anthropic(tools=tools, tool_choice=choice, parallel_tool_calls=parallel)
    assert out.get("tool_choice") == expected


O2A_NOTES = [
    pytest.param(
        {"frequency_penalty": 0.5, "presence_penalty": 0.1},
        ["frequency_penalty", "presence_penalty"],
        id="penalties",
    ),
    pytest.param(
        {"seed": 7, "logit_bias": {"50256": -100}}, ["seed", "logit_bias"], id="seed-bias"
    ),
    pytest.param({"reasoning_effort": "high"}, ["reasoning_effort"], id="reasoning"),
    pytest.param(
        {"store": True, "metadata": {"a": "b"}, "prompt_cache_key": "k"}, [], id="hints-silent"
    ),
    pytest.param({"x_vendor": 1}, ["x_vendor"], id="unknown"),
    pytest.param(
        {"messages": [{"role": "user", "content": "hi", "name": "ann"}]},
        ["messages[0].name"],
        id="name",
    ),
]


@pytest.mark.parametrize(("fields", "params"), O2A_NOTES)
def test_openai_inputs_dropped_are_noted(fields: JSON, params: list[str]) -> None:
    notes: list[TranslationNote] = []
    body = {"model": "m", "messages": [USER_HI], **fields}
    out = openai_to_anthropic_request(body, default_max_tokens=10, notes=notes)
    assert [note.param for note in notes] == params
    assert not set(fields) - {"messages"} & set(out)


O2A_ERRORS = [
    pytest.param({"n": 2}, "n", "n must be 1", id="n"),
    pytest.param({"logprobs": True}, "logprobs", "logprobs", id="logprobs"),
    pytest.param({"top_logprobs": 3}, "logprobs", "logprobs", id="top_logprobs"),
    pytest.param({"audio": {"voice": "alloy"}}, "audio", "audio", id="audio"),
    pytest.param({"modalities": ["text", "audio"]}, "modalities", "text only", id="modalities"),
    pytest.param(
        {"response_format": {"type": "json_object"}}, "response_format", "json_object", id="json"
    ),
    pytest.param(
        {"response_format": {"type": "json_schema", "json_schema": {}}},
        "response_format",
        "tool",
        id="schema",
    ),
    pytest.param({"functions": [{}]}, "functions", "use tools", id="functions"),
    pytest.param({"temperature": 1.5}, "temperature", "between 0 and 1", id="temperature"),
    pytest.param({"web_search_options": {}}, "web_search_options", "web search", id="web-search"),
    pytest.param(
        {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
        "messages[0].content[0].type",
        "audio",
        id="audio-part",
    ),
    pytest.param(
        {"messages": [{"role": "user", "content": [{"type": "file", "file": {}}]}]},
        "messages[0].content[0].type",
        "file parts",
        id="file-part",
    ),
    pytest.param(
        {"messages": [{"role": "user", "content": [{"type": "video"}]}]},
        "messages[0].content[0].type",
        "'video'",
        id="unknown-part",
    ),
    pytest.param(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AA"}}
                    ],
                }
            ]
        },
        "messages[0].content[0].image_url.url",
        "JPEG, PNG, GIF or WebP",
        id="image-type",
    ),
    pytest.param(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/png,AA"}}],
                }
            ]
        },
        "messages[0].content[0].image_url.url",
        "base64",
        id="image-not-base64",
    ),
    pytest.param(
        {
            "messages": [
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{oops"},
                        }
                    ],
                }
            ]
        },
        "messages[0].tool_calls[0].function.arguments",
        "not valid JSON",
        id="bad-arguments",
    ),
    pytest.param(
        {
            "messages": [
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": "[1]"},
                        }
                    ],
                }
            ]
        },
        "messages[0].tool_calls[0].function.arguments",
        "JSON object",
        id="arguments-not-object",
    ),
    pytest.param(
        {"messages": [{"role": "function", "content": "x", "name": "f"}]},
        "messages[0].role",
        "'function'",
        id="function-role",
    ),
    pytest.param(
        {"tools": [{"type": "custom", "custom": {"name": "g"}}]},
        "tools[0].type",
        "function tools",
        id="custom-tool",
    ),
    pytest.param(
        {"tool_choice": {"type": "allowed_tools"}},
        "tool_choice",
        "named function",
        id="allowed-tools",
    ),
    pytest.param({"messages": None}, "messages", "array", id="no-messages"),
]


@pytest.mark.parametrize(("fields", "param", "words"), O2A_ERRORS)
def test_openai_inputs_without_equivalent_are_refused(fields: JSON, param: str, words: str) -> None:
    with pytest.raises(TranslationError) as caught:
        to_anthropic(**fields)
    assert caught.value.param == param
    assert words in caught.value.message


def test_a_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(TranslationError, match="the body must be an object"):
        anthropic_to_openai_request([])  # type: ignore[arg-type]


# --- Round trips ---------------------------------------------------------------------------------

CONVERSATION: JSON = {
    "model": "m",
    "max_tokens": 512,
    "system": "You are terse.",
    "stop_sequences": ["###"],
    "temperature": 0.3,
    "stream": True,
    "metadata": {"user_id": "u-9"},
    "tools": [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather here?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Looking."},
                {
                    "type": "tool_use",
                    "id": "toolu_01",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "12C, rain"},
                {"type": "text", "text": "Umbrella?"},
            ],
        },
    ],
}


def test_anthropic_round_trip_keeps_the_meaning() -> None:
    back = openai_to_anthropic_request(
        anthropic_to_openai_request(CONVERSATION), default_max_tokens=1
    )
    assert back == CONVERSATION


def test_openai_round_trip_keeps_the_meaning() -> None:
    body = anthropic_to_openai_request(CONVERSATION)
    again = anthropic_to_openai_request(openai_to_anthropic_request(body, default_max_tokens=1))
    assert again == body


def test_outputs_share_no_mutable_value_with_inputs() -> None:
    body = anthropic_to_openai_request(CONVERSATION)
    body["tools"][0]["function"]["parameters"]["properties"].clear()
    again = openai_to_anthropic_request(body, default_max_tokens=1)
    again["tools"][0]["input_schema"]["type"] = "array"
    assert CONVERSATION["tools"][0]["input_schema"]["properties"] == {"city": {"type": "string"}}
    assert body["tools"][0]["function"]["parameters"]["type"] == "object"
