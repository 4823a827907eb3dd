"""The Redis fixtures talk to a real server."""

from __future__ import annotations

import pytest
import redis

pytestmark = pytest.mark.redis


def test_set_get_round_trip(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url, socket_timeout=2) as client:
        try:
            assert client.set("gigawatt:test:round-trip", "42", ex=60)
            assert client.get("gigawatt:test:round-trip") == b"42"
        finally:
            client.delete("gigawatt:test:round-trip")


def test_fresh_redis_url_empties_the_database(
    redis_url: str, request: pytest.FixtureRequest
) -> None:
    with redis.Redis.from_url(redis_url, socket_timeout=2) as client:
        client.set("gigawatt:test:leftover", "1", ex=60)
        assert request.getfixturevalue("fresh_redis_url") == redis_url
        assert client.dbsize() == 0
