"""Queueing under load, announced degradation, state failures, and the small endpoints."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from typing import Any

import anthropic
import openai
import pytest

from gigawatt.limits import Decision, Limiter, Reservation, Usage

from .conftest import MakeGateway

SLOW = [{"role": "user", "content": "take your time [[sim:tokens=400]]"}]
QUICK = [{"role": "user", "content": "quick [[sim:tokens=5]]"}]


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def in_background(fn: Any) -> threading.Thread:
    thread = threading.Thread(target=fn)
    thread.start()
    return thread


def test_past_capacity_a_request_waits_then_gets_the_overload_error(
    make_gateway: MakeGateway,
) -> None:
    gw = make_gateway(time_scale=1.0, max_inflight=1, queue_timeout="300ms")
    busy = gw.key("pro", "busy")
    waiting = gw.key("tiny", "waiting")

    def occupy() -> None:
        with openai.OpenAI(base_url=gw.url + "/v1", api_key=busy, max_retries=0) as c:
            c.chat.completions.create(model="small", messages=SLOW, max_tokens=500)

    worker = in_background(occupy)
    try:
        threading.Event().wait(0.5)
        client = anthropic.Anthropic(base_url=gw.url, api_key=waiting, max_retries=0)
        with client, pytest.raises(anthropic.APIStatusError) as info:
            client.messages.create(model="small", max_tokens=10, messages=QUICK)
        assert info.value.status_code == 529
        assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
        assert info.value.response.headers["retry-after"] == "2"
        other = openai.OpenAI(base_url=gw.url + "/v1", api_key=waiting, max_retries=0)
        with other, pytest.raises(openai.APIStatusError) as refused:
            other.chat.completions.create(model="small", messages=QUICK)
        assert refused.value.status_code == 503
        # The overloaded requests were not charged.
        _, body = get(gw.url + "/v1/usage", {"x-api-key": waiting})
        assert json.loads(body)["buckets"][0]["remaining"] == 2
        # Both waited their 300 ms for a slot; the first found one free.
        assert queue_wait(gw.url) == (3, pytest.approx(0.6, abs=0.1))
    finally:
        worker.join()


def queue_wait(url: str) -> tuple[int, float]:
    """`gigawatt_queue_wait_seconds`: how many waits were timed, and their sum in seconds."""
    _, text = get(url + "/metrics")
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    count = lines["gigawatt_queue_wait_seconds_count"]
    return int(count), float(lines["gigawatt_queue_wait_seconds_sum"])


def test_degradation_is_announced_in_a_header(make_gateway: MakeGateway) -> None:
    gw = make_gateway(time_scale=1.0, max_inflight=2)
    busy, lite = gw.key("pro", "busy"), gw.key("lite", "lite")
    with openai.OpenAI(base_url=gw.url + "/v1", api_key=lite, max_retries=0) as client:
        calm = client.chat.completions.with_raw_response.create(
            model="small", messages=QUICK, max_tokens=100
        )
        assert "gigawatt-degraded" not in calm.headers

        def occupy() -> None:
            with openai.OpenAI(base_url=gw.url + "/v1", api_key=busy, max_retries=0) as c:
                c.chat.completions.create(model="small", messages=SLOW, max_tokens=500)

        worker = in_background(occupy)
        try:
            threading.Event().wait(0.5)
            raw = client.chat.completions.with_raw_response.create(
                model="small",
                messages=[{"role": "user", "content": "long [[sim:tokens=50]]"}],
                max_tokens=100,
            )
        finally:
            worker.join()
    assert raw.headers["gigawatt-degraded"] == "max_tokens=7"
    completion = raw.parse()
    assert completion.usage is not None and completion.usage.completion_tokens == 7
    assert completion.choices[0].finish_reason == "length"
    _, metrics = get(gw.url + "/metrics")
    assert 'gigawatt_degraded_total{model="small",plan="lite"} 1' in metrics


def test_a_failed_state_store_fails_closed_with_a_clear_503(make_gateway: MakeGateway) -> None:
    gw = make_gateway(limiter_state="redis://127.0.0.1:1/0")
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key(), max_retries=0)
    with client, pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="small", messages=QUICK)
    assert info.value.status_code == 503
    assert "state store unavailable" in info.value.message


def test_a_failed_state_store_can_fail_open_to_local_limits(make_gateway: MakeGateway) -> None:
    gw = make_gateway(limiter_state="redis://127.0.0.1:1/0", on_state_error="open", tiny_rpm=2)
    with openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key("tiny"), max_retries=0) as client:
        for _ in range(2):
            assert client.chat.completions.create(model="small", messages=QUICK).choices
        # Local limits still apply in this process.
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="small", messages=QUICK)
    _, metrics = get(gw.url + "/metrics")
    assert 'gigawatt_state_errors_total{call="admit"} 3' in metrics


def test_models_lists_what_the_plan_may_use_in_each_format(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    with openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key("tiny"), max_retries=0) as c:
        assert [m.id for m in c.models.list()] == ["small"]
    with anthropic.Anthropic(base_url=gw.url, api_key=gw.key("pro"), max_retries=0) as a:
        assert [m.id for m in a.models.list()] == ["small", "large"]


def test_a_prompt_spelling_a_special_token_is_counted_as_text(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    text = "what does <|endoftext|> mean? <|im_start|> [[sim:tokens=5]]"
    with openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key(), max_retries=0) as client:
        reply = client.chat.completions.create(
            model="small", messages=[{"role": "user", "content": text}]
        )
        assert reply.usage is not None and reply.usage.completion_tokens == 5
    with anthropic.Anthropic(base_url=gw.url, api_key=gw.key(), max_retries=0) as client:
        message = client.messages.create(
            model="small", max_tokens=50, messages=[{"role": "user", "content": text}]
        )
        assert message.usage.output_tokens == 5


def test_health_and_metrics(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    assert get(gw.url + "/healthz") == (200, '{"status": "ok"}')
    with openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key(), max_retries=0) as client:
        client.chat.completions.create(model="small", messages=QUICK)
    status, metrics = get(gw.url + "/metrics")
    assert status == 200
    assert 'gigawatt_requests_total{model="small",outcome="ok",plan="pro"} 1' in metrics
    assert "gigawatt_upstream_seconds_bucket" in metrics
    assert 'gigawatt_queue_depth{upstream="sim"} 0' in metrics
    assert "gigawatt_output_tokens_total 5" in metrics


@pytest.mark.parametrize("forward", [True, False])
def test_plan_priority_is_forwarded_only_to_upstreams_that_take_it(
    make_gateway: MakeGateway, forward: bool
) -> None:
    gw = make_gateway(forward_priority=forward)
    with openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key("pro"), max_retries=0) as client:
        client.chat.completions.create(model="small", messages=QUICK)
    _, body = get(gw.sim_url + "/sim/stats")
    # vLLM serves lower numbers first; the pro plan's priority 2 goes out as -2.
    assert json.loads(body)["last_priority"] == (-2 if forward else None)


class SlowToSettle(Limiter):
    """Writes real usage a while after being asked to, as a distant state store might."""

    delay_s = 2.0

    async def areconcile(self, reservation: Reservation, actual: Usage, now: float) -> bool:
        await asyncio.sleep(self.delay_s)
        return await super().areconcile(reservation, actual, now)


def test_the_answer_does_not_wait_for_its_usage_to_be_written(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    gw.gateway.limiter = SlowToSettle(gw.gateway.limiter.policy, gw.gateway.limiter.store)
    key = gw.key()
    with openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0) as client:
        started = time.monotonic()
        client.chat.completions.create(model="small", messages=QUICK, max_tokens=50)
        took = time.monotonic() - started
    assert took < SlowToSettle.delay_s / 2
    # The usage is written all the same: the reservation (50 output tokens) becomes the 5 used.
    reserved = gw.window_used(key)
    deadline = time.monotonic() + SlowToSettle.delay_s * 3
    while gw.window_used(key) == reserved and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gw.window_used(key) < reserved


class SlowToAdmit(Limiter):
    delay_s = 0.5

    async def aadmit(self, *args: Any, **kwargs: Any) -> Decision:
        await asyncio.sleep(self.delay_s)
        return await super().aadmit(*args, **kwargs)


def test_the_queue_wait_is_only_the_wait_for_a_slot(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    gw.gateway.limiter = SlowToAdmit(gw.gateway.limiter.policy, gw.gateway.limiter.store)
    with openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key(), max_retries=0) as client:
        client.chat.completions.create(model="small", messages=QUICK)
    count, seconds = queue_wait(gw.url)
    assert count == 1
    assert seconds < SlowToAdmit.delay_s / 5  # a free slot: the admit's half second not counted
