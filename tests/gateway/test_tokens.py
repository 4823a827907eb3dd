"""Counting a request's input tokens: exact text counts, remembered, within a bound."""

from __future__ import annotations

import pytest

from gigawatt.gateway import tokens


def test_a_text_counts_the_same_from_the_tokenizer_and_from_memory() -> None:
    text = "The quick brown fox jumps over the lazy dog, twice over. " * 3
    fresh = len(tokens._encoding().encode_ordinary(text))
    assert tokens.count_text(text) == fresh
    assert tokens.count_text(text) == fresh  # now remembered
    other = "A different text, counted on its own: 12345 67890."
    assert tokens.count_text(other) == len(tokens._encoding().encode_ordinary(other)) != fresh


def test_remembered_counts_stay_within_their_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "COUNTED_TEXTS", 8)
    monkeypatch.setattr(tokens, "_COUNTED", {})
    counts = [tokens.count_text(f"message number {i} " * (i % 5 + 1)) for i in range(50)]
    assert len(tokens._COUNTED) == 8
    assert counts == [tokens.count_text(f"message number {i} " * (i % 5 + 1)) for i in range(50)]


def test_no_prompt_text_is_kept() -> None:
    secret = "my password is hunter2, please remember it"
    tokens.count_text(secret)
    assert all(isinstance(key, tuple) and secret not in map(str, key) for key in tokens._COUNTED)


def test_a_huge_text_is_estimated_not_tokenized() -> None:
    text = "x" * (tokens.EXACT_CHARS + 4)
    assert tokens.count_text(text) == len(text) // 4
