"""The gateway as one pure-ASGI application.

A request to `/v1/chat/completions` (OpenAI) or `/v1/messages` (Anthropic) is authenticated,
checked, sized, admitted by the limiter, queued for its upstream pool, forwarded (translated if
the upstream speaks the other dialect), and reconciled with the usage the upstream reports. Every
refusal is in the caller's own dialect; every response carries its limits in headers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

from gigawatt.errors import StateError
from gigawatt.gateway import admin, translate
from gigawatt.gateway.admission import Pool
from gigawatt.gateway.errors import GatewayError, anthropic_error, openai_error
from gigawatt.gateway.headers import Header, anthropic_headers, openai_headers
from gigawatt.gateway.http_client import (
    Client,
    Endpoint,
    Response,
    Timeouts,
    UpstreamConnectionError,
)
from gigawatt.gateway.keycache import KeyCache
from gigawatt.gateway.metrics import Metrics
from gigawatt.gateway.requests import (
    Dialect,
    LLMRequest,
    api_key,
    parse_anthropic,
    parse_openai,
    with_max_tokens,
)
from gigawatt.gateway.tokens import count_request_tokens, load_tokenizer
from gigawatt.gateway.upstream import (
    Route,
    StreamMeter,
    sse_events,
    usage_from_anthropic,
    usage_from_openai,
)
from gigawatt.gateway.worker_metrics import WRITE_EVERY_S, worker_metrics_from_env
from gigawatt.keys import KeyRecord, KeyStore
from gigawatt.limits import Decision, Limiter, Reservation, Usage, open_store
from gigawatt.limits.describe import limit_label, refusal_message
from gigawatt.policy.model import Plan, Policy, Upstream
from gigawatt.policy.overload import OVERLOAD_RETRY_AFTER_S, degrade

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("gigawatt.gateway")

# The request headers the gateway reads; the others (an SDK sends a dozen more) are not decoded.
_READ_HEADERS = {
    name.encode(): name
    for name in ("authorization", "x-api-key", "content-length", "anthropic-version")
}

# When an OpenAI client names no max_tokens and the upstream speaks Anthropic (which needs one).
DEFAULT_MAX_TOKENS = 8192


class ClientGone(Exception):
    """The client hung up before the request was read."""


@dataclass(slots=True)
class Admitted:
    """A request the limiter let through, and which limiter holds its reservation."""

    decision: Decision
    limiter: Limiter
    reservation: Reservation


class Gateway:
    def __init__(
        self,
        policy: Policy,
        limiter: Limiter,
        keys: KeyStore,
        *,
        upstream_urls: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self.limiter = limiter
        self.keys = KeyCache(keys)
        self.clock = clock
        self.routes: dict[str, Upstream] = {}
        for upstream in policy.upstreams:
            for model in upstream.models:
                self.routes.setdefault(model, upstream)
        self.upstream_urls = dict(upstream_urls or {})
        self._ways: dict[tuple[str, str, bool], tuple[Route, Endpoint, Timeouts]] = {}
        self.pools = {u.name: Pool(u.name, u.max_inflight) for u in policy.upstreams}
        self.client: Client | None = None
        self._sim_servers: list[Any] = []
        # Used only when the state store fails and the policy says to keep serving.
        self.local_limiter = Limiter(policy, open_store("memory://"))
        self.metrics = _metrics(self)
        # Set under `--workers N`: every worker's metrics, summed on each scrape.
        self.worker_metrics = worker_metrics_from_env()
        self._metrics_writer: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def startup(self) -> None:
        # Loading the tokenizer takes about half a second: at startup, not in the first request.
        load_tokenizer()
        # It keeps no cookies: nothing one caller's answer set is sent on for the next.
        self.client = Client()
        for upstream in self.policy.upstreams:
            if upstream.protocol == "sim" and upstream.url is None:
                # The built-in simulated backend, served by this process on a free port.
                from gigawatt.simbackend import serve_sim_backend

                server = await serve_sim_backend("127.0.0.1", 0)
                self._sim_servers.append(server)
                self.upstream_urls[upstream.name] = server.url + "/v1"
        if self.worker_metrics is not None:
            self._metrics_writer = asyncio.ensure_future(self._write_metrics_often())

    async def shutdown(self) -> None:
        if self._metrics_writer is not None:
            self._metrics_writer.cancel()
            self._metrics_writer = None
        if self.worker_metrics is not None:
            self._write_metrics()  # what this worker counted stays in the others' sums
        close = getattr(self.limiter.store, "aclose", None)
        if close is not None:
            await close()
        if self.client is not None:
            await self.client.close()
            self.client = None
        for server in self._sim_servers:
            await server.close()
        self._sim_servers.clear()

    # --- ASGI --------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        dialect: Dialect = "anthropic" if path.startswith("/v1/messages") else "openai"
        headers = _read_headers(scope["headers"])
        try:
            if path == "/v1/chat/completions" and method == "POST":
                await self._llm(headers, receive, send, "openai")
            elif path == "/v1/messages" and method == "POST":
                await self._llm(headers, receive, send, "anthropic")
            elif path == "/v1/models" and method == "GET":
                await self._models(headers, send)
            elif path == "/v1/usage" and method == "GET":
                await self._usage(headers, send)
            elif path == "/healthz" and method == "GET":
                await _send_json(send, 200, {"status": "ok"})
            elif path.startswith("/admin/"):
                status, payload = await admin.handle(
                    self, method, path, scope.get("query_string", b"").decode(), headers, receive
                )
                await _send_json(send, status, payload)
            elif path == "/metrics" and method == "GET":
                body = self._render_metrics().encode()
                await _send(send, 200, body, [("content-type", "text/plain; version=0.0.4")])
            else:
                raise GatewayError("not_found", f"no such endpoint: {method} {path}")
        except GatewayError as exc:
            await self._error(send, dialect, exc)
        except ClientGone:
            return

    def _render_metrics(self) -> str:
        if self.worker_metrics is None:
            return self.metrics.render()
        self._write_metrics()
        return self.metrics.render(self.worker_metrics.others())

    def _write_metrics(self) -> None:
        assert self.worker_metrics is not None
        try:
            self.worker_metrics.write(self.metrics.snapshot())
        except OSError as exc:
            log.warning("could not write this worker's metrics: %s", exc)

    async def _write_metrics_often(self) -> None:
        while True:
            await asyncio.sleep(WRITE_EVERY_S)
            self._write_metrics()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _error(self, send: Send, dialect: Dialect, error: GatewayError) -> None:
        status, body = anthropic_error(error) if dialect == "anthropic" else openai_error(error)
        headers = [("content-type", "application/json"), *error.headers.items()]
        await _send(send, status, body, headers)

    # --- the LLM endpoints -------------------------------------------------------------------

    async def _llm(
        self, headers: dict[str, str], receive: Receive, send: Send, dialect: Dialect
    ) -> None:
        record, plan = self._authenticate(headers)
        raw = await self.read_body(headers, receive)
        request = parse_anthropic(raw) if dialect == "anthropic" else parse_openai(raw)
        upstream, request, degraded = self._route(request, plan)
        now = self.clock()
        admitted = await self._admit(record, plan, request, now)
        decision = admitted.decision
        limit_headers = self._limit_headers(dialect, decision)
        if degraded:
            limit_headers.append((b"gigawatt-degraded", ", ".join(degraded).encode("latin-1")))
            self.metrics.inc("gigawatt_degraded_total", request.model, plan.name)
        pool = self.pools[upstream.name]
        # Most requests find a slot free: no coroutine to make and await for them.
        if pool.try_acquire():
            self.metrics.observe("gigawatt_queue_wait_seconds", 0.0)
        else:
            waiting = time.perf_counter()
            got_slot = await pool.acquire(plan.priority, plan.queue_timeout_s)
            self.metrics.observe("gigawatt_queue_wait_seconds", time.perf_counter() - waiting)
            if not got_slot:
                await self._settle(admitted, None)
                self.metrics.inc("gigawatt_requests_total", request.model, "overloaded", plan.name)
                raise GatewayError(
                    "overloaded",
                    f"{upstream.name} is at capacity and your request waited "
                    f"{plan.queue_timeout_s:g}s in the queue; retry in {OVERLOAD_RETRY_AFTER_S}s",
                    headers={"retry-after": str(OVERLOAD_RETRY_AFTER_S)},
                )
        try:
            outcome = await self._forward(
                upstream, request, plan, admitted, dialect, receive, send, limit_headers
            )
        except GatewayError as error:
            # Upstream failures (502, 504, its own 4xx) are outcomes too.
            self.metrics.inc("gigawatt_requests_total", request.model, error.kind, plan.name)
            raise
        finally:
            pool.release()
        self.metrics.inc("gigawatt_requests_total", request.model, outcome, plan.name)

    def _authenticate(self, headers: dict[str, str]) -> tuple[KeyRecord, Plan]:
        secret = api_key(headers)
        if secret is None:
            raise GatewayError(
                "authentication",
                "missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
            )
        try:
            record = self.keys.authenticate(secret)
        except StateError as exc:
            log.error("key store unavailable: %s", exc)
            raise GatewayError(
                "state_unavailable",
                "API keys cannot be checked right now (state store unavailable); retry shortly",
                headers={"retry-after": "5"},
            ) from exc
        if record is None:
            raise GatewayError("authentication", "invalid API key")
        plan = self.policy.plans.get(record.plan)
        if plan is None:
            raise GatewayError(
                "permission", f"this key's plan {record.plan!r} no longer exists; ask an admin"
            )
        return record, plan

    async def read_body(self, headers: dict[str, str], receive: Receive) -> bytes:
        limit = self.policy.gateway.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                raise _too_large(limit)
            chunks.append(body)
            if not message.get("more_body"):
                return b"".join(chunks)

    def _route(self, request: LLMRequest, plan: Plan) -> tuple[Upstream, LLMRequest, list[str]]:
        if request.model not in self.policy.models:
            raise GatewayError(
                "not_found",
                f"model {request.model!r} not found; models on your plan: {', '.join(plan.models)}",
                param="model",
            )
        if request.model not in plan.models:
            raise GatewayError(
                "permission",
                f"your plan ({plan.name}) does not include {request.model!r}; it includes "
                f"{', '.join(plan.models)}",
                param="model",
            )
        upstream = self.routes.get(request.model)
        if upstream is None:
            raise GatewayError("not_found", f"no upstream serves {request.model!r}", "model")
        rule = plan.degrade
        if rule is None or self.pools[upstream.name].load < rule.above_load:
            return upstream, request, []
        # Degradation is announced in the gigawatt-degraded header, never applied silently.
        thinking = request.body.get("thinking")
        budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
        if not isinstance(budget, int):
            budget = None
        change = degrade(rule, request.model, request.max_tokens, budget)
        if change.model != request.model:
            body = dict(request.body, model=change.model)
            request = LLMRequest(
                request.dialect, change.model, request.stream, request.max_tokens, body
            )
            upstream = self.routes[change.model]
        if change.max_tokens is not None and change.max_tokens != request.max_tokens:
            request = with_max_tokens(request, change.max_tokens)
        if budget is not None and change.thinking_budget != budget:
            capped = dict(thinking, budget_tokens=change.thinking_budget)
            request.body = dict(request.body, thinking=capped)
            request.raw = None
        return upstream, request, list(change.notes)

    async def _admit(
        self, record: KeyRecord, plan: Plan, request: LLMRequest, now: float
    ) -> Admitted:
        output = min(request.max_tokens or plan.output_estimate, plan.output_estimate)
        estimate = Usage(count_request_tokens(request.body), output)
        limiter = self.limiter
        try:
            decision = await limiter.aadmit(record.account, plan, request.model, estimate, now)
        except StateError as exc:
            self.metrics.inc("gigawatt_state_errors_total", "admit")
            if self.policy.gateway.on_state_error == "closed":
                log.error("limiter state unavailable, refusing (on_state_error=closed): %s", exc)
                raise GatewayError(
                    "state_unavailable",
                    "usage limits cannot be checked right now (state store unavailable); "
                    "retry shortly",
                    headers={"retry-after": "5"},
                ) from exc
            log.error(
                "LIMITER STATE UNAVAILABLE: serving with this process's own limits "
                "(on_state_error=open): %s",
                exc,
            )
            limiter = self.local_limiter
            decision = limiter.admit(record.account, plan, request.model, estimate, now)
        if not decision.admitted:
            self.metrics.inc("gigawatt_refusals_total", decision.refused_by or "", plan.name)
            self.metrics.inc("gigawatt_requests_total", request.model, "refused", plan.name)
            retry = decision.retry_after
            extra = {"retry-after": str(max(1, math.ceil(retry)))} if retry is not None else {}
            hdrs = self._limit_headers(request.dialect, decision)
            raise GatewayError(
                "rate_limit",
                refusal_message(decision, now, self.policy.gateway.timezone),
                headers={**{k.decode("latin-1"): v.decode("latin-1") for k, v in hdrs}, **extra},
            )
        assert decision.reservation is not None
        return Admitted(decision, limiter, decision.reservation)

    def _limit_headers(self, dialect: Dialect, decision: Decision) -> list[Header]:
        # Every decision the limiter makes carries its reading; the headers are made from it.
        assert decision.reading is not None, "a decision without its limits' reading"
        render = anthropic_headers if dialect == "anthropic" else openai_headers
        return render(decision.reading, decision.refused_by)

    async def _settle(self, admitted: Admitted, usage: Usage | None) -> None:
        """Reconcile with real usage, or release when the upstream produced nothing."""
        now = self.clock()
        try:
            limiter = admitted.limiter
            if usage is None:
                await limiter.arelease(admitted.reservation, now)
            else:
                await limiter.areconcile(admitted.reservation, usage, now)
                self.metrics.inc("gigawatt_input_tokens_total", by=usage.input_tokens)
                self.metrics.inc("gigawatt_output_tokens_total", by=usage.output_tokens)
        except StateError as exc:
            # The reservation expires at its deadline, so nothing leaks; the usage is lost.
            self.metrics.inc("gigawatt_state_errors_total", "reconcile")
            log.error("could not settle reservation %s: %s", admitted.reservation.id, exc)

    # --- forwarding --------------------------------------------------------------------------

    async def _forward(
        self,
        upstream: Upstream,
        request: LLMRequest,
        plan: Plan,
        admitted: Admitted,
        dialect: Dialect,
        receive: Receive,
        send: Send,
        limit_headers: list[Header],
    ) -> str:
        route, endpoint, timeouts = self._way(upstream, dialect, request.stream)
        body = self._upstream_body(request, route, plan)
        assert self.client is not None, "the gateway was not started"
        started = time.perf_counter()
        try:
            response = await self.client.post(endpoint, body, timeouts)
        except TimeoutError as exc:
            await self._settle(admitted, None)
            raise GatewayError(
                "upstream_timeout", f"{upstream.name} did not answer within {upstream.timeout_s:g}s"
            ) from exc
        except UpstreamConnectionError as exc:
            await self._settle(admitted, None)
            raise GatewayError("upstream_error", f"{upstream.name} is unreachable: {exc}") from exc
        try:
            if response.status >= 400:
                await self._upstream_refused(response, upstream, admitted)
            if request.stream:
                return await self._stream(
                    response, request, route, admitted, dialect, receive, send, limit_headers
                )
            return await self._whole(
                response, request, route, admitted, dialect, send, limit_headers
            )
        finally:
            response.release()
            self.metrics.observe(
                "gigawatt_upstream_seconds", time.perf_counter() - started, upstream.name
            )

    def _way(
        self, upstream: Upstream, dialect: Dialect, stream: bool
    ) -> tuple[Route, Endpoint, Timeouts]:
        """The route to `upstream` for a client speaking `dialect`, with its endpoint (URL and
        headers, encoded) and timeouts: made once, since parsing a URL costs more than the rest
        of a lookup."""
        key = (upstream.name, dialect, stream)
        way = self._ways.get(key)
        if way is None:
            upstream_dialect: Dialect = dialect if upstream.protocol == "sim" else upstream.protocol  # type: ignore[assignment]
            route = Route(upstream, self._base_url(upstream), upstream_dialect)
            # A whole answer has its total bounded; a stream, each wait between its chunks (a
            # read timeout on a whole answer would only re-arm a timer at every chunk).
            timeouts = Timeouts(
                total=None if stream else upstream.timeout_s,
                read=upstream.timeout_s if stream else None,
                connect=min(10.0, upstream.timeout_s),
            )
            endpoint = Endpoint.post(route.url(), route.headers())  # the policy checked the URL
            way = self._ways[key] = (route, endpoint, timeouts)
        return way

    def _base_url(self, upstream: Upstream) -> str:
        url = self.upstream_urls.get(upstream.name) or upstream.url
        if url is None:
            raise GatewayError("upstream_error", f"upstream {upstream.name} has no address")
        return url

    def _upstream_body(self, request: LLMRequest, route: Route, plan: Plan) -> bytes:
        """The bytes to send upstream: the client's own, unless something must change."""
        body = request.body
        unchanged = (
            request.raw is not None
            and route.dialect == request.dialect
            and not (route.dialect == "openai" and request.stream)
            and not route.upstream.forward_priority
        )
        if unchanged:
            assert request.raw is not None
            return request.raw
        if route.dialect != request.dialect:
            try:
                if request.dialect == "anthropic":
                    body = translate.anthropic_to_openai_request(body)
                else:
                    body = translate.openai_to_anthropic_request(
                        body, default_max_tokens=DEFAULT_MAX_TOKENS
                    )
            except translate.TranslationError as exc:
                raise GatewayError("invalid_request", str(exc), param=exc.param) from exc
        else:
            body = dict(body)
        if route.dialect == "openai" and request.stream:
            body["stream_options"] = dict(body.get("stream_options") or {}, include_usage=True)
        if route.upstream.forward_priority:
            # vLLM serves lower numbers first; gigawatt's plans rank higher numbers first.
            body["priority"] = -plan.priority
        return orjson.dumps(body)

    async def _upstream_refused(
        self, response: Response, upstream: Upstream, admitted: Admitted
    ) -> None:
        await self._settle(admitted, None)
        try:
            text = (await response.text(errors="replace"))[:2000]
        except (UpstreamConnectionError, TimeoutError):
            text = ""  # the status says enough
        message = _upstream_message(text) or f"status {response.status}"
        status = response.status
        if status >= 500 or status in (401, 403):
            raise GatewayError("upstream_error", f"{upstream.name} failed ({status}): {message}")
        if status == 429:
            raise GatewayError(
                "overloaded",
                f"{upstream.name} is overloaded: {message}",
                headers={"retry-after": response.headers.get("retry-after", "2")},
            )
        kind = {404: "not_found", 413: "request_too_large"}.get(status, "invalid_request")
        raise GatewayError(kind, f"{upstream.name} rejected the request: {message}")  # type: ignore[arg-type]

    async def _whole(
        self,
        response: Response,
        request: LLMRequest,
        route: Route,
        admitted: Admitted,
        dialect: Dialect,
        send: Send,
        limit_headers: list[Header],
    ) -> str:
        try:
            raw = await response.read()
            data = orjson.loads(raw)
        except (UpstreamConnectionError, ValueError, TimeoutError) as exc:
            await self._settle(admitted, None)
            if isinstance(exc, TimeoutError):
                raise GatewayError("upstream_timeout", f"{route.upstream.name} timed out") from exc
            raise GatewayError(
                "upstream_error", f"{route.upstream.name} sent an unreadable answer: {exc}"
            ) from exc
        if not isinstance(data, dict):
            await self._settle(admitted, None)
            raise GatewayError("upstream_error", f"{route.upstream.name} sent a non-object answer")
        if route.dialect == "openai":
            usage = usage_from_openai(data.get("usage"))
        else:
            usage = usage_from_anthropic(data.get("usage"))
        try:
            if route.dialect != dialect:
                try:
                    if dialect == "anthropic":
                        data = translate.openai_to_anthropic_response(data, model=request.model)
                    else:
                        data = translate.anthropic_to_openai_response(data, model=request.model)
                except translate.TranslationError as exc:
                    raise GatewayError(
                        "upstream_error", f"{route.upstream.name} answered untranslatably: {exc}"
                    ) from exc
                raw = orjson.dumps(data)
            # In the same dialect the upstream's own bytes go back as they came.
            await _send_encoded(send, 200, raw, [_JSON_CONTENT_TYPE, *limit_headers])
        finally:
            await self._settle(admitted, usage or admitted.reservation.estimate)
        return "ok"

    async def _stream(
        self,
        response: Response,
        request: LLMRequest,
        route: Route,
        admitted: Admitted,
        dialect: Dialect,
        receive: Receive,
        send: Send,
        limit_headers: list[Header],
    ) -> str:
        meter = StreamMeter(route.dialect, admitted.reservation.estimate.input_tokens)
        client_wants_usage = bool((request.body.get("stream_options") or {}).get("include_usage"))
        to_client = _stream_translator(route.dialect, dialect, request.model, client_wants_usage)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    *limit_headers,
                ],
            }
        )

        async def pump() -> None:
            async for raw, event, data in sse_events(response):
                if data is not None:
                    meter.feed(event, data)
                out = to_client(raw, event, data)
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
            tail = to_client(None, None, None)
            if tail:
                await send({"type": "http.response.body", "body": tail, "more_body": True})

        outcome = "ok"
        pumping = asyncio.ensure_future(pump())
        hangup = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            done, _ = await asyncio.wait({pumping, hangup}, return_when=asyncio.FIRST_COMPLETED)
            if hangup in done:
                # Closing our side of the upstream stream cancels the generation there.
                pumping.cancel()
                await asyncio.gather(pumping, return_exceptions=True)
                outcome = "client_disconnected"
            else:
                pumping.result()
        except (UpstreamConnectionError, TimeoutError) as exc:
            outcome = "upstream_cut"
            log.warning("stream from %s ended early: %s", route.upstream.name, exc)
            error = GatewayError("upstream_error", f"{route.upstream.name} stream ended early")
            await _send_stream_error(send, dialect, error)
        finally:
            hangup.cancel()
        if not meter.finished and outcome == "ok":
            outcome = "upstream_cut"
        produced = meter.finished or meter.produced or meter.output_tokens
        try:
            if outcome != "client_disconnected":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await self._settle(admitted, meter.usage() if produced else None)
        return outcome

    # --- other endpoints ---------------------------------------------------------------------

    async def _models(self, headers: dict[str, str], send: Send) -> None:
        _, plan = self._authenticate(headers)
        if "anthropic-version" in headers:
            data = [
                {"type": "model", "id": m, "display_name": m, "created_at": "2026-01-01T00:00:00Z"}
                for m in plan.models
            ]
            body = {
                "data": data,
                "has_more": False,
                "first_id": plan.models[0] if plan.models else None,
                "last_id": plan.models[-1] if plan.models else None,
            }
        else:
            body = {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": "gigawatt"}
                    for m in plan.models
                ],
            }
        await _send_json(send, 200, body)

    async def _usage(self, headers: dict[str, str], send: Send) -> None:
        record, plan = self._authenticate(headers)
        now = self.clock()
        try:
            statuses = await asyncio.to_thread(self.limiter.snapshot, record.account, plan, now)
        except StateError as exc:
            raise GatewayError(
                "state_unavailable", "usage cannot be read right now; retry shortly"
            ) from exc
        windows, buckets = [], []
        for status in statuses:
            reset = None if status.reset_at is None else _iso(status.reset_at)
            if status.scope == "window":
                windows.append(
                    {
                        "name": status.name,
                        "label": limit_label(status),
                        "used": status.used,
                        "limit": status.limit,
                        "remaining": status.remaining,
                        "utilization": round(status.utilization, 6),
                        "resets_at": reset,
                    }
                )
            else:
                buckets.append(
                    {
                        "model": status.model,
                        "name": status.name,
                        "limit": status.limit,
                        "remaining": status.remaining,
                        "resets_at": reset,
                    }
                )
        body = {
            "account": record.account,
            "plan": plan.name,
            "windows": windows,
            "buckets": buckets,
        }
        await _send_json(send, 200, body)


# --- helpers -----------------------------------------------------------------------------------


def _metrics(gateway: Gateway) -> Metrics:
    metrics = Metrics()
    # Label names in alphabetical order, the order the series are written in.
    metrics.counter(
        "gigawatt_requests_total",
        "Requests by plan, model and outcome.",
        ("model", "outcome", "plan"),
    )
    metrics.counter("gigawatt_refusals_total", "Refusals by plan and limit.", ("limit", "plan"))
    metrics.counter("gigawatt_degraded_total", "Responses degraded by policy.", ("model", "plan"))
    metrics.counter("gigawatt_state_errors_total", "Failed limiter state calls.", ("call",))
    metrics.counter("gigawatt_input_tokens_total", "Input tokens reconciled.")
    metrics.counter("gigawatt_output_tokens_total", "Output tokens reconciled.")
    metrics.histogram(
        "gigawatt_queue_wait_seconds",
        "Time waiting for a slot at the upstream (0 when one was free).",
    )
    metrics.histogram("gigawatt_upstream_seconds", "Upstream response time.", ("upstream",))
    metrics.gauge(
        "gigawatt_queue_depth",
        "Requests waiting for a slot.",
        lambda: {(p.name,): float(p.queued) for p in gateway.pools.values()},
        ("upstream",),
    )
    metrics.gauge(
        "gigawatt_inflight",
        "Requests in flight upstream.",
        lambda: {(p.name,): float(p.inflight) for p in gateway.pools.values()},
        ("upstream",),
    )
    return metrics


def _stream_translator(
    upstream: Dialect, client: Dialect, model: str, client_wants_usage: bool
) -> Callable[[bytes | None, str | None, dict[str, Any] | None], bytes]:
    """A function from each upstream event (None at the end) to the bytes the client gets."""
    if upstream == client:

        def passthrough(raw: bytes | None, event: str | None, data: dict[str, Any] | None) -> bytes:
            if raw is None:
                return b""
            # The gateway asked an OpenAI upstream for usage; a client that did not is spared it.
            if (
                upstream == "openai"
                and not client_wants_usage
                and data is not None
                and not data.get("choices")
                and "usage" in data
            ):
                return b""
            return raw

        return passthrough
    if upstream == "openai":
        to_anthropic = translate.OpenAIToAnthropicStream(model)

        def openai_to_anthropic(
            raw: bytes | None, event: str | None, data: dict[str, Any] | None
        ) -> bytes:
            pairs = (
                to_anthropic.finish() if raw is None else (to_anthropic.feed(data) if data else [])
            )
            return b"".join(_sse(name, payload) for name, payload in pairs)

        return openai_to_anthropic
    to_openai = translate.AnthropicToOpenAIStream(model, client_wants_usage)
    done = [False]

    def anthropic_to_openai(
        raw: bytes | None, event: str | None, data: dict[str, Any] | None
    ) -> bytes:
        if raw is None:
            if done[0]:
                return b""
            done[0] = True
            chunks = to_openai.finish()
            return b"".join(_sse(None, c) for c in chunks) + b"data: [DONE]\n\n"
        if data is None or event is None:
            return b""
        return b"".join(_sse(None, c) for c in to_openai.feed(event, data))

    return anthropic_to_openai


def _sse(event: str | None, data: dict[str, Any]) -> bytes:
    payload = orjson.dumps(data).decode()
    if event is None:
        return f"data: {payload}\n\n".encode()
    return f"event: {event}\ndata: {payload}\n\n".encode()


async def _send_stream_error(send: Send, dialect: Dialect, error: GatewayError) -> None:
    if dialect == "anthropic":
        _, body = anthropic_error(error)
        out = b"event: error\ndata: " + body + b"\n\n"
    else:
        _, body = openai_error(error)
        out = b"data: " + body + b"\n\n"
    await send({"type": "http.response.body", "body": out, "more_body": True})


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def _too_large(limit: int) -> GatewayError:
    # Made only when raised: every request reads its body, and building an exception is not free.
    return GatewayError(
        "request_too_large", f"request body larger than the limit of {limit:,} bytes"
    )


def _upstream_message(text: str) -> str | None:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text.strip()[:300] or None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
    return None


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _encode_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
    await _send_encoded(send, status, body, _encode_headers(headers))


_JSON_CONTENT_TYPE = (b"content-type", b"application/json")


def _read_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The headers in `_READ_HEADERS`, by name (servers give names in lower case)."""
    headers = {}
    for name, value in raw:
        known = _READ_HEADERS.get(name)
        if known is not None:
            headers[known] = value.decode("latin-1")
    return headers


async def _send_encoded(send: Send, status: int, body: bytes, headers: list[Header]) -> None:
    headers.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Send, status: int, body: Any) -> None:
    await _send(send, status, json.dumps(body).encode(), [("content-type", "application/json")])
