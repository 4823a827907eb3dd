"""Upstream answers reach the client as plain JSON, whatever the upstream would compress."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

from gigawatt.gateway.serve import build_gateway
from gigawatt.policy.load import parse_policy

from .conftest import POLICY, serve

ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "small",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
}


@pytest.fixture
def gzipping_upstream() -> Iterator[tuple[str, list[str]]]:
    """An OpenAI-style upstream that gzips every answer, asked or not; it records what each
    request's accept-encoding said."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            asked.append(self.headers.get("accept-encoding", ""))
            body = gzip.compress(json.dumps(ANSWER).encode())
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-encoding", "gzip")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def test_a_compressed_upstream_answer_reaches_the_client_as_plain_json(
    gzipping_upstream: tuple[str, list[str]],
) -> None:
    upstream_url, asked = gzipping_upstream
    policy = parse_policy(
        POLICY.format(
            state="memory://",
            protocol="openai",
            sim_url=upstream_url,
            tiny_rpm=2,
            max_inflight=8,
            timeout="5s",
            queue_timeout="1s",
            on_state_error="closed",
            forward_priority="false",
        )
    )
    gateway = build_gateway(policy)
    with serve(gateway) as url:
        _, key = gateway.keys.store.create("alice", "pro", 0.0)
        with openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0) as client:
            raw = client.chat.completions.with_raw_response.create(
                model="small", messages=[{"role": "user", "content": "hello"}]
            )
    assert raw.status_code == 200
    assert "content-encoding" not in raw.headers
    assert raw.parse().choices[0].message.content == "hi"
    assert asked == ["identity"]
    # The usage was read from the decompressed answer: 9 input and 1 output token reconciled.
    metrics = gateway.metrics.render()
    assert "gigawatt_input_tokens_total 9\n" in metrics
    assert "gigawatt_output_tokens_total 1\n" in metrics
