"""The OpenAI API of the simulated backend, through the official `openai` SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
from simbackend_helpers import get_json, post_raw, sim_stats

from gigawatt.simbackend import count_tokens


@pytest.fixture
def client(sim_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=sim_url + "/v1", api_key="x", max_retries=0) as client:
        yield client


def ask(text: str) -> list[openai.types.chat.ChatCompletionMessageParam]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def test_a_completion_reports_usage_that_matches_its_text(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="small", messages=ask("Hello there"))
    choice = completion.choices[0]
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "small"
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "stop"
    text = choice.message.content
    assert text and text.endswith(".")
    usage = completion.usage
    assert usage is not None
    assert 50 <= usage.completion_tokens <= 400
    assert usage.completion_tokens == count_tokens([text])
    assert usage.prompt_tokens == count_tokens(["Be brief.", "Hello there"])
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_the_same_prompt_gets_the_same_answer(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model="small", messages=ask("Same again"))
    second = client.chat.completions.create(model="small", messages=ask("Same again"))
    other = client.chat.completions.create(model="small", messages=ask("Something else"))
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.choices[0].message.content != other.choices[0].message.content


def test_a_stream_sends_role_deltas_finish_and_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="medium",
        messages=ask("Stream please [[sim:tokens=30]]"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [d for c in chunks[1:] if c.choices and (d := c.choices[0].delta.content)]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens == len(deltas) == 30
    assert count_tokens(["".join(deltas)]) == 30
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


def test_a_stream_without_include_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="small", messages=ask("[[sim:tokens=5]]"), stream=True
    )
    chunks = list(stream)
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_max_tokens_caps_the_answer_with_length(client: openai.OpenAI) -> None:
    legacy = client.chat.completions.create(
        model="small", messages=ask("Talk a lot [[sim:tokens=200]]"), max_tokens=7
    )
    current = client.chat.completions.create(
        model="small", messages=ask("Talk a lot [[sim:tokens=200]]"), max_completion_tokens=8
    )
    assert legacy.choices[0].finish_reason == current.choices[0].finish_reason == "length"
    assert legacy.usage is not None and legacy.usage.completion_tokens == 7
    assert current.usage is not None and current.usage.completion_tokens == 8


def test_a_capped_stream_ends_with_length(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="small", messages=ask("Hello"), max_tokens=4, stream=True
    )
    chunks = list(stream)
    assert sum(1 for c in chunks if c.choices[0].delta.content) == 4
    assert chunks[-1].choices[0].finish_reason == "length"


def test_a_stop_sequence_ends_the_answer_before_it(client: openai.OpenAI) -> None:
    full = client.chat.completions.create(model="small", messages=ask("Stop test"))
    text = full.choices[0].message.content
    assert text is not None
    stop = text.split()[5]
    cut = client.chat.completions.create(model="small", messages=ask("Stop test"), stop=[stop])
    assert cut.choices[0].finish_reason == "stop"
    cut_text = cut.choices[0].message.content
    assert cut_text is not None and stop not in cut_text and text.startswith(cut_text)


def test_an_unknown_model_is_a_not_found_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="nope", messages=ask("Hi"))
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "model" and error["code"] == "model_not_found"


def test_a_status_directive_answers_with_that_status(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="small", messages=ask("[[sim:status=500]]"))
    assert caught.value.status_code == 500
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="small", messages=ask("[[sim:status=429]]"))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="small", messages=ask("[[sim:status=503]]"), stream=True
        )


def test_a_misspelt_directive_is_a_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="tokns"):
        client.chat.completions.create(model="small", messages=ask("[[sim:tokns=3]]"))


def test_only_the_last_user_message_carries_directives(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="small",
        messages=[
            {"role": "user", "content": "[[sim:status=500]]"},
            {"role": "assistant", "content": "Fine."},
            {"role": "user", "content": [{"type": "text", "text": "Again [[sim:tokens=3]]"}]},
        ],
    )
    assert completion.usage is not None and completion.usage.completion_tokens == 3


HI = [{"role": "user", "content": "x"}]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "not valid JSON"),
        ([1, 2], "JSON object"),
        ({"model": "small"}, "messages"),
        ({"model": "small", "messages": [], "max_tokens": 5}, "messages"),
        ({"messages": HI}, "model"),
        ({"model": "small", "messages": [{"role": "user", "content": 5}]}, "content"),
        ({"model": "small", "messages": HI, "max_tokens": 0}, "max_tokens"),
        ({"model": "small", "messages": HI, "stream": 1}, "stream"),
        ({"model": "small", "messages": HI, "stop": [""]}, "stop"),
        ({"model": "small", "messages": HI, "n": 2}, "n"),
    ],
)
def test_malformed_requests_are_bad_requests_in_openai_format(
    sim_url: str, body: object, words: str
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, error = post_raw(sim_url + "/v1/chat/completions", raw)
    assert status == 400
    assert set(error["error"]) == {"message", "type", "param", "code"}
    assert error["error"]["type"] == "invalid_request_error"
    assert words in error["error"]["message"]


def test_drop_after_cuts_the_stream_off(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="small", messages=ask("[[sim:tokens=50 drop_after=5]]"), stream=True
    )
    contents: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                contents.append(chunk.choices[0].delta.content)
    assert len(contents) == 5


def test_drop_after_cuts_a_whole_answer_off(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="small", messages=ask("[[sim:drop_after=2]]"))


def test_priority_is_recorded(fresh_sim_url: str) -> None:
    with openai.OpenAI(base_url=fresh_sim_url + "/v1", api_key="x", max_retries=0) as client:
        client.chat.completions.create(
            model="large", messages=ask("[[sim:tokens=1]]"), extra_body={"priority": 3}, user="u1"
        )
    stats = sim_stats(fresh_sim_url)
    assert stats["last_priority"] == 3
    assert stats["models"]["large"]["last_priority"] == 3
    assert stats["completed"] == 1 and stats["output_tokens"] == 1


def test_models_lists_the_served_models(client: openai.OpenAI, sim_url: str) -> None:
    assert [m.id for m in client.models.list()] == ["small", "medium", "large"]
    assert get_json(sim_url + "/healthz") == {"status": "ok"}
