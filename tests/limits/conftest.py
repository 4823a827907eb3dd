"""One limiter suite, run against every store: memory, SQLite and a real Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gigawatt.limits import Limiter, open_store
from gigawatt.policy.model import Policy

MakeLimiter = Callable[..., Limiter]


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("redis-cluster", marks=pytest.mark.redis),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    if request.param == "redis-cluster":
        # Accounts differ from test to test (each test makes its own), so no flush is needed...
        return _flushed_cluster(str(request.getfixturevalue("redis_cluster_url")))
    return str(request.getfixturevalue("fresh_redis_url"))


def _flushed_cluster(url: str) -> str:
    """...but tests reuse account names, so every node is emptied first."""
    from redis.cluster import RedisCluster

    client = RedisCluster.from_url("redis" + url[len("redis+cluster") :])
    try:
        client.flushdb(target_nodes=RedisCluster.PRIMARIES)
    finally:
        client.close()
    return url


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
