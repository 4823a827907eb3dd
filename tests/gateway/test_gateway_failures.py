"""Bad input, upstream failures and disconnects: the right status, in the caller's format."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from typing import Any

import anthropic
import openai
import pytest

from .conftest import MakeGateway


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


GOOD_OPENAI = {"model": "small", "messages": [{"role": "user", "content": "hi"}]}
GOOD_ANTHROPIC = {**GOOD_OPENAI, "max_tokens": 10}


@pytest.mark.parametrize(
    "body, status, param",
    [
        (b"{not json", 400, None),
        (b"[1, 2]", 400, None),
        (json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(), 400, "model"),
        (json.dumps({"model": "small"}).encode(), 400, "messages"),
        (json.dumps({"model": "small", "messages": "hi"}).encode(), 400, "messages"),
        (json.dumps({**GOOD_OPENAI, "max_tokens": "ten"}).encode(), 400, "max_tokens"),
        (json.dumps({**GOOD_OPENAI, "max_tokens": True}).encode(), 400, "max_tokens"),
        (json.dumps({**GOOD_OPENAI, "stream": "yes"}).encode(), 400, "stream"),
        (json.dumps({**GOOD_OPENAI, "model": "gpt-9"}).encode(), 404, "model"),
        (json.dumps({**GOOD_OPENAI, "model": "large"}).encode(), 403, "model"),
        (json.dumps({**GOOD_OPENAI, "junk": "x" * 30_000}).encode(), 413, None),
    ],
)
def test_bad_openai_requests(
    make_gateway: MakeGateway, body: bytes, status: int, param: str | None
) -> None:
    gw = make_gateway()
    key = gw.key("tiny")
    got, _, error = post(gw.url + "/v1/chat/completions", body, {"authorization": f"Bearer {key}"})
    assert got == status
    assert set(error["error"]) >= {"message", "type", "code"} and error["error"]["message"]
    assert error["error"]["param"] == param


@pytest.mark.parametrize(
    "body, status",
    [
        (b"{not json", 400),
        (json.dumps(GOOD_OPENAI).encode(), 400),  # no max_tokens
        (json.dumps({**GOOD_ANTHROPIC, "max_tokens": 0}).encode(), 400),
        (json.dumps({**GOOD_ANTHROPIC, "system": 5}).encode(), 400),
        (json.dumps({**GOOD_ANTHROPIC, "model": "claude-9"}).encode(), 404),
        (json.dumps({**GOOD_ANTHROPIC, "junk": "x" * 30_000}).encode(), 413),
    ],
)
def test_bad_anthropic_requests(make_gateway: MakeGateway, body: bytes, status: int) -> None:
    gw = make_gateway()
    got, _, error = post(gw.url + "/v1/messages", body, {"x-api-key": gw.key()})
    assert got == status
    assert error["type"] == "error" and error["error"]["message"]
    expected = {400: "invalid_request_error", 404: "not_found_error", 413: "request_too_large"}
    assert error["error"]["type"] == expected[status]


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "gw-wrong"}, {"authorization": "Bearer"}])
def test_missing_or_wrong_keys_are_401_in_both_formats(
    make_gateway: MakeGateway, headers: dict[str, str]
) -> None:
    gw = make_gateway()
    status, _, error = post(
        gw.url + "/v1/chat/completions", json.dumps(GOOD_OPENAI).encode(), headers
    )
    assert status == 401 and error["error"]["code"] == "invalid_api_key"
    status, _, error = post(gw.url + "/v1/messages", json.dumps(GOOD_ANTHROPIC).encode(), headers)
    assert status == 401 and error["error"]["type"] == "authentication_error"


def test_an_unknown_path_is_404(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    status, _, error = post(gw.url + "/v1/nothing", b"{}", {})
    assert status == 404 and error["error"]["message"].startswith("no such endpoint")


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_500_is_a_502_and_releases_the_reservation(
    make_gateway: MakeGateway, stream: bool
) -> None:
    gw = make_gateway()
    key = gw.key()
    failing = [{"role": "user", "content": "boom [[sim:status=500]]"}]
    with openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0) as client:
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="small", messages=failing, stream=stream)
        assert info.value.status_code == 502
    with anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0) as client:
        with pytest.raises(anthropic.APIStatusError) as refused:
            client.messages.create(model="small", max_tokens=10, messages=failing, stream=stream)
        assert refused.value.status_code == 502
        assert refused.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    assert gw.window_used(key) == 0.0


def test_an_upstream_timeout_is_a_504_and_releases_the_reservation(
    make_gateway: MakeGateway,
) -> None:
    gw = make_gateway(timeout="1s")
    key = gw.key()
    slow = [{"role": "user", "content": "wait [[sim:delay=3]]"}]
    started = time.monotonic()
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)
    with client, pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="small", messages=slow)
    assert info.value.status_code == 504
    assert time.monotonic() - started < 2.5
    assert gw.window_used(key) == 0.0
    other = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
    with other, pytest.raises(anthropic.APIStatusError) as refused:
        other.messages.create(model="small", max_tokens=10, messages=slow)
    assert refused.value.status_code == 504
    assert gw.window_used(key) == 0.0


def test_a_client_that_hangs_up_mid_stream_is_charged_for_what_was_produced(
    make_gateway: MakeGateway,
) -> None:
    gw = make_gateway(time_scale=1.0)  # "small" streams ~150 tokens/s: 2,000 take 13 s
    key = gw.key()
    body = json.dumps(
        {
            "model": "small",
            "max_tokens": 4000,
            "stream": True,
            "messages": [{"role": "user", "content": "long [[sim:tokens=2000]]"}],
        }
    ).encode()
    host, port = gw.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as conn:
        conn.sendall(
            b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + f"x-api-key: {key}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        received = b""
        while received.count(b"event: content_block_delta") < 20:
            received += conn.recv(65536)
    # Wait for the gateway to notice and settle.
    deadline = time.monotonic() + 5
    reserved = gw.window_used(key)
    while gw.window_used(key) == reserved and time.monotonic() < deadline:
        time.sleep(0.05)
    used = gw.window_used(key)
    stats = json.load(urllib.request.urlopen(gw.sim_url + "/sim/stats"))
    assert stats["cancelled"] >= 1
    # Charged input plus the tokens produced before the hang-up: more than 20, far below 2,000.
    assert 5 * 20 < used < 5 * 1000


def test_upstream_failures_are_counted_in_metrics(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    failing = [{"role": "user", "content": "boom [[sim:status=500]]"}]
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key(), max_retries=0)
    with client, pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="small", messages=failing)
    with urllib.request.urlopen(gw.url + "/metrics") as response:
        metrics = response.read().decode()
    assert 'gigawatt_requests_total{model="small",outcome="upstream_error",plan="pro"} 1' in metrics
