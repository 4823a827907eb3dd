"""How fast a simulated model answers: its timing parameters and the pacing of its tokens.

A request waits `base_latency_s + prompt_tokens / prefill_tokens_per_s` for its first token, then
gets one token every `1 / rate` seconds, where the rate is re-read before every token from the
number of requests in flight on the same model:

    rate = decode_tokens_per_s / (1 + (in_flight - 1) / knee)

A lone request decodes at `decode_tokens_per_s`; with `knee + 1` in flight each runs at half that;
the model's total output approaches `decode_tokens_per_s * knee` as load grows, the way a batching
inference engine trades per-stream speed for throughput. Worked example (`medium`): one stream gets
60 tokens/s; 33 streams get 30 tokens/s each, 990 tokens/s together; the ceiling is 1,920 tokens/s.

The clock is the event loop's: this is a real server answering in real time. `time_scale`
multiplies every delay; 0 turns pacing off altogether.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class SimModel:
    """The timing and answer length of one simulated model."""

    base_latency_s: float = 0.2
    prefill_tokens_per_s: float = 10_000.0
    decode_tokens_per_s: float = 60.0
    knee: float = 32.0
    min_output_tokens: int = 50
    max_output_tokens: int = 400

    def __post_init__(self) -> None:
        if not (math.isfinite(self.base_latency_s) and self.base_latency_s >= 0):
            raise ValueError(f"base_latency_s must be a finite number >= 0: {self.base_latency_s}")
        for name in ("prefill_tokens_per_s", "decode_tokens_per_s", "knee"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0: {value}")
        if not 0 <= self.min_output_tokens <= self.max_output_tokens:
            raise ValueError(
                "need 0 <= min_output_tokens <= max_output_tokens: "
                f"{self.min_output_tokens}, {self.max_output_tokens}"
            )

    def first_token_s(self, prompt_tokens: int) -> float:
        """Seconds from arrival to the first token, at time scale 1."""
        return self.base_latency_s + prompt_tokens / self.prefill_tokens_per_s

    def tokens_per_s(self, in_flight: int) -> float:
        """One stream's decode rate while `in_flight` requests (itself included) share the model."""
        return self.decode_tokens_per_s / (1.0 + max(in_flight - 1, 0) / self.knee)


# Roughly an 8B, a 70B and a several-hundred-billion-parameter model served by a batching engine,
# as an API user sees them: time to first token includes the network and queueing, decode speeds
# are single-stream speeds, and knee * decode is the model's output ceiling on its replica.
DEFAULT_MODELS: Mapping[str, SimModel] = MappingProxyType(
    {
        "small": SimModel(
            base_latency_s=0.1, prefill_tokens_per_s=20_000, decode_tokens_per_s=150, knee=32
        ),
        "medium": SimModel(
            base_latency_s=0.2, prefill_tokens_per_s=10_000, decode_tokens_per_s=60, knee=32
        ),
        "large": SimModel(
            base_latency_s=0.4, prefill_tokens_per_s=4_000, decode_tokens_per_s=30, knee=48
        ),
    }
)
# Any other name, when the backend accepts every model name: the middle of the range.
FALLBACK_MODEL = SimModel()


class Lane:
    """One model's requests in flight, which set each other's decode rate."""

    __slots__ = ("in_flight", "model")

    def __init__(self, model: SimModel) -> None:
        self.model = model
        self.in_flight = 0

    def token_interval_s(self) -> float:
        return 1.0 / self.model.tokens_per_s(self.in_flight)


async def paced(
    tokens: Sequence[str], lane: Lane, *, first_token_s: float, time_scale: float
) -> AsyncGenerator[Sequence[str], None]:
    """Yield `tokens` in batches, each batch when its tokens fall due.

    Tokens are due on a schedule (first at `first_token_s`, then one interval apart, each interval
    read from the lane as it is reached) rather than one sleep per token: timers fire up to a
    millisecond late, and at small time scales per-token sleeps would run far slower than asked.
    Tokens that fall due together go out as one batch. The caller holds the lane slot.
    """
    if time_scale == 0:
        if tokens:
            yield tokens
        return
    if not tokens:
        await asyncio.sleep(first_token_s * time_scale)
        return
    loop = asyncio.get_running_loop()
    due = loop.time() + first_token_s * time_scale
    done = 0
    while done < len(tokens):
        now = loop.time()
        if due > now:
            await asyncio.sleep(due - now)
            now = max(loop.time(), due)
        end = done
        while end < len(tokens) and due <= now:
            end += 1
            due += lane.token_interval_s() * time_scale
        yield tokens[done:end]
        done = end
