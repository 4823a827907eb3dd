"""What a simulated model says, and how its prompts are counted.

Answers are English-like sentences drawn from a small word list by a generator seeded with the
backend's seed and the prompt, so the same prompt gets the same answer. Every word in the list, in
each form it is used in (" word", "Word", " Word"), is a single `o200k_base` token, and so are
the punctuation tokens used between them; the generator emits exactly one such token at a time, so
an answer's `o200k_base` count equals the number of tokens streamed and reported in `usage`.
"""

from __future__ import annotations

import hashlib
import random
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Literal

with warnings.catch_warnings():
    # bpe_openai reads its bundled tables with importlib.resources.open_binary, deprecated since
    # Python 3.11. Loaded here, once, at import time: catch_warnings is not thread-safe, and a
    # first use could come from a server thread.
    warnings.filterwarnings("ignore", "open_binary is deprecated", DeprecationWarning)
    import bpe_openai  # type: ignore[import-untyped]

    _O200K = bpe_openai.get_encoding("o200k_base")

# Chosen so that " w", "W" and " W" are each one o200k_base token (a test checks this).
_FUNCTION_WORDS = """
    the a an of to and in that is for it as with was on be by this are at from or have not but
    which their they can more one all will has were been would there about other into than its
    these some also only when may most such many over after two each then even well could because
    should both between while through where under same without much every"""
_CONTENT_WORDS = """
    time new first used system model data power work world way years people use energy light
    heat load grid cost demand supply level rate plan limit window hour week day site cluster
    fleet token request user policy peak capacity network memory compute cooling water land price
    market region design test result value number point line form case group field process order
    range source signal service output input layer batch queue cache stream server client engine
    fast slow small short long high low early late full open clear simple common real local global
    strong deep wide broad stable useful certain recent further major minor general special typical
    often always never usually nearly almost already still again together however therefore
    instead perhaps rather around across along within during before since until against among
    behind beyond above below near far here make take give find keep show help run move turn hold
    bring begin start build grow serve share carry reach raise measure count track check choose
    follow allow expect improve reduce increase balance schedule estimate compare explain describe
    consider support include require provide become"""
FUNCTION_WORDS = tuple(_FUNCTION_WORDS.split())
CONTENT_WORDS = tuple(_CONTENT_WORDS.split())
COMMA, PERIOD, PARAGRAPH = ",", ".", ".\n\n"  # ".\n\n" is one o200k_base token
# Every word in each form it takes: mid-sentence, first of an answer or paragraph, first after ".".
_SPACED = tuple(f" {w}" for w in FUNCTION_WORDS + CONTENT_WORDS)
_OPENING = tuple(w.capitalize() for w in FUNCTION_WORDS + CONTENT_WORDS)
_CAPITALISED = tuple(f" {w}" for w in _OPENING)

Finish = Literal["end", "length", "stop_sequence"]


@dataclass(frozen=True, slots=True)
class Answer:
    """The tokens a request will stream, and why they end."""

    tokens: tuple[str, ...]
    finish: Finish
    stop_sequence: str | None = None


def count_tokens(texts: Iterable[str]) -> int:
    """The `o200k_base` token count of `texts`, each encoded on its own, special tokens as text.

    This is how the backend counts prompts: the text of every message and of the system prompt,
    with no per-message overhead, so a client that counts the same way gets the same number.
    """
    encode = _O200K.encode_ordinary
    return sum(len(encode(text)) for text in texts)


def compose(
    seed: int,
    prompt_key: str,
    *,
    min_tokens: int,
    max_tokens: int,
    exact_tokens: int | None = None,
    cap: int | None = None,
    stop: Sequence[str] = (),
) -> Answer:
    """The answer to one prompt: a seeded length (or `exact_tokens`), capped, cut at `stop`.

    The length is drawn before the words, so a cap or a stop sequence cuts the same text short
    rather than producing different text.
    """
    digest = hashlib.sha256(f"{seed}\x00{prompt_key}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    # Skewed towards short answers, as chat answers are: the mode sits a quarter of the way up.
    drawn = round(
        rng.triangular(min_tokens, max_tokens, min_tokens + (max_tokens - min_tokens) / 4)
    )
    length = drawn if exact_tokens is None else exact_tokens
    capped = cap is not None and cap < length
    tokens = list(islice(_words(rng), cap if capped and cap is not None else length))
    if not capped:
        _end_sentence(tokens)
    first_stop = min(_stops_in("".join(tokens), stop), default=None) if stop else None
    if first_stop is not None:
        position, sequence = first_stop
        return Answer(_before(tokens, position), "stop_sequence", sequence)
    return Answer(tuple(tokens), "length" if capped else "end")


def _words(rng: random.Random) -> Iterator[str]:
    """An endless run of sentences, a token at a time; every few sentences a paragraph break."""
    draw = rng.random
    starts = _OPENING
    while True:
        length = 5 + int(draw() * 14)
        yield starts[_pick(draw())]
        for position in range(1, length):
            yield _SPACED[_pick(draw())]
            if position < length - 1 and draw() < 0.08:
                yield COMMA
        if draw() < 0.25:
            # A paragraph break ends the sentence, and the next word starts a line: no space.
            yield PARAGRAPH
            starts = _OPENING
        else:
            yield PERIOD
            starts = _CAPITALISED


def _pick(draw: float) -> int:
    """A word's index: function words are fewer but take 40% of the draws, as in English."""
    if draw < 0.4:
        return int(draw * 2.5 * len(FUNCTION_WORDS))
    return len(FUNCTION_WORDS) + int((draw - 0.4) / 0.6 * len(CONTENT_WORDS))


def _end_sentence(tokens: list[str]) -> None:
    """Make an answer that ends on its own (not cut off) end with a full stop."""
    if len(tokens) < 2:
        return
    if not tokens[-2][-1].isalpha():
        # Punctuation never follows punctuation, so tokens[-3] is a word and this reads on.
        tokens[-2] = _SPACED[-1 - len(tokens) % len(CONTENT_WORDS)]
    tokens[-1] = PERIOD


def _stops_in(text: str, stop: Sequence[str]) -> Iterator[tuple[int, str]]:
    for sequence in stop:
        position = text.find(sequence)
        if position >= 0:
            yield position, sequence


def _before(tokens: Sequence[str], position: int) -> tuple[str, ...]:
    """The tokens that end at or before `position`: the one the stop sequence starts in is cut."""
    kept, offset = [], 0
    for token in tokens:
        offset += len(token)
        if offset > position:
            break
        kept.append(token)
    return tuple(kept)
