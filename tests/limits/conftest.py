"""One limiter suite, run against every store (`store_url`, from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from gigawatt.limits import Limiter, open_store
from gigawatt.policy.model import Policy

MakeLimiter = Callable[..., Limiter]


@pytest.fixture
def make_limiter(store_url: str) -> Iterator[MakeLimiter]:
    made: list[Limiter] = []

    def make(policy: Policy, **kwargs: object) -> Limiter:
        limiter = Limiter(policy, open_store(store_url), **kwargs)  # type: ignore[arg-type]
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        limiter.close()
