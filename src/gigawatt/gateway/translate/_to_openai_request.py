"""An Anthropic Messages request as an OpenAI Chat Completions request."""

from __future__ import annotations

import copy
import json
from typing import Any

from gigawatt.gateway.translate._common import (
    JSON,
    TranslationError,
    TranslationNote,
    expect_dict,
    expect_list,
    expect_str,
)

# Fields carried across by their own code below; any other field is dropped with a note.
_HANDLED = {
    "model",
    "system",
    "messages",
    "max_tokens",
    "stop_sequences",
    "temperature",
    "top_p",
    "stream",
    "metadata",
    "tools",
    "tool_choice",
}

# Accepted and dropped: each changes how the answer is produced, not what a client must parse.
_DROPPED = {
    "thinking": "extended thinking is not translated; the model answers without it",
    "top_k": "top_k is not a Chat Completions parameter",
    "service_tier": "service tiers are not translated",
}

# Without these the upstream would answer a different question, so they are refused.
_REFUSED = {
    "mcp_servers": "MCP servers cannot be attached to a Chat Completions upstream",
    "container": "code execution containers cannot be used with a Chat Completions upstream",
}


def anthropic_to_openai_request(body: JSON, *, notes: list[TranslationNote] | None = None) -> JSON:
    """The Chat Completions request that asks what the Messages request `body` asks.

    Raises `TranslationError` for inputs with no equivalent (documents, server tools, images in
    tool results...). When `notes` is given, each input that was accepted but dropped (thinking,
    top_k, a tool result's is_error...) is appended to it, so the caller can say so.
    """
    body = expect_dict(body, "")
    dropped: list[TranslationNote] = []
    out: JSON = {"model": body.get("model")}

    for key in body:
        if key in _REFUSED and body[key] is not None:
            raise TranslationError(_REFUSED[key], key)
        if key in _DROPPED:
            # An explicit "disabled" thinking asks for what the upstream does anyway.
            thinking = body[key] if key == "thinking" else None
            if isinstance(thinking, dict) and thinking.get("type") == "disabled":
                continue
            dropped.append(TranslationNote(key, _DROPPED[key]))
        elif key not in _HANDLED:
            dropped.append(TranslationNote(key, f"{key} is not translated"))

    messages: list[JSON] = []
    if body.get("system") is not None:
        system = _system_text(body["system"])
        if system:
            messages.append({"role": "system", "content": system})
    for i, message in enumerate(expect_list(body.get("messages"), "messages")):
        messages.extend(_message(message, f"messages[{i}]", dropped))
    out["messages"] = messages

    if body.get("max_tokens") is not None:
        # max_tokens is deprecated in Chat Completions and refused by reasoning models.
        out["max_completion_tokens"] = body["max_tokens"]
    if body.get("stop_sequences"):
        out["stop"] = list(expect_list(body["stop_sequences"], "stop_sequences"))
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("stream"):
        out["stream"] = True
        # Without it an OpenAI stream carries no usage at all, and the gateway could not charge.
        out["stream_options"] = {"include_usage": True}
    if body.get("metadata") is not None:
        metadata = expect_dict(body["metadata"], "metadata")
        if metadata.get("user_id") is not None:
            out["user"] = expect_str(metadata["user_id"], "metadata.user_id")
    if body.get("tools"):
        out["tools"] = [
            _tool(tool, f"tools[{i}]", dropped)
            for i, tool in enumerate(expect_list(body["tools"], "tools"))
        ]
    if body.get("tool_choice") is not None:
        choice, parallel = _tool_choice(expect_dict(body["tool_choice"], "tool_choice"))
        out["tool_choice"] = choice
        # OpenAI refuses parallel_tool_calls on a request without tools.
        if parallel is False and out.get("tools"):
            out["parallel_tool_calls"] = False

    if notes is not None:
        notes.extend(dropped)
    return out


def _system_text(system: object) -> str:
    if isinstance(system, str):
        return system
    parts = []
    for i, block in enumerate(expect_list(system, "system")):
        block = expect_dict(block, f"system[{i}]")
        if block.get("type") != "text":
            raise TranslationError("system blocks must be text blocks", f"system[{i}].type")
        parts.append(expect_str(block.get("text"), f"system[{i}].text"))
    return "\n\n".join(parts)


def _message(message: object, path: str, dropped: list[TranslationNote]) -> list[JSON]:
    message = expect_dict(message, path)
    role = message.get("role")
    content = message.get("content")
    if role not in ("user", "assistant"):
        raise TranslationError(f"{path}.role must be 'user' or 'assistant'", f"{path}.role")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    blocks = [
        (expect_dict(b, f"{path}.content[{j}]"), f"{path}.content[{j}]")
        for j, b in enumerate(expect_list(content, f"{path}.content"))
    ]
    if role == "assistant":
        return [_assistant(blocks, dropped)]
    return _user(blocks, dropped)


def _user(blocks: list[tuple[JSON, str]], dropped: list[TranslationNote]) -> list[JSON]:
    # Chat Completions wants tool results as their own messages, right after the calls; the
    # rest of the turn follows them as one user message.
    tool_messages: list[JSON] = []
    parts: list[JSON] = []
    for block, path in blocks:
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": expect_str(block.get("text"), f"{path}.text")})
        elif kind == "image":
            parts.append(_image(block, path))
        elif kind == "tool_result":
            tool_messages.append(_tool_result(block, path, dropped))
        else:
            raise _unsupported_block(kind, path)
    if parts or not tool_messages:
        return [*tool_messages, {"role": "user", "content": parts}]
    return tool_messages


def _assistant(blocks: list[tuple[JSON, str]], dropped: list[TranslationNote]) -> JSON:
    texts: list[str] = []
    calls: list[JSON] = []
    for block, path in blocks:
        kind = block.get("type")
        if kind == "text":
            texts.append(expect_str(block.get("text"), f"{path}.text"))
            if block.get("citations"):
                dropped.append(TranslationNote(f"{path}.citations", "citations are not translated"))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": expect_str(block.get("id"), f"{path}.id"),
                    "type": "function",
                    "function": {
                        "name": expect_str(block.get("name"), f"{path}.name"),
                        "arguments": json.dumps(block.get("input", {}), ensure_ascii=False),
                    },
                }
            )
        elif kind in ("thinking", "redacted_thinking"):
            dropped.append(TranslationNote(path, f"{kind} blocks are not translated"))
        else:
            raise _unsupported_block(kind, path)
    # Adjacent text blocks are fragments of one text (a citation splits them), so no separator.
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    elif not texts:
        message["content"] = ""
    return message


def _image(block: JSON, path: str) -> JSON:
    source = expect_dict(block.get("source"), f"{path}.source")
    kind = source.get("type")
    if kind == "base64":
        media_type = expect_str(source.get("media_type"), f"{path}.source.media_type")
        data = expect_str(source.get("data"), f"{path}.source.data")
        url = f"data:{media_type};base64,{data}"
    elif kind == "url":
        url = expect_str(source.get("url"), f"{path}.source.url")
    else:
        raise TranslationError(
            f"image source type {kind!r} cannot be translated; send the image as base64 or a URL",
            f"{path}.source.type",
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result(block: JSON, path: str, dropped: list[TranslationNote]) -> JSON:
    content = block.get("content", "")
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            part = expect_dict(part, f"{path}.content[{j}]")
            if part.get("type") != "text":
                raise TranslationError(
                    f"a tool result with {part.get('type')!r} content cannot be sent to a Chat "
                    "Completions upstream, whose tool messages hold text only",
                    f"{path}.content[{j}].type",
                )
            texts.append(expect_str(part.get("text"), f"{path}.content[{j}].text"))
        content = "\n".join(texts)
    if block.get("is_error"):
        dropped.append(
            TranslationNote(f"{path}.is_error", "tool messages cannot be marked as errors")
        )
    return {
        "role": "tool",
        "tool_call_id": expect_str(block.get("tool_use_id"), f"{path}.tool_use_id"),
        "content": expect_str(content, f"{path}.content"),
    }


def _unsupported_block(kind: object, path: str) -> TranslationError:
    if kind == "document":
        reason = "document (PDF and plain-text) blocks are not translated; send the text instead"
    else:
        reason = f"content blocks of type {kind!r} cannot be sent to a Chat Completions upstream"
    return TranslationError(reason, f"{path}.type")


def _tool(tool: object, path: str, dropped: list[TranslationNote]) -> JSON:
    tool = expect_dict(tool, path)
    if tool.get("type", "custom") != "custom":
        raise TranslationError(
            f"Anthropic-defined tools ({tool.get('type')!r}) cannot be used with a Chat "
            "Completions upstream; define the tool with name, description and input_schema",
            f"{path}.type",
        )
    function: JSON = {
        "name": expect_str(tool.get("name"), f"{path}.name"),
        # Copied so the output shares no mutable value with the input.
        "parameters": copy.deepcopy(expect_dict(tool.get("input_schema"), f"{path}.input_schema")),
    }
    if tool.get("description") is not None:
        function["description"] = expect_str(tool["description"], f"{path}.description")
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    for key in tool.keys() - {"type", "name", "description", "input_schema", "strict"}:
        dropped.append(TranslationNote(f"{path}.{key}", f"tool field {key} is not translated"))
    return {"type": "function", "function": function}


def _tool_choice(choice: JSON) -> tuple[Any, bool | None]:
    kind = choice.get("type")
    parallel = False if choice.get("disable_parallel_tool_use") else None
    if kind == "auto":
        return "auto", parallel
    if kind == "any":
        return "required", parallel
    if kind == "none":
        return "none", None
    if kind == "tool":
        name = expect_str(choice.get("name"), "tool_choice.name")
        return {"type": "function", "function": {"name": name}}, parallel
    raise TranslationError(f"tool_choice type {kind!r} is not known", "tool_choice.type")
