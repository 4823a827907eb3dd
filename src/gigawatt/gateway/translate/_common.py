"""What both directions share: the error, the notes, id, stop-reason and usage mappings."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from gigawatt.errors import GigawattError

JSON = dict[str, Any]

# (input, output, cache_read, cache_write) tokens; input excludes both cache counts.
UsageTuple = tuple[int, int, int, int]


class TranslationError(GigawattError):
    """A request or response that has no faithful equivalent in the other protocol.

    `param` names the offending field as a path (`messages[2].content[0].type`), in the style of
    OpenAI's `error.param`, so the gateway can answer 400 in either dialect.
    """

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True, slots=True)
class TranslationNote:
    """An input that was accepted but not carried across as it was (dropped, or moved)."""

    param: str
    reason: str


def expect_dict(value: object, param: str) -> JSON:
    if not isinstance(value, dict):
        raise TranslationError(f"{param or 'the body'} must be an object", param or None)
    return value


def expect_list(value: object, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise TranslationError(f"{param} must be an array", param)
    return value


def expect_str(value: object, param: str) -> str:
    if not isinstance(value, str):
        raise TranslationError(f"{param} must be a string", param)
    return value


# Anthropic accepts only these characters in tool_use ids; OpenAI-compatible servers are laxer.
_TOOL_ID_BAD = re.compile(r"[^A-Za-z0-9_-]")


def anthropic_tool_id(value: object) -> str:
    """The same id, made acceptable to Anthropic; deterministic so a call and its result match."""
    if isinstance(value, str) and value:
        return _TOOL_ID_BAD.sub("_", value)
    return "toolu_" + uuid.uuid4().hex


def anthropic_message_id(openai_id: object) -> str:
    # Derived, not fresh, so logs on both sides of the gateway can be matched.
    if isinstance(openai_id, str) and openai_id:
        return "msg_" + openai_id.removeprefix("chatcmpl-")
    return "msg_" + uuid.uuid4().hex


def openai_completion_id(anthropic_id: object) -> str:
    if isinstance(anthropic_id, str) and anthropic_id:
        return "chatcmpl-" + anthropic_id.removeprefix("msg_")
    return "chatcmpl-" + uuid.uuid4().hex


_STOP_TO_ANTHROPIC = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

_STOP_TO_OPENAI = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    # The turn is complete as far as an OpenAI client can tell: it cannot resume a paused turn.
    "pause_turn": "stop",
    "model_context_window_exceeded": "length",
}


def anthropic_stop(finish_reason: object, matched: object = None) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence) for an OpenAI finish_reason.

    `matched` is vLLM's `choice.stop_reason`: the stop string that ended the text, when one did.
    Unknown reasons become `end_turn`, the one an Anthropic client treats as a normal end.
    """
    if finish_reason == "stop" and isinstance(matched, str) and matched:
        return "stop_sequence", matched
    return _STOP_TO_ANTHROPIC.get(str(finish_reason), "end_turn"), None


def openai_finish(stop_reason: object) -> str:
    return _STOP_TO_OPENAI.get(str(stop_reason), "stop")


def _count(value: object) -> int:
    # bool is an int; a True token count is a broken upstream, not one token.
    return value if type(value) is int and value > 0 else 0


def usage_from_openai(usage: JSON) -> UsageTuple:
    """OpenAI's prompt_tokens include cached tokens; Anthropic-style input excludes them."""
    details = usage.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else 0
    prompt = _count(usage.get("prompt_tokens"))
    return max(prompt - cached, 0), _count(usage.get("completion_tokens")), min(cached, prompt), 0


def usage_from_anthropic(usage: JSON, previous: UsageTuple | None = None) -> UsageTuple:
    """Counts from an Anthropic usage object; absent fields keep their `previous` value.

    Stream events carry cumulative counts, some of them only in one event, so a later event
    updates what it names and leaves the rest.
    """
    before = previous or (0, 0, 0, 0)
    keys = (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    )
    counts = [
        _count(usage[key]) if usage.get(key) is not None else old
        for key, old in zip(keys, before, strict=True)
    ]
    return counts[0], counts[1], counts[2], counts[3]


def anthropic_usage(usage: UsageTuple) -> JSON:
    input_tokens, output_tokens, cache_read, cache_write = usage
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_write,
    }


def openai_usage(usage: UsageTuple) -> JSON:
    # OpenAI has no cache-write count: those tokens are plain prompt tokens to its clients.
    input_tokens, output_tokens, cache_read, cache_write = usage
    prompt = input_tokens + cache_read + cache_write
    return {
        "prompt_tokens": prompt,
        "completion_tokens": output_tokens,
        "total_tokens": prompt + output_tokens,
        "prompt_tokens_details": {"cached_tokens": cache_read},
    }


def parse_arguments(arguments: object, path: str) -> JSON:
    """A tool call's JSON-string arguments as the object Messages wants (empty means none)."""
    if arguments is None or arguments == "":
        return {}
    try:
        value = json.loads(expect_str(arguments, path))
    except json.JSONDecodeError as exc:
        raise TranslationError(f"{path} is not valid JSON: {exc.msg}", path) from None
    if not isinstance(value, dict):
        raise TranslationError(f"{path} must encode a JSON object", path)
    return value
