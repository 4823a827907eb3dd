"""Usage as upstreams report it, read into what the limiter is charged."""

from __future__ import annotations

from typing import Any

import pytest

from gigawatt.gateway.upstream import usage_from_anthropic, usage_from_openai
from gigawatt.limits import Usage


@pytest.mark.parametrize(
    ("reported", "charged"),
    [
        ({"prompt_tokens": 20, "completion_tokens": 16, "total_tokens": 36}, Usage(20, 16)),
        # cached prompt tokens are cache reads, not input
        (
            {
                "prompt_tokens": 20,
                "completion_tokens": 3,
                "prompt_tokens_details": {"cached_tokens": 5},
            },
            Usage(15, 3, 5, 0),
        ),
        (
            {"prompt_tokens": 20, "completion_tokens": 3, "prompt_tokens_details": None},
            Usage(20, 3),
        ),
        # anything but a non-negative int is unknown (0), never trusted
        ({"prompt_tokens": -1, "completion_tokens": 16}, Usage(0, 16)),
        ({"prompt_tokens": 20.0, "completion_tokens": True}, Usage(0, 0)),
        ({"completion_tokens": "7"}, Usage(0, 0)),
        ({}, Usage(0, 0)),
    ],
)
def test_openai_usage(reported: dict[str, Any], charged: Usage) -> None:
    assert usage_from_openai(reported) == charged


def test_no_usage_is_none() -> None:
    assert usage_from_openai(None) is None
    assert usage_from_openai([1, 2]) is None  # type: ignore[arg-type]
    assert usage_from_anthropic(None) is None


def test_anthropic_usage() -> None:
    reported = {
        "input_tokens": 12,
        "output_tokens": 30,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": -4,
    }
    assert usage_from_anthropic(reported) == Usage(12, 30, 100, 0)
