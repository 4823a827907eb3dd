"""One generation request from body to last byte, whichever API it came in through.

An API module (a `Dialect`) turns its JSON into a `SimRequest` and formats the answer; everything
else lives here once: the model's lane, directives, pacing, cancellation, drops and the counters.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from gigawatt.simbackend.directives import DirectiveError, Directives, parse_directives
from gigawatt.simbackend.http import (
    SSE_HEADERS,
    BodyTooLarge,
    dump_json,
    read_body,
    send_json,
    until_disconnect,
)
from gigawatt.simbackend.stats import Counters, SimStats
from gigawatt.simbackend.text import Answer, compose, count_tokens
from gigawatt.simbackend.timing import FALLBACK_MODEL, Lane, SimModel, paced
from gigawatt.simbackend.types import Receive, Scope, Send

# Set in the task of a request whose connection is closed on purpose (a drop_after directive), so
# the server's complaint about the unfinished response can be told apart from a real fault.
DELIBERATE_DROP: ContextVar[bool] = ContextVar("gigawatt_sim_deliberate_drop", default=False)

Outcome = Literal["completed", "dropped", "error"]


class RequestError(Exception):
    """A request the backend answers with an error status, in the caller's API format."""

    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


@dataclass(frozen=True, slots=True)
class SimRequest:
    """What the backend needs from a request, whichever API it used."""

    model: str
    prompt_texts: tuple[str, ...]  # every text the model reads: system prompt and messages
    last_user_text: str  # where directives are read
    max_tokens: int | None
    stream: bool
    stop: tuple[str, ...] = ()
    include_usage: bool = False
    priority: int | None = None


class Reply(Protocol):
    """One answer formatted for one API."""

    id: str

    def head(self) -> bytes: ...  # stream events before the first token

    def chunk(self, tokens: Sequence[str]) -> bytes: ...  # stream events for these tokens

    def tail(self) -> bytes: ...  # stream events after the last token

    def body(self) -> dict[str, Any]: ...  # the answer in one piece


class Dialect(Protocol):
    """One provider's HTTP API: its request format, answer format and error format."""

    request_id_header: bytes

    def parse(self, body: Any) -> SimRequest: ...

    def error_body(self, error: RequestError) -> dict[str, Any]: ...

    def reply(self, request: SimRequest, answer: Answer, prompt_tokens: int) -> Reply: ...


class Backend:
    """The simulated models, their lanes and counters; `handle` serves one generation request."""

    def __init__(
        self, models: Mapping[str, SimModel], *, accept_any: bool, time_scale: float, seed: int
    ) -> None:
        self.accept_any = accept_any  # serve names not in `models`, with FALLBACK_MODEL's timing
        self.models = dict(models)
        self.time_scale = time_scale
        self.seed = seed
        self.stats = SimStats()
        self._lanes: dict[str, Lane] = {}

    def lane(self, name: str) -> Lane | None:
        lane = self._lanes.get(name)
        if lane is None:
            model = self.models.get(name, FALLBACK_MODEL if self.accept_any else None)
            if model is None:
                return None
            lane = self._lanes[name] = Lane(model)
        return lane

    async def handle(self, dialect: Dialect, scope: Scope, receive: Receive, send: Send) -> None:
        total = self.stats.total
        total.requests += 1
        try:
            body = await read_body(receive)
        except BodyTooLarge:
            await _send_error(dialect, send, (total,), RequestError(413, "request body too large"))
            return
        if body is None:
            total.cancelled += 1
            return
        try:
            request = dialect.parse(_json_object(body))
        except RequestError as exc:
            await _send_error(dialect, send, (total,), exc)
            return
        lane = self.lane(request.model)
        if lane is None:
            message = f"The model `{request.model}` does not exist"
            error = RequestError(404, message, param="model", code="model_not_found")
            await _send_error(dialect, send, (total,), error)
            return
        counters = (total, self.stats.model(request.model))
        counters[1].requests += 1
        if request.priority is not None:
            for c in counters:
                c.last_priority = request.priority
        try:
            directives = parse_directives(request.last_user_text)
        except DirectiveError as exc:
            await _send_error(dialect, send, counters, RequestError(400, str(exc)))
            return
        work = self._respond(dialect, send, request, lane, directives, counters)
        if self.time_scale == 0 and directives.delay_s == 0:
            # Nothing will sleep, so no disconnect can interrupt: skip the watcher task and answer
            # at once, the cheapest upstream a benchmark can have.
            outcome: Outcome | None = await work
        else:
            outcome = await until_disconnect(receive, work)
        if outcome is None:
            for c in counters:
                c.cancelled += 1
        elif outcome == "dropped":
            DELIBERATE_DROP.set(True)

    async def _respond(
        self,
        dialect: Dialect,
        send: Send,
        request: SimRequest,
        lane: Lane,
        directives: Directives,
        counters: tuple[Counters, ...],
    ) -> Outcome:
        if directives.delay_s:
            await asyncio.sleep(directives.delay_s)
        if directives.status is not None:
            message = f"simulated failure: status {directives.status} was asked for"
            await _send_error(dialect, send, counters, RequestError(directives.status, message))
            return "error"
        prompt_tokens = count_tokens(request.prompt_texts)
        answer = compose(
            self.seed,
            "\x00".join(request.prompt_texts),
            min_tokens=lane.model.min_output_tokens,
            max_tokens=lane.model.max_output_tokens,
            exact_tokens=directives.tokens,
            cap=request.max_tokens,
            stop=request.stop,
        )
        reply = dialect.reply(request, answer, prompt_tokens)
        tokens = answer.tokens
        if directives.drop_after is not None:
            tokens = tokens[: directives.drop_after]
        lane.in_flight += 1
        for c in counters:
            c.active += 1
            c.input_tokens += prompt_tokens
        try:
            pacing = paced(
                tokens,
                lane,
                first_token_s=lane.model.first_token_s(prompt_tokens),
                time_scale=self.time_scale,
            )
            # aclosing: a cancelled request closes its pacer now, not whenever it is collected.
            async with aclosing(pacing):
                if request.stream:
                    return await _stream(dialect, send, reply, pacing, counters, directives)
                async for batch in pacing:
                    for c in counters:
                        c.output_tokens += len(batch)
            if directives.drop_after is not None:
                await _send_truncated(dialect, send, reply, counters)
                return "dropped"
            headers = ((dialect.request_id_header, reply.id.encode()),)
            await send_json(send, 200, reply.body(), headers)
            for c in counters:
                c.completed += 1
            return "completed"
        finally:
            lane.in_flight -= 1
            for c in counters:
                c.active -= 1


async def _stream(
    dialect: Dialect,
    send: Send,
    reply: Reply,
    pacing: AsyncIterator[Sequence[str]],
    counters: tuple[Counters, ...],
    directives: Directives,
) -> Outcome:
    headers = [*SSE_HEADERS, (dialect.request_id_header, reply.id.encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": reply.head(), "more_body": True})
    async for batch in pacing:
        await send({"type": "http.response.body", "body": reply.chunk(batch), "more_body": True})
        for c in counters:
            c.output_tokens += len(batch)
    if directives.drop_after is not None:
        for c in counters:
            c.dropped += 1
        return "dropped"
    await send({"type": "http.response.body", "body": reply.tail()})
    for c in counters:
        c.completed += 1
    return "completed"


async def _send_truncated(
    dialect: Dialect, send: Send, reply: Reply, counters: tuple[Counters, ...]
) -> None:
    """Promise the whole answer's length, send half of it, and leave the rest unsent."""
    body = dump_json(reply.body())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (dialect.request_id_header, reply.id.encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    for c in counters:
        c.dropped += 1


async def _send_error(
    dialect: Dialect, send: Send, counters: Sequence[Counters], error: RequestError
) -> None:
    for c in counters:
        c.errors += 1
    await send_json(send, error.status, dialect.error_body(error))


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise RequestError(400, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise RequestError(400, "the request body must be a JSON object")
    return value
