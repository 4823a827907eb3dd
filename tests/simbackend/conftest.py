"""Simulated backends in background threads, for the tests of this package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from simbackend_helpers import TEST_TIME_SCALE

from gigawatt.simbackend import DEFAULT_MODELS, run_sim_backend_in_thread


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    """A backend serving only small, medium and large, shared by one test module."""
    with run_sim_backend_in_thread(models=DEFAULT_MODELS, time_scale=TEST_TIME_SCALE) as url:
        yield url


@pytest.fixture
def fresh_sim_url() -> Iterator[str]:
    """A backend of the test's own, for tests that read its counters."""
    with run_sim_backend_in_thread(models=DEFAULT_MODELS, time_scale=TEST_TIME_SCALE) as url:
        yield url
