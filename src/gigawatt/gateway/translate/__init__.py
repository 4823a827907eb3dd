"""Translation between the OpenAI Chat Completions and the Anthropic Messages wire formats.

Plain JSON-compatible dicts in and out, so the gateway can serve a client in one protocol from an
upstream that speaks the other. Requests and responses are pure functions; streams are small
classes fed one upstream event at a time. What is and is not translated: docs/translation.md.

    TranslationError   an input with no faithful equivalent; `param` names the field
    TranslationNote    an input that was accepted but dropped or moved (see the `notes` argument)
"""

from gigawatt.gateway.translate._common import TranslationError, TranslationNote, UsageTuple
from gigawatt.gateway.translate._responses import (
    anthropic_to_openai_response,
    openai_to_anthropic_response,
)
from gigawatt.gateway.translate._streams import AnthropicToOpenAIStream, OpenAIToAnthropicStream
from gigawatt.gateway.translate._to_anthropic_request import openai_to_anthropic_request
from gigawatt.gateway.translate._to_openai_request import anthropic_to_openai_request

__all__ = [
    "AnthropicToOpenAIStream",
    "OpenAIToAnthropicStream",
    "TranslationError",
    "TranslationNote",
    "UsageTuple",
    "anthropic_to_openai_request",
    "anthropic_to_openai_response",
    "openai_to_anthropic_request",
    "openai_to_anthropic_response",
]
