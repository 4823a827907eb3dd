"""Errors as each provider's clients expect them: status, JSON body and headers.

One `GatewayError` carries the meaning (`kind`) once; `openai_body` and `anthropic_body` render it
in each dialect, so a handler raises the same error whichever endpoint it serves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal[
    "invalid_request",
    "authentication",
    "permission",
    "not_found",
    "request_too_large",
    "rate_limit",
    "overloaded",
    "upstream_error",
    "upstream_timeout",
    "state_unavailable",
    "api_error",
]

# kind -> (OpenAI status, OpenAI type, OpenAI code, Anthropic status, Anthropic type)
_DIALECTS: dict[str, tuple[int, str, str | None, int, str]] = {
    "invalid_request": (400, "invalid_request_error", None, 400, "invalid_request_error"),
    "authentication": (
        401,
        "invalid_request_error",
        "invalid_api_key",
        401,
        "authentication_error",
    ),
    "permission": (403, "invalid_request_error", "permission_denied", 403, "permission_error"),
    "not_found": (404, "invalid_request_error", "model_not_found", 404, "not_found_error"),
    "request_too_large": (
        413,
        "invalid_request_error",
        "request_too_large",
        413,
        "request_too_large",
    ),
    "rate_limit": (429, "rate_limit_exceeded", "rate_limit_exceeded", 429, "rate_limit_error"),
    "overloaded": (503, "server_error", "overloaded", 529, "overloaded_error"),
    "upstream_error": (502, "server_error", "upstream_error", 502, "api_error"),
    "upstream_timeout": (504, "server_error", "upstream_timeout", 504, "timeout_error"),
    "state_unavailable": (503, "server_error", "service_unavailable", 503, "api_error"),
    "api_error": (500, "server_error", None, 500, "api_error"),
}


@dataclass
class GatewayError(Exception):
    kind: Kind
    message: str
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


def openai_error(error: GatewayError) -> tuple[int, bytes]:
    status, type_, code, _, _ = _DIALECTS[error.kind]
    body = {"error": {"message": error.message, "type": type_, "param": error.param, "code": code}}
    return status, json.dumps(body).encode()


def anthropic_error(error: GatewayError) -> tuple[int, bytes]:
    _, _, _, status, type_ = _DIALECTS[error.kind]
    body = {"type": "error", "error": {"type": type_, "message": error.message}}
    return status, json.dumps(body).encode()
