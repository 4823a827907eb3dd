"""A client that goes away cancels its request in the simulated backend at once."""

from __future__ import annotations

import time

import anthropic
import openai
import pytest
from simbackend_helpers import sim_stats, wait_for


def test_closing_an_openai_stream_cancels_generation(fresh_sim_url: str) -> None:
    with openai.OpenAI(base_url=fresh_sim_url + "/v1", api_key="x", max_retries=0) as client:
        stream = client.chat.completions.create(
            model="small",
            messages=[{"role": "user", "content": "Go on forever [[sim:tokens=100000]]"}],
            stream=True,
        )
        chunks = iter(stream)
        for _ in range(5):
            next(chunks)
        assert sim_stats(fresh_sim_url)["active"] == 1
        stream.close()
        wait_for(lambda: sim_stats(fresh_sim_url)["cancelled"] == 1)
    stats = sim_stats(fresh_sim_url)
    assert stats["active"] == 0 and stats["completed"] == 0
    assert stats["models"]["small"]["cancelled"] == 1
    # Generation stopped: no more tokens are counted after the cancellation.
    produced = stats["output_tokens"]
    assert 4 <= produced < 10_000
    time.sleep(0.1)
    assert sim_stats(fresh_sim_url)["output_tokens"] == produced


def test_closing_an_anthropic_stream_cancels_generation(fresh_sim_url: str) -> None:
    with (
        anthropic.Anthropic(base_url=fresh_sim_url, api_key="x", max_retries=0) as client,
        client.messages.stream(
            model="large",
            max_tokens=100_000,
            messages=[{"role": "user", "content": "[[sim:tokens=100000]]"}],
        ) as stream,
    ):
        for event in stream:
            if event.type == "content_block_delta":
                break
    wait_for(lambda: sim_stats(fresh_sim_url)["cancelled"] == 1)
    assert sim_stats(fresh_sim_url)["active"] == 0


def test_a_client_that_stops_waiting_for_a_whole_answer_cancels_it(fresh_sim_url: str) -> None:
    with (
        openai.OpenAI(
            base_url=fresh_sim_url + "/v1", api_key="x", max_retries=0, timeout=0.3
        ) as client,
        pytest.raises(openai.APITimeoutError),
    ):
        client.chat.completions.create(
            model="small", messages=[{"role": "user", "content": "[[sim:tokens=100000]]"}]
        )
    wait_for(lambda: sim_stats(fresh_sim_url)["cancelled"] == 1)
    assert sim_stats(fresh_sim_url)["completed"] == 0


def test_delay_is_not_scaled_and_a_timeout_during_it_cancels(fresh_sim_url: str) -> None:
    # The backend runs at a time scale of 0.01, yet a 5 s delay outlasts a 0.3 s client timeout.
    started = time.monotonic()
    with (
        anthropic.Anthropic(
            base_url=fresh_sim_url, api_key="x", max_retries=0, timeout=0.3
        ) as client,
        pytest.raises(anthropic.APITimeoutError),
    ):
        client.messages.create(
            model="small", max_tokens=10, messages=[{"role": "user", "content": "[[sim:delay=5]]"}]
        )
    assert time.monotonic() - started < 2
    wait_for(lambda: sim_stats(fresh_sim_url)["cancelled"] == 1)
    stats = sim_stats(fresh_sim_url)
    assert stats["active"] == 0 and stats["output_tokens"] == 0


def test_a_short_delay_then_the_answer(fresh_sim_url: str) -> None:
    with openai.OpenAI(base_url=fresh_sim_url + "/v1", api_key="x", max_retries=0) as client:
        started = time.monotonic()
        completion = client.chat.completions.create(
            model="small", messages=[{"role": "user", "content": "[[sim:delay=0.3 tokens=2]]"}]
        )
        elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 1.5
    assert completion.usage is not None and completion.usage.completion_tokens == 2
