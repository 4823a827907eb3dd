"""Helpers for the simulated backend's tests: its counters, raw requests, waiting."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

# Fast enough for tests, slow enough that tokens still arrive one after another.
TEST_TIME_SCALE = 0.01


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def sim_stats(url: str) -> dict[str, Any]:
    stats: dict[str, Any] = get_json(url + "/sim/stats")
    return stats


def wait_for(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(0.005)


def post_raw(url: str, body: bytes) -> tuple[int, Any]:
    """POST bytes as they are (no SDK), returning the status and the parsed JSON body."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())
