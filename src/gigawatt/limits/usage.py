"""Token counts of one request, and what they cost in credits."""

from __future__ import annotations

import math
from typing import NamedTuple

from gigawatt.policy.model import CreditWeights

_new_tuple = tuple.__new__


class _UsageFields(NamedTuple):
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


class Usage(_UsageFields):
    """Tokens of one request. Every count is a non-negative int; anything else is a ValueError.

    An immutable tuple rather than a frozen dataclass: two are made per request, and this is
    half the cost.
    """

    __slots__ = ()

    def __new__(
        cls,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> Usage:
        i, o, r, w = input_tokens, output_tokens, cache_read_tokens, cache_write_tokens
        # The common case is checked in one go.
        if not (
            type(i) is int
            and type(o) is int
            and type(r) is int
            and type(w) is int
            and i >= 0
            and o >= 0
            and r >= 0
            and w >= 0
        ):
            _check(i, o, r, w)
        return _new_tuple(cls, (i, o, r, w))

    @property
    def rate_input_tokens(self) -> int:
        """Tokens that count toward input tokens per minute: cache reads do not."""
        return self.input_tokens + self.cache_write_tokens


def _check(*counts: object) -> None:
    names = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    for name, value in zip(names, counts, strict=True):
        # bool is an int subclass; True tokens is a caller bug, not 1 token.
        if type(value) is not int:
            if isinstance(value, float) and math.isnan(value):
                raise ValueError(f"{name} is NaN")
            raise ValueError(f"{name} must be an int, got {type(value).__name__} {value!r}")
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")


def credits_of(weights: CreditWeights, usage: Usage) -> float:
    """Credits a request costs: `w_in*in + w_out*out + w_cr*cache_read + w_cw*cache_write`.

    >>> credits_of(CreditWeights(5, 25, 0.5, 6.25), Usage(1000, 200, 4000, 0))
    12000.0
    """
    return float(
        weights.input * usage.input_tokens
        + weights.output * usage.output_tokens
        + weights.cache_read * usage.cache_read_tokens
        + weights.cache_write * usage.cache_write_tokens
    )
