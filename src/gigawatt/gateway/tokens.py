"""Input tokens of a request, counted before it is forwarded, to size its reservation.

Text is counted with OpenAI's o200k_base encoding (shipped inside `bpe-openai`, so it works
offline). For other model families it is an estimate, typically within 10-20%; the reservation is
corrected by the upstream's reported usage anyway. Past `EXACT_CHARS` characters the count is
estimated at 4 characters a token, so a huge prompt cannot cost the gateway milliseconds of CPU.
Images count a flat `IMAGE_TOKENS`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

EXACT_CHARS = 50_000
IMAGE_TOKENS = 1_600
PER_MESSAGE_TOKENS = 4  # role and framing, as providers count them


@cache
def _encoding() -> Any:
    import bpe_openai

    return bpe_openai.get_encoding("o200k_base")


def load_tokenizer() -> None:
    _encoding()


def count_text(text: str) -> int:
    if not text:
        return 0
    size = len(text)
    if size > EXACT_CHARS:
        return size // 4
    # A conversation resends every earlier message with each new one, and system prompts repeat
    # across users, so most texts have been counted before. The key is the text's hash, not the
    # text: no prompt is kept. Two texts of one length and one hash would share a count; that
    # only moves a reservation, which the upstream's usage corrects.
    key = (size, hash(text))
    tokens = _COUNTED.get(key)
    if tokens is None:
        # encode_ordinary: text that spells a special token ("<|endoftext|>") is the user's
        # text, counted like any other; `encode` would refuse it. It also skips `encode`'s
        # per-call bookkeeping, at a third of the cost.
        tokens = len(_encoding().encode_ordinary(text))
        if len(_COUNTED) >= COUNTED_TEXTS:
            del _COUNTED[next(iter(_COUNTED))]  # the oldest
        _COUNTED[key] = tokens
    return tokens


# Token counts of recent texts, by (length, hash); about 100 bytes an entry.
COUNTED_TEXTS = 65_536
_COUNTED: dict[tuple[int, int], int] = {}


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return count_text(content)
    total = 0
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text":
                total += count_text(str(part.get("text", "")))
            elif kind in ("image", "image_url"):
                total += IMAGE_TOKENS
            elif kind == "tool_result":
                total += _content_tokens(part.get("content"))
            elif kind == "tool_use":
                total += count_text(str(part.get("input", "")))
    return total


def count_request_tokens(body: dict[str, Any]) -> int:
    """Input tokens of an OpenAI chat or Anthropic messages body (the two share this shape)."""
    total = 0
    system = body.get("system")
    if system is not None:
        total += _content_tokens(system)
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            total += PER_MESSAGE_TOKENS + _content_tokens(message.get("content"))
            for call in message.get("tool_calls") or ():
                if isinstance(call, dict):
                    total += count_text(str(call.get("function", "")))
    if body.get("tools"):
        total += count_text(str(body["tools"]))
    return total
