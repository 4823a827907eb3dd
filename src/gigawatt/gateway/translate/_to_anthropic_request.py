"""An OpenAI Chat Completions request as an Anthropic Messages request."""

from __future__ import annotations

import copy
from typing import Any

from gigawatt.gateway.translate._common import (
    JSON,
    TranslationError,
    TranslationNote,
    anthropic_tool_id,
    expect_dict,
    expect_list,
    expect_str,
    parse_arguments,
)

_HANDLED = {
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "temperature",
    "top_p",
    "top_k",
    "stream",
    "stream_options",
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "n",
    "logprobs",
    "top_logprobs",
    "response_format",
    "modalities",
}

_DROPPED = {
    "frequency_penalty": "frequency_penalty has no Messages equivalent",
    "presence_penalty": "presence_penalty has no Messages equivalent",
    "seed": "seed has no Messages equivalent; sampling is not reproducible",
    "logit_bias": "logit_bias has no Messages equivalent",
    "reasoning_effort": "reasoning_effort is not translated; the model answers without thinking",
    "verbosity": "verbosity has no Messages equivalent",
    # Hints and bookkeeping for OpenAI's own platform; dropping them changes no answer.
    "store": None,
    "metadata": None,
    "service_tier": None,
    "prediction": None,
    "prompt_cache_key": None,
    "safety_identifier": None,
}

_REFUSED = {
    "audio": "audio output is not available from a Messages upstream",
    "functions": "functions is deprecated and not translated; use tools",
    "function_call": "function_call is deprecated and not translated; use tool_choice",
    "web_search_options": "web search is not translated",
}

# Anthropic accepts images of these types only.
_IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}


def openai_to_anthropic_request(
    body: JSON, *, default_max_tokens: int, notes: list[TranslationNote] | None = None
) -> JSON:
    """The Messages request that asks what the Chat Completions request `body` asks.

    Messages requires max_tokens, so `default_max_tokens` is used when the client set neither
    max_completion_tokens nor max_tokens. Raises `TranslationError` for inputs with no
    equivalent (n > 1, logprobs, audio, JSON mode...); `notes` collects what was dropped.
    """
    body = expect_dict(body, "")
    dropped: list[TranslationNote] = []
    for key, value in body.items():
        if key in _REFUSED and value is not None:
            raise TranslationError(_REFUSED[key], key)
        if key in _DROPPED:
            reason = _DROPPED[key]
            if reason and value not in (None, 0, {}, False):
                dropped.append(TranslationNote(key, reason))
        elif key not in _HANDLED and key not in _REFUSED:
            dropped.append(TranslationNote(key, f"{key} is not translated"))
    _refuse_unsupported_outputs(body)

    system, messages = _messages(expect_list(body.get("messages"), "messages"), dropped)
    out: JSON = {"model": body.get("model")}
    if system:
        out["system"] = system
    out["messages"] = messages
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    out["max_tokens"] = default_max_tokens if max_tokens is None else max_tokens

    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif stop:
        out["stop_sequences"] = list(expect_list(stop, "stop"))
    temperature = body.get("temperature")
    if temperature is not None:
        if isinstance(temperature, int | float) and temperature > 1:
            raise TranslationError(
                "temperature must be between 0 and 1 for this model (its upstream speaks the "
                "Anthropic Messages API)",
                "temperature",
            )
        out["temperature"] = temperature
    for key in ("top_p", "top_k"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("stream"):
        # Messages streams always carry usage, so stream_options needs no counterpart.
        out["stream"] = True
    user = body.get("user") or body.get("safety_identifier")
    if user is not None:
        out["metadata"] = {"user_id": expect_str(user, "user")}

    if body.get("tools"):
        out["tools"] = [
            _tool(tool, f"tools[{i}]") for i, tool in enumerate(expect_list(body["tools"], "tools"))
        ]
    choice = _tool_choice(body.get("tool_choice"))
    if body.get("parallel_tool_calls") is False and out.get("tools"):
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    if choice is not None:
        out["tool_choice"] = choice

    if notes is not None:
        notes.extend(dropped)
    return out


def _refuse_unsupported_outputs(body: JSON) -> None:
    n = body.get("n")
    if n is not None and n != 1:
        raise TranslationError("n must be 1 for this model: it returns one choice", "n")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise TranslationError("logprobs are not available for this model", "logprobs")
    modalities = body.get("modalities")
    if modalities is not None and set(expect_list(modalities, "modalities")) - {"text"}:
        raise TranslationError("this model produces text only", "modalities")
    response_format = body.get("response_format")
    if response_format is not None:
        kind = expect_dict(response_format, "response_format").get("type")
        if kind != "text":
            raise TranslationError(
                f"response_format {kind!r} is not available for this model; describe the "
                "format in the prompt or use a tool with a JSON schema",
                "response_format",
            )


def _messages(messages: list[Any], dropped: list[TranslationNote]) -> tuple[str, list[JSON]]:
    system: list[str] = []
    out: list[JSON] = []
    for i, message in enumerate(messages):
        path = f"messages[{i}]"
        message = expect_dict(message, path)
        role = message.get("role")
        if message.get("name") is not None:
            dropped.append(TranslationNote(f"{path}.name", "participant names are not translated"))
        if role in ("system", "developer"):
            if out:
                dropped.append(
                    TranslationNote(path, "moved to the system prompt, before every message")
                )
            system.append(_text_only(message.get("content"), f"{path}.content", "\n\n"))
            continue
        if role == "user":
            blocks = _user_content(message.get("content"), f"{path}.content")
        elif role == "assistant":
            blocks = _assistant_content(message, path)
            if not blocks:
                continue  # Messages refuses empty turns; an empty one says nothing anyway.
        elif role == "tool":
            blocks = [_tool_result(message, path)]
        else:
            raise TranslationError(f"messages of role {role!r} are not translated", f"{path}.role")
        anthropic_role = "assistant" if role == "assistant" else "user"
        # All results of one assistant turn must sit in the next user message, so consecutive
        # tool and user messages merge.
        if out and out[-1]["role"] == anthropic_role:
            out[-1]["content"] = _as_blocks(out[-1]["content"]) + _as_blocks(blocks)
        else:
            out.append({"role": anthropic_role, "content": blocks})
    return "\n\n".join(system), out


def _as_blocks(content: str | list[JSON]) -> list[JSON]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _text_only(content: object, path: str, separator: str) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for j, part in enumerate(expect_list(content, path)):
        part = expect_dict(part, f"{path}[{j}]")
        if part.get("type") not in ("text", "refusal"):
            raise TranslationError(f"{path} may hold text parts only", f"{path}[{j}].type")
        texts.append(expect_str(part.get(part["type"]), f"{path}[{j}].{part['type']}"))
    return separator.join(texts)


def _user_content(content: object, path: str) -> str | list[JSON]:
    if isinstance(content, str):
        return content
    blocks: list[JSON] = []
    for j, part in enumerate(expect_list(content, path)):
        part_path = f"{path}[{j}]"
        part = expect_dict(part, part_path)
        kind = part.get("type")
        if kind == "text":
            blocks.append(
                {"type": "text", "text": expect_str(part.get("text"), f"{part_path}.text")}
            )
        elif kind == "image_url":
            blocks.append(_image(part, part_path))
        elif kind == "input_audio":
            raise TranslationError(
                "audio input is not available for this model", f"{part_path}.type"
            )
        elif kind == "file":
            raise TranslationError(
                "file parts (PDFs) are not translated; send the text instead", f"{part_path}.type"
            )
        else:
            raise TranslationError(
                f"content parts of type {kind!r} are not known", f"{part_path}.type"
            )
    return blocks


def _image(part: JSON, path: str) -> JSON:
    image = expect_dict(part.get("image_url"), f"{path}.image_url")
    url = expect_str(image.get("url"), f"{path}.image_url.url")
    if not url.startswith("data:"):
        return {"type": "image", "source": {"type": "url", "url": url}}
    header, sep, data = url[len("data:") :].partition(",")
    media_type, _, encoding = header.partition(";")
    if not sep or encoding != "base64":
        raise TranslationError("image data URLs must be base64-encoded", f"{path}.image_url.url")
    if media_type not in _IMAGE_TYPES:
        raise TranslationError(
            f"images of type {media_type!r} are not accepted; use JPEG, PNG, GIF or WebP",
            f"{path}.image_url.url",
        )
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _assistant_content(message: JSON, path: str) -> list[JSON]:
    content = message.get("content")
    blocks: list[JSON] = []
    if message.get("audio") is not None:
        raise TranslationError("assistant audio is not translated", f"{path}.audio")
    if message.get("function_call") is not None:
        raise TranslationError(
            "function_call is deprecated and not translated; use tool_calls",
            f"{path}.function_call",
        )
    # Parts of one assistant turn are fragments of one text, so no separator.
    text = "" if content is None else _text_only(content, f"{path}.content", "")
    if text:
        blocks.append({"type": "text", "text": text})
    for j, call in enumerate(expect_list(message.get("tool_calls") or [], f"{path}.tool_calls")):
        call_path = f"{path}.tool_calls[{j}]"
        call = expect_dict(call, call_path)
        if call.get("type", "function") != "function":
            raise TranslationError("only function tool calls are translated", f"{call_path}.type")
        function = expect_dict(call.get("function"), f"{call_path}.function")
        blocks.append(
            {
                "type": "tool_use",
                "id": anthropic_tool_id(expect_str(call.get("id"), f"{call_path}.id")),
                "name": expect_str(function.get("name"), f"{call_path}.function.name"),
                "input": parse_arguments(
                    function.get("arguments"), f"{call_path}.function.arguments"
                ),
            }
        )
    return blocks


def _tool_result(message: JSON, path: str) -> JSON:
    content = message.get("content")
    result: JSON = {
        "type": "tool_result",
        "tool_use_id": anthropic_tool_id(
            expect_str(message.get("tool_call_id"), f"{path}.tool_call_id")
        ),
    }
    if isinstance(content, list):
        text = _text_only(content, f"{path}.content", "\n")
    else:
        text = expect_str(content if content is not None else "", f"{path}.content")
    result["content"] = text
    return result


def _tool(tool: object, path: str) -> JSON:
    tool = expect_dict(tool, path)
    if tool.get("type") != "function":
        raise TranslationError(
            f"tools of type {tool.get('type')!r} are not translated; use function tools",
            f"{path}.type",
        )
    function = expect_dict(tool.get("function"), f"{path}.function")
    out: JSON = {
        "name": expect_str(function.get("name"), f"{path}.function.name"),
        # Messages requires a schema; a function without parameters takes an empty object.
        "input_schema": copy.deepcopy(function.get("parameters"))
        or {"type": "object", "properties": {}},
    }
    if function.get("description") is not None:
        out["description"] = expect_str(function["description"], f"{path}.function.description")
    if function.get("strict") is not None:
        out["strict"] = function["strict"]
    return out


def _tool_choice(choice: object) -> JSON | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = expect_dict(choice.get("function"), "tool_choice.function")
        return {
            "type": "tool",
            "name": expect_str(function.get("name"), "tool_choice.function.name"),
        }
    raise TranslationError(
        "tool_choice must be 'auto', 'required', 'none' or a named function", "tool_choice"
    )
