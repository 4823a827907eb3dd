"""Non-streamed responses, each way: content, tool calls, stop reason and usage."""

from __future__ import annotations

import json
import time

from gigawatt.gateway.translate._common import (
    JSON,
    TranslationError,
    anthropic_message_id,
    anthropic_stop,
    anthropic_tool_id,
    anthropic_usage,
    expect_dict,
    expect_list,
    expect_str,
    openai_completion_id,
    openai_finish,
    openai_usage,
    parse_arguments,
    usage_from_anthropic,
    usage_from_openai,
)


def openai_to_anthropic_response(resp: JSON, *, model: str) -> JSON:
    """The Messages response for the Chat Completions response `resp`, answered as `model`.

    Only the first choice is read (requests with n > 1 are refused). Reasoning text some servers
    add (`reasoning_content`) and logprobs are dropped. Raises `TranslationError` when the
    upstream's tool call arguments are not a JSON object: a Messages client could not parse them.
    """
    resp = expect_dict(resp, "")
    choices = expect_list(resp.get("choices"), "choices")
    if not choices:
        raise TranslationError("the upstream response has no choices", "choices")
    choice = expect_dict(choices[0], "choices[0]")
    message = expect_dict(choice.get("message"), "choices[0].message")

    content: list[JSON] = []
    text = message.get("content")
    refusal = message.get("refusal")
    for part in (text, refusal):
        if isinstance(part, str) and part:
            content.append({"type": "text", "text": part})
    for j, call in enumerate(message.get("tool_calls") or []):
        path = f"choices[0].message.tool_calls[{j}]"
        call = expect_dict(call, path)
        function = expect_dict(call.get("function"), f"{path}.function")
        content.append(
            {
                "type": "tool_use",
                "id": anthropic_tool_id(call.get("id")),
                "name": expect_str(function.get("name"), f"{path}.function.name"),
                "input": parse_arguments(function.get("arguments"), f"{path}.function.arguments"),
            }
        )

    stop_reason, stop_sequence = anthropic_stop(
        choice.get("finish_reason"), choice.get("stop_reason")
    )
    if isinstance(refusal, str) and refusal:
        stop_reason = "refusal"
    usage = resp.get("usage")
    counts = usage_from_openai(usage) if isinstance(usage, dict) else (0, 0, 0, 0)
    return {
        "id": anthropic_message_id(resp.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": anthropic_usage(counts),
    }


def anthropic_to_openai_response(resp: JSON, *, model: str, created: int | None = None) -> JSON:
    """The Chat Completions response for the Messages response `resp`, answered as `model`.

    Text blocks are joined into one content string; tool_use blocks become tool_calls; thinking,
    citations and server-tool blocks are dropped. `created` defaults to the wall clock.
    """
    resp = expect_dict(resp, "")
    texts: list[str] = []
    calls: list[JSON] = []
    for j, block in enumerate(expect_list(resp.get("content"), "content")):
        block = expect_dict(block, f"content[{j}]")
        kind = block.get("type")
        if kind == "text":
            texts.append(expect_str(block.get("text"), f"content[{j}].text"))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": expect_str(block.get("id"), f"content[{j}].id"),
                    "type": "function",
                    "function": {
                        "name": expect_str(block.get("name"), f"content[{j}].name"),
                        "arguments": json.dumps(block.get("input", {}), ensure_ascii=False),
                    },
                }
            )
    message: JSON = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    usage = resp.get("usage")
    counts = usage_from_anthropic(usage) if isinstance(usage, dict) else (0, 0, 0, 0)
    return {
        "id": openai_completion_id(resp.get("id")),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": openai_finish(resp.get("stop_reason")),
                "logprobs": None,
            }
        ],
        "usage": openai_usage(counts),
    }
