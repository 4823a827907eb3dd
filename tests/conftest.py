"""Fixtures shared by every test package: a real Redis server for the tests that need one.

`bash scripts/test.sh` starts a server and sets GIGAWATT_TEST_REDIS_URL. Without it, Redis tests
skip on a workstation but fail in CI, where they must never be skipped silently.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import redis
from redis.cluster import RedisCluster

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


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A three-node Redis Cluster on loopback, made for this test session from `redis-server`."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        _redis_unavailable("redis-server and redis-cli are not installed")
    assert server is not None and cli is not None
    base = tmp_path_factory.mktemp("redis-cluster")
    ports = _cluster_ports(3)
    procs = []
    try:
        for port in ports:
            node = base / str(port)
            node.mkdir()
            procs.append(
                subprocess.Popen(
                    [
                        server,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(node),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in ports:
            _wait_for_ping(port)
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        _wait_for_cluster(ports[0])
        yield f"redis+cluster://127.0.0.1:{ports[0]}"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster bus port (port + 10000) is free and valid too."""
    ports: list[int] = []
    for port in random.sample(range(20_000, 50_000), 200):
        if _is_free(port) and _is_free(port + 10_000):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError("no free ports for a test Redis Cluster")


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_for_ping(port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as client:
                client.ping()
                return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _wait_for_cluster(port: int) -> None:
    deadline = time.monotonic() + 20
    with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as client:
        while client.cluster("info").get("cluster_state") != "ok":
            if time.monotonic() > deadline:
                raise RuntimeError("the test Redis Cluster never reached cluster_state:ok")
            time.sleep(0.1)


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("redis-cluster", marks=pytest.mark.redis),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each state URL a suite should pass on, emptied first: memory, SQLite, Redis, Cluster."""
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    if request.param == "redis-cluster":
        url = str(request.getfixturevalue("redis_cluster_url"))
        client = RedisCluster.from_url("redis" + url[len("redis+cluster") :])
        try:
            client.flushdb(target_nodes=RedisCluster.PRIMARIES)
        finally:
            client.close()
        return url
    return str(request.getfixturevalue("fresh_redis_url"))
