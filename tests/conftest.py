"""Fixtures shared by every test package: a real Redis server for the tests that need one.

`bash scripts/test.sh` starts a server and sets GIGAWATT_TEST_REDIS_URL. Without it, Redis tests
skip on a workstation but fail in CI, where they must never be skipped silently.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest
import redis

REDIS_URL_ENV = "GIGAWATT_TEST_REDIS_URL"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _redis_unavailable(reason: str) -> NoReturn:
    if _in_ci():
        pytest.fail(f"{reason} (CI is set: Redis tests must not be skipped)", pytrace=False)
    pytest.skip(f"{reason} (`bash scripts/test.sh` starts a server)")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of a reachable Redis database, from GIGAWATT_TEST_REDIS_URL."""
    url = os.environ.get(REDIS_URL_ENV, "")
    if not url:
        _redis_unavailable(f"{REDIS_URL_ENV} is not set")
    try:
        with redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) as client:
            client.ping()
    except (redis.RedisError, ValueError) as exc:
        _redis_unavailable(f"Redis at {url} is unreachable: {exc}")
    return url


@pytest.fixture
def fresh_redis_url(redis_url: str) -> str:
    """`redis_url`, with its database emptied (FLUSHDB) before the test."""
    with redis.Redis.from_url(redis_url, socket_timeout=2) as client:
        client.flushdb()
    return redis_url
