"""Real-time behaviour: first-token latency, decode rate under load, and time scale 0.

These run at time scale 1 against a small, fast model and compare measurements with generous
margins, so a busy machine slows them without failing them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from gigawatt.simbackend import SimModel, run_sim_backend_in_thread

# Prefill of 20,000 tokens/s: an 8,000-token prompt adds 0.4 s to the first token. Decode of
# 200 tokens/s with a knee of 2: eight streams at once run at 200 / (1 + 7/2) = 44 tokens/s each.
TIMED = SimModel(base_latency_s=0.05, prefill_tokens_per_s=20_000, decode_tokens_per_s=200, knee=2)


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    with (
        run_sim_backend_in_thread(models={"timed": TIMED}, time_scale=1.0) as url,
        openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as client,
    ):
        yield client


def token_times(client: openai.OpenAI, prompt: str) -> tuple[float, list[float]]:
    """When the request was sent, and when each content token arrived (monotonic seconds)."""
    sent = time.monotonic()
    stream = client.chat.completions.create(
        model="timed", messages=[{"role": "user", "content": prompt}], stream=True
    )
    arrivals = [
        time.monotonic() for chunk in stream if chunk.choices and chunk.choices[0].delta.content
    ]
    return sent, arrivals


def rate(arrivals: list[float]) -> float:
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])


def test_first_token_latency_grows_with_the_prompt(client: openai.OpenAI) -> None:
    sent, arrivals = token_times(client, "Hi [[sim:tokens=2]]")
    short = arrivals[0] - sent
    sent, arrivals = token_times(client, "data " * 8_000 + "[[sim:tokens=2]]")
    long = arrivals[0] - sent
    assert 0.04 <= short < 0.25  # 0.05 s expected
    assert 0.25 < long - short < 0.9  # 0.4 s expected


def test_each_stream_slows_down_when_streams_share_the_model(client: openai.OpenAI) -> None:
    prompt = "Count [[sim:tokens=40]]"
    alone = rate(token_times(client, prompt)[1])
    start = threading.Barrier(8)

    def one() -> float:
        start.wait()
        return rate(token_times(client, prompt)[1])

    with ThreadPoolExecutor(8) as pool:
        shared = list(pool.map(lambda _: one(), range(8)))
    assert 120 < alone < 260  # 200 tokens/s expected
    assert sum(shared) / len(shared) < 0.5 * alone  # 44 tokens/s expected


def test_time_scale_zero_answers_at_once() -> None:
    with (
        run_sim_backend_in_thread(time_scale=0) as url,
        openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as client,
    ):
        started = time.monotonic()
        # At time scale 1 the large model would take over a minute for these tokens.
        completion = client.chat.completions.create(
            model="large", messages=[{"role": "user", "content": "[[sim:tokens=2000]]"}]
        )
        stream = client.chat.completions.create(
            model="large",
            messages=[{"role": "user", "content": "[[sim:tokens=2000]]"}],
            stream=True,
        )
        streamed = sum(1 for c in stream if c.choices and c.choices[0].delta.content)
        elapsed = time.monotonic() - started
    assert completion.usage is not None and completion.usage.completion_tokens == 2000
    assert streamed == 2000
    assert elapsed < 1.0
