"""Answers, token counts, directives and the timing formula, without a server."""

from __future__ import annotations

import pytest

from gigawatt.simbackend import DEFAULT_MODELS, Directives, SimModel, count_tokens
from gigawatt.simbackend.directives import DirectiveError, parse_directives
from gigawatt.simbackend.text import CONTENT_WORDS, FUNCTION_WORDS, compose


def answer(prompt: str, **kwargs: object) -> tuple[str, ...]:
    options: dict[str, object] = {"min_tokens": 50, "max_tokens": 400, **kwargs}
    return compose(0, prompt, **options).tokens  # type: ignore[arg-type]


def test_every_word_form_is_one_o200k_token() -> None:
    for word in FUNCTION_WORDS + CONTENT_WORDS:
        for form in (f" {word}", word.capitalize(), f" {word.capitalize()}"):
            assert count_tokens([form]) == 1, form
    for punctuation in (",", ".", ".\n\n"):
        assert count_tokens([punctuation]) == 1


@pytest.mark.parametrize("seed", range(40))
def test_an_answer_counts_as_many_o200k_tokens_as_it_has_tokens(seed: int) -> None:
    composed = compose(seed, "prompt", min_tokens=1, max_tokens=600)
    assert count_tokens(["".join(composed.tokens)]) == len(composed.tokens)


def test_answers_depend_on_seed_and_prompt_only() -> None:
    first = compose(1, "a", min_tokens=50, max_tokens=400)
    assert compose(1, "a", min_tokens=50, max_tokens=400) == first
    assert compose(2, "a", min_tokens=50, max_tokens=400) != first
    assert compose(1, "b", min_tokens=50, max_tokens=400) != first


def test_lengths_stay_in_range_and_vary() -> None:
    lengths = {len(answer(f"prompt {i}")) for i in range(200)}
    assert min(lengths) >= 50 and max(lengths) <= 400
    assert len(lengths) > 50


def test_an_uncut_answer_ends_a_sentence() -> None:
    for i in range(100):
        tokens = answer(f"prompt {i}")
        assert tokens[-1] == "." and tokens[-2][-1].isalpha()
        assert tokens[0][0].isupper() and not tokens[0].startswith(" ")


def test_a_cap_cuts_the_same_text_short() -> None:
    full = compose(0, "p", min_tokens=50, max_tokens=400, exact_tokens=100)
    capped = compose(0, "p", min_tokens=50, max_tokens=400, exact_tokens=100, cap=30)
    assert capped.finish == "length" and full.finish == "end"
    assert capped.tokens == full.tokens[:30]
    assert compose(0, "p", min_tokens=50, max_tokens=400, exact_tokens=30, cap=30).finish == "end"


def test_a_stop_sequence_cuts_before_the_token_it_starts_in() -> None:
    full = compose(0, "p", min_tokens=50, max_tokens=400, exact_tokens=100).tokens
    word = full[20]
    cut = compose(0, "p", min_tokens=50, max_tokens=400, exact_tokens=100, stop=["zzz", word])
    assert cut.finish == "stop_sequence" and cut.stop_sequence == word
    text = "".join(cut.tokens)
    assert word not in text and "".join(full).startswith(text)
    assert len(cut.tokens) <= 20


def test_zero_tokens_is_an_empty_answer() -> None:
    assert compose(0, "p", min_tokens=50, max_tokens=400, exact_tokens=0).tokens == ()


def test_prompts_count_each_text_on_its_own_and_special_tokens_as_text() -> None:
    assert count_tokens([]) == 0
    assert count_tokens(["Hello world", "Hello world"]) == 2 * count_tokens(["Hello world"])
    assert count_tokens(["<|endoftext|>"]) > 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no directives here", Directives()),
        ("[[sim:status=500]]", Directives(status=500)),
        ("a [[sim:delay=1.5]] b", Directives(delay_s=1.5)),
        ("[[sim:tokens=12, drop_after=3]]", Directives(tokens=12, drop_after=3)),
        ("[[sim:tokens=1]] then [[sim:tokens=2 status=429]]", Directives(status=429, tokens=2)),
        ("[[sim:]]", Directives()),
        ("[sim:tokens=3]", Directives()),
    ],
)
def test_directives_are_parsed(text: str, expected: Directives) -> None:
    assert parse_directives(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "[[sim:token=3]]",
        "[[sim:tokens]]",
        "[[sim:tokens=-1]]",
        "[[sim:tokens=many]]",
        "[[sim:tokens=100001]]",
        "[[sim:status=200]]",
        "[[sim:status=600]]",
        "[[sim:delay=-1]]",
        "[[sim:delay=nan]]",
        "[[sim:delay=soon]]",
        "[[sim:drop_after=1.5]]",
    ],
)
def test_bad_directives_are_refused(text: str) -> None:
    with pytest.raises(DirectiveError):
        parse_directives(text)


def test_decode_rate_halves_at_knee_plus_one_streams() -> None:
    model = SimModel(decode_tokens_per_s=60, knee=32)
    assert model.tokens_per_s(1) == 60
    assert model.tokens_per_s(33) == 30
    assert 33 * model.tokens_per_s(33) == 990
    assert model.tokens_per_s(0) == 60
    assert model.first_token_s(1_000) == model.base_latency_s + 1_000 / 10_000


def test_the_default_models_get_slower_as_they_grow() -> None:
    small, medium, large = (DEFAULT_MODELS[n] for n in ("small", "medium", "large"))
    assert small.decode_tokens_per_s > medium.decode_tokens_per_s > large.decode_tokens_per_s
    assert small.first_token_s(1_000) < medium.first_token_s(1_000) < large.first_token_s(1_000)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_latency_s": -1},
        {"prefill_tokens_per_s": 0},
        {"decode_tokens_per_s": float("inf")},
        {"knee": float("nan")},
        {"min_output_tokens": 10, "max_output_tokens": 5},
        {"min_output_tokens": -1},
    ],
)
def test_sim_models_refuse_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SimModel(**kwargs)  # type: ignore[arg-type]
