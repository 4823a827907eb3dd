"""The official SDKs, unchanged, through the gateway: success, refusals, retries, translation."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import anthropic
import openai
import pytest
from redis.cluster import RedisCluster

from .conftest import MakeGateway


def get_json(url: str, headers: dict[str, str]) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as response:
        return json.load(response)


HELLO = [{"role": "user", "content": "Say hello [[sim:tokens=12]]"}]


def oai(url: str, key: str, max_retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=max_retries)


def ant(url: str, key: str, max_retries: int = 0) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=key, max_retries=max_retries)


@pytest.mark.parametrize("protocol", ["sim", "openai", "anthropic"])
def test_openai_sdk_gets_answers_and_limit_headers(
    make_gateway: MakeGateway, protocol: str
) -> None:
    gw = make_gateway(protocol=protocol)
    with oai(gw.url, gw.key()) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="small", messages=HELLO, max_tokens=50
        )
        completion = raw.parse()
        assert completion.choices[0].message.content
        assert completion.usage is not None and completion.usage.completion_tokens == 12
        assert raw.headers["x-ratelimit-limit-requests"] == "600"
        assert raw.headers["x-ratelimit-remaining-requests"] == "599"
        window = raw.headers["gigawatt-window-session-5h"]
        assert window.startswith("limit=10000000; remaining=") and "; reset=" in window
        # OpenAI's token headers name the tighter token bucket (output: 100,000 a minute);
        # each token bucket is also given in full in gigawatt's own header.
        assert raw.headers["x-ratelimit-limit-tokens"] == "100000"
        assert int(raw.headers["x-ratelimit-remaining-tokens"]) < 100000
        assert raw.headers["gigawatt-bucket-input-tokens"].startswith("limit=1000000; remaining=")
        output_bucket = raw.headers["gigawatt-bucket-output-tokens"]
        assert output_bucket.startswith("limit=100000; remaining=") and "; reset=" in output_bucket
        assert "x-ratelimit-limit-input-tokens" not in raw.headers
        chunks = list(
            client.chat.completions.create(
                model="small",
                messages=HELLO,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12


@pytest.mark.parametrize("protocol", ["sim", "openai", "anthropic"])
def test_anthropic_sdk_gets_answers_and_limit_headers(
    make_gateway: MakeGateway, protocol: str
) -> None:
    gw = make_gateway(protocol=protocol)
    with ant(gw.url, gw.key()) as client:
        raw = client.messages.with_raw_response.create(model="small", max_tokens=50, messages=HELLO)
        message = raw.parse()
        assert message.content[0].type == "text" and message.content[0].text
        assert message.usage.output_tokens == 12
        assert raw.headers["anthropic-ratelimit-requests-limit"] == "600"
        assert raw.headers["anthropic-ratelimit-unified-5h-status"] == "allowed"
        with client.messages.stream(model="small", max_tokens=50, messages=HELLO) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text and final.usage.output_tokens == 12


def test_refusals_are_each_sdks_rate_limit_error(make_gateway: MakeGateway) -> None:
    gw = make_gateway(tiny_rpm=2)
    key = gw.key("tiny")
    with oai(gw.url, key) as client:
        for _ in range(2):
            client.chat.completions.create(model="small", messages=HELLO)
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model="small", messages=HELLO)
    response = info.value.response
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    body = response.json()
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert "requests-per-minute limit for small reached" in body["error"]["message"]
    with ant(gw.url, key) as client, pytest.raises(anthropic.RateLimitError) as refused:
        client.messages.create(model="small", max_tokens=20, messages=HELLO)
    assert refused.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert refused.value.response.headers["anthropic-ratelimit-requests-remaining"] == "0"


def test_an_sdk_retry_after_retry_after_succeeds(make_gateway: MakeGateway) -> None:
    gw = make_gateway(tiny_rpm=60)  # one request a second, burst of 60
    key = gw.key("tiny")
    with oai(gw.url, key) as client:
        for _ in range(60):
            client.chat.completions.create(model="small", messages=HELLO)
    with oai(gw.url, key, max_retries=2) as client:
        completion = client.chat.completions.create(model="small", messages=HELLO)
    assert completion.choices[0].message.content


def test_usage_endpoint_shows_only_the_callers_own_account(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    alice, bob = gw.key(account="alice"), gw.key(account="bob")
    with oai(gw.url, alice) as client:
        client.chat.completions.create(model="small", messages=HELLO)
    mine = get_json(gw.url + "/v1/usage", {"authorization": f"Bearer {alice}"})
    theirs = get_json(gw.url + "/v1/usage", {"x-api-key": bob})
    assert mine["account"] == "alice" and theirs["account"] == "bob"
    assert mine["windows"][0]["used"] > 0
    assert theirs["windows"][0]["used"] == 0


@pytest.mark.redis
def test_the_gateway_on_redis_state(make_gateway: MakeGateway, fresh_redis_url: str) -> None:
    gw = make_gateway(state=fresh_redis_url, tiny_rpm=3)
    key = gw.key("tiny")
    with oai(gw.url, key) as client:
        for _ in range(3):
            stream = client.chat.completions.create(model="small", messages=HELLO, stream=True)
            assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="small", messages=HELLO)
    usage = get_json(gw.url + "/v1/usage", {"x-api-key": key})
    assert usage["buckets"][0]["remaining"] == 0


@pytest.mark.redis
def test_the_gateway_on_redis_cluster_state(
    make_gateway: MakeGateway, redis_cluster_url: str
) -> None:
    # Every limiter call goes through redis-py's asyncio cluster client on the gateway's loop.
    cluster = RedisCluster.from_url("redis" + redis_cluster_url[len("redis+cluster") :])
    try:
        cluster.flushdb(target_nodes=RedisCluster.PRIMARIES)
    finally:
        cluster.close()
    gw = make_gateway(state=redis_cluster_url, tiny_rpm=2)
    key = gw.key("tiny")
    with anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0) as client:
        for _ in range(2):
            message = client.messages.create(model="small", max_tokens=20, messages=HELLO)
            assert message.usage.output_tokens > 0
        with pytest.raises(anthropic.RateLimitError):
            client.messages.create(model="small", max_tokens=20, messages=HELLO)
    usage = get_json(gw.url + "/v1/usage", {"x-api-key": key})
    assert usage["buckets"][0]["remaining"] == 0
