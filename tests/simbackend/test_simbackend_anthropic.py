"""The Anthropic API of the simulated backend, through the official `anthropic` SDK."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterable, Iterator
from typing import Any

import anthropic
import pytest
from simbackend_helpers import get_json, post_raw, sim_stats

from gigawatt.simbackend import count_tokens


@pytest.fixture
def client(sim_url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=sim_url, api_key="x", max_retries=0) as client:
        yield client


def ask(text: str) -> list[anthropic.types.MessageParam]:
    return [{"role": "user", "content": text}]


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def drain(events: Iterable[Any]) -> tuple[list[Any], Exception | None]:
    """Every event until the stream ends or fails, and the failure if it did."""
    seen: list[Any] = []
    try:
        for event in events:
            seen.append(event)
    except Exception as exc:
        return seen, exc
    return seen, None


def test_a_message_reports_usage_that_matches_its_text(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="large", max_tokens=1024, system="Be brief.", messages=ask("Hello there")
    )
    assert message.id.startswith("msg_")
    assert message.type == "message" and message.role == "assistant"
    assert message.model == "large"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    [block] = message.content
    assert block.type == "text" and block.text.endswith(".")
    assert message.usage.output_tokens == count_tokens([block.text])
    assert message.usage.input_tokens == count_tokens(["Be brief.", "Hello there"])
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_read_input_tokens == 0


def test_system_and_content_blocks_are_read_as_text(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="small",
        max_tokens=100,
        system=[{"type": "text", "text": "Rule one."}, {"type": "text", "text": "Rule two."}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Part [[sim:tokens=4]]"}]},
        ],
    )
    assert message.usage.output_tokens == 4
    assert message.usage.input_tokens == count_tokens(
        ["Rule one.", "Rule two.", "Part [[sim:tokens=4]]"]
    )


def test_a_stream_sends_every_event_in_order(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="medium", max_tokens=1024, messages=ask("Stream [[sim:tokens=25]]")
    ) as stream:
        events, error = drain(stream)
        final = stream.get_final_message()
    assert error is None
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start"
    assert events[0].message.usage.output_tokens == 1
    assert events[0].message.usage.input_tokens == count_tokens(["Stream [[sim:tokens=25]]"])
    assert kinds[1] == "content_block_start"
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = [e.delta.text for e in events if e.type == "content_block_delta"]
    assert len(deltas) == 25
    assert events[-2].usage.output_tokens == 25 == final.usage.output_tokens
    assert count_tokens(["".join(deltas)]) == 25
    assert final.stop_reason == "end_turn"
    assert final.content[0].type == "text" and final.content[0].text == "".join(deltas)


def test_a_raw_stream_has_ping_and_event_lines(sim_url: str) -> None:
    body = (
        b'{"model":"small","max_tokens":3,"stream":true,"messages":[{"role":"user","content":"x"}]}'
    )
    request = urllib.request.Request(sim_url + "/v1/messages", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["request-id"].startswith("msg_")
        text = response.read().decode()
    names = [line.removeprefix("event: ") for line in text.splitlines() if line.startswith("event")]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_max_tokens_caps_the_answer(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="small", max_tokens=6, messages=ask("Talk [[sim:tokens=100]]")
    )
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 6
    with client.messages.stream(model="small", max_tokens=3, messages=ask("Talk")) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 3


def test_a_stop_sequence_is_reported(client: anthropic.Anthropic) -> None:
    full = client.messages.create(model="small", max_tokens=1024, messages=ask("Stops"))
    assert full.content[0].type == "text"
    stop = full.content[0].text.split()[3]
    cut = client.messages.create(
        model="small", max_tokens=1024, messages=ask("Stops"), stop_sequences=[stop]
    )
    assert cut.stop_reason == "stop_sequence" and cut.stop_sequence == stop
    assert cut.content[0].type == "text" and stop not in cut.content[0].text


def test_an_unknown_model_is_a_not_found_error(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="nope", max_tokens=10, messages=ask("Hi"))
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "The model `nope` does not exist"},
    }


@pytest.mark.parametrize(
    ("status", "error_class", "error_type"),
    [
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.InternalServerError, "overloaded_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
    ],
)
def test_a_status_directive_answers_with_that_status(
    client: anthropic.Anthropic, status: int, error_class: type[Exception], error_type: str
) -> None:
    with pytest.raises(error_class) as caught:
        client.messages.create(
            model="small", max_tokens=10, messages=ask(f"[[sim:status={status}]]")
        )
    assert isinstance(caught.value, anthropic.APIStatusError)
    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == error_type


HI = [{"role": "user", "content": "x"}]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "not valid JSON"),
        ({"model": "small", "messages": HI}, "max_tokens"),
        ({"model": "small", "max_tokens": 5}, "messages"),
        (
            {"model": "small", "max_tokens": 5, "messages": [{"role": "bot", "content": "x"}]},
            "role",
        ),
        (
            {"model": "small", "max_tokens": 5, "messages": [{"role": "user", "content": [{}]}]},
            "type",
        ),
        (
            {
                "model": "small",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": [{"type": "text"}]}],
            },
            "text",
        ),
        ({"model": "small", "max_tokens": 5, "messages": HI, "system": 7}, "system"),
        ({"model": "small", "max_tokens": 5, "messages": HI, "metadata": "u"}, "metadata"),
    ],
)
def test_malformed_requests_are_bad_requests_in_anthropic_format(
    sim_url: str, body: object, words: str
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, error = post_raw(sim_url + "/v1/messages", raw)
    assert status == 400
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert words in error["error"]["message"]


def test_drop_after_ends_the_stream_without_message_stop(client: anthropic.Anthropic) -> None:
    handler = Collect()
    logging.getLogger("uvicorn.error").addHandler(handler)
    try:
        with client.messages.stream(
            model="small", max_tokens=1024, messages=ask("[[sim:tokens=40, drop_after=4]]")
        ) as stream:
            events, error = drain(stream)
    finally:
        logging.getLogger("uvicorn.error").removeHandler(handler)
    kinds = [e.type for e in events]
    assert "message_stop" not in kinds
    assert error is not None
    assert sum(1 for k in kinds if k == "content_block_delta") == 4
    # Cutting the connection on purpose is not a server fault worth an error line.
    assert handler.records == []


def test_the_models_list_speaks_anthropic_to_anthropic(client: anthropic.Anthropic) -> None:
    assert [m.id for m in client.models.list()] == ["small", "medium", "large"]


def test_counters_follow_the_requests(fresh_sim_url: str) -> None:
    with anthropic.Anthropic(base_url=fresh_sim_url, api_key="x", max_retries=0) as client:
        client.messages.create(model="small", max_tokens=10, messages=ask("[[sim:tokens=3]]"))
        with pytest.raises(anthropic.InternalServerError):
            client.messages.create(model="small", max_tokens=10, messages=ask("[[sim:status=502]]"))
        with client.messages.stream(
            model="small", max_tokens=10, messages=ask("[[sim:drop_after=2]]")
        ) as stream:
            drain(stream)
    stats = sim_stats(fresh_sim_url)
    assert stats["requests"] == 3
    assert (stats["completed"], stats["errors"], stats["dropped"]) == (1, 1, 1)
    assert stats["output_tokens"] == 3 + 2
    assert stats["active"] == 0 and stats["cancelled"] == 0
    assert stats["models"]["small"]["requests"] == 3
    assert get_json(fresh_sim_url + "/healthz") == {"status": "ok"}
