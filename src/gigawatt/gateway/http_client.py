"""The gateway's upstream client: HTTP/1.1 over pooled keep-alive connections.

A proxy's CPU per request bounds what it can serve, and the upstream client is the largest part of
that CPU: measured side by side on the same pass-through proxy, aiohttp's `ClientSession` spent
about 105 µs a request and this client about 61 (docs/gateway.md). It does only what a gateway
needs from an upstream: a request whose head is encoded once per route and sent with its body in
one write, its answer parsed by httptools (the parser uvicorn uses), the answer's body whole or as
lines of a stream, and the connection back in its endpoint's pool when the answer is complete.

Errors: connecting, a connection closed or reset before the answer was complete, and an answer
that is not HTTP raise `UpstreamConnectionError`; every timeout raises the built-in `TimeoutError`.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

# An answer read whole (not a stream) larger than this is refused, not kept in memory.
MAX_BODY_BYTES = 64 * 1024 * 1024
# A stream stops reading from its socket while this much arrived that its reader has not taken.
STREAM_BUFFER_BYTES = 256 * 1024
# A connection idle in its pool for longer is closed rather than reused: servers close idle
# keep-alive connections after a few seconds (uvicorn, and so vLLM and SGLang, after 5).
IDLE_S = 4.0


class UpstreamConnectionError(Exception):
    """The upstream could not be reached, or broke the connection or the protocol."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where requests go, parsed once: `head` is the request's head up to its content-length."""

    host: str
    port: int
    secure: bool
    head: bytes

    @property
    def origin(self) -> tuple[str, int, bool]:
        return self.host, self.port, self.secure

    @classmethod
    def post(cls, url: str, headers: dict[str, str]) -> Endpoint:
        """POST requests to `url` with `headers` (a Host and a content-length are added)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        secure = parts.scheme == "https"
        port = parts.port or (443 if secure else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.netloc.rpartition("@")[2]  # without any user:password@
        lines = [f"POST {path} HTTP/1.1", f"host: {host}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        head = ("\r\n".join(lines) + "\r\ncontent-length: ").encode("latin-1")
        return cls(parts.hostname, port, secure, head)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """`total`: from sending to the last byte of an answer read whole. `read`: the longest wait for
    the next bytes of a stream (its head included). `connect`: for a new connection."""

    total: float | None
    read: float | None
    connect: float


class Response:
    """One upstream answer: its status and headers, then its body whole (`read`) or in lines."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_complete",
        "_connection",
        "_decoder",
        "_error",
        "_timer",
        "_waiter",
        "headers",
        "status",
    )

    def __init__(self, connection: _Connection) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self._connection = connection
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._complete = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._decoder: zlib._Decompress | None = None

    async def read(self) -> bytes:
        """The whole body; the connection goes back to its pool. A stream's body (an upstream's
        error, say) has each wait bounded by the read timeout."""
        while not self._complete:
            if self._error is not None:
                raise self._error
            await self._wait(self._connection.timeouts.read)
        if self._error is not None:
            raise self._error
        body = b"".join(self._chunks)
        self._chunks.clear()
        self.release()
        return body

    async def text(self, errors: str = "strict") -> str:
        return (await self.read()).decode("utf-8", errors)

    async def lines(self) -> AsyncIterator[bytes]:
        """The body line by line, each with its line ending; the last may have none. Each wait
        for more bytes is bounded by the read timeout."""
        pending = b""
        while True:
            while self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                pending += chunk
                start = 0
                end = pending.find(b"\n")
                while end >= 0:
                    yield pending[start : end + 1]
                    start = end + 1
                    end = pending.find(b"\n", start)
                pending = pending[start:]
            self._connection.resume_if_drained(self._buffered)
            if self._error is not None:
                raise self._error
            if self._complete:
                break
            await self._wait(self._connection.timeouts.read)
        if pending:
            yield pending

    def release(self) -> None:
        """Done with this answer: its connection is kept if the answer was read to its end and
        closed otherwise (which, for a stream, is how an upstream learns to stop generating).
        Releasing twice is harmless."""
        if self._connection.response is self:
            self._connection.finished(self._complete and self._error is None and not self._chunks)

    async def _wait(self, timeout: float | None = None) -> None:
        loop = self._connection.loop
        self._waiter = waiter = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, self._time_out)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _feed(self, data: bytes) -> None:
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error as exc:
                self._fail(UpstreamConnectionError(f"answer not decodable: {exc}"))
                return
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > MAX_BODY_BYTES:
            self._fail(UpstreamConnectionError(f"answer larger than {MAX_BODY_BYTES} bytes"))
        self._wake()

    def _finish(self) -> None:
        if self._decoder is not None:
            self._chunks.append(self._decoder.flush())
        self._complete = True
        if self._timer is not None:
            self._timer.cancel()
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if self._error is None and not self._complete:
            self._error = error
            self._connection.abort()
        self._wake()

    def _time_out(self) -> None:
        self._connection._fail(TimeoutError("the upstream did not answer in time"))


class _Connection(asyncio.Protocol):
    """One keep-alive connection: at most one request on it at a time."""

    def __init__(self, pool: _Pool, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.head_waiter: asyncio.Future[Response] | None = None
        self.timeouts = Timeouts(None, None, 0.0)
        self.received = 0  # bytes of the current answer so far
        self.header_list: list[tuple[bytes, bytes]] = []
        self.closed = False
        self.keep_alive = False
        self.paused = False
        self.idle_since = 0.0

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.response is None or self.response._complete:
            # Bytes nobody asked for: this connection can no longer be trusted.
            self.abort()
            return
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamConnectionError(f"the upstream's answer is not HTTP: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        response = self.response
        if response is None or response._complete:
            return
        if response.status and _ends_at_close(response.headers):
            response._finish()
            return
        reason = f": {exc}" if exc else ""
        self._fail(UpstreamConnectionError(f"the upstream closed the connection{reason}"))

    def pause_writing(self) -> None:  # the request is one write; nothing to hold back
        pass

    def resume_writing(self) -> None:
        pass

    # --- httptools callbacks ------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_list.append((name, value))

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None
        status = self.parser.get_status_code()
        if status < 200:
            self.header_list.clear()  # an interim answer (100 Continue); the real one follows
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in self.header_list:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self.header_list.clear()
        response.status, response.headers = status, headers
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            # The gateway asks for no encoding; an upstream that compresses anyway is decoded.
            response._decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)
        elif encoding != "identity":
            self._fail(UpstreamConnectionError(f"unsupported content-encoding {encoding!r}"))
            return
        waiter = self.head_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def on_body(self, body: bytes) -> None:
        response = self.response
        if response is not None and response.status:
            response._feed(body)
            if not self.paused and response._buffered > STREAM_BUFFER_BYTES:
                self.paused = True
                assert self.transport is not None
                self.transport.pause_reading()

    def on_message_complete(self) -> None:
        response = self.response
        if response is not None and response.status:
            self.keep_alive = self.parser.should_keep_alive()
            response._finish()

    # --- the pool's side ----------------------------------------------------------------------

    def start(self, body: bytes, timeouts: Timeouts, head: bytes) -> asyncio.Future[Response]:
        response = self.response = Response(self)
        self.timeouts = timeouts
        self.received = 0
        self.keep_alive = False
        self.head_waiter = waiter = self.loop.create_future()
        deadline = timeouts.total if timeouts.total is not None else timeouts.read
        if deadline is not None:
            response._timer = self.loop.call_later(deadline, response._time_out)
        assert self.transport is not None
        self.transport.write(b"%s%d\r\n\r\n%s" % (head, len(body), body))
        return waiter

    def headers_arrived(self) -> None:
        # A stream's answer has only its read timeout from here on, armed at each wait.
        response = self.response
        if response is not None and self.timeouts.total is None and response._timer is not None:
            response._timer.cancel()
            response._timer = None

    def resume_if_drained(self, buffered: int) -> None:
        if self.paused and buffered <= STREAM_BUFFER_BYTES // 2 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def finished(self, reusable: bool) -> None:
        response, self.response = self.response, None
        if response is not None and response._timer is not None:
            response._timer.cancel()
        if reusable and self.keep_alive and not self.closed and not self.paused:
            self.idle_since = time.monotonic()
            self.pool.keep(self)
        else:
            self.abort()

    def abort(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.abort()

    def _fail(self, error: BaseException) -> None:
        waiter = self.head_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        if self.response is not None:
            self.response._fail(error)
        self.abort()


def _ends_at_close(headers: dict[str, str]) -> bool:
    # An answer with neither a content-length nor chunks ends when the connection does.
    return "content-length" not in headers and "chunked" not in headers.get("transfer-encoding", "")


class _Pool:
    """The idle connections to one host and port, most recently used first."""

    def __init__(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> None:
        self.host, self.port, self.ssl_context = host, port, ssl_context
        self.idle: list[_Connection] = []

    def take(self) -> _Connection | None:
        idle = self.idle
        stale_before = time.monotonic() - IDLE_S
        while idle:
            connection = idle.pop()
            if (
                not connection.closed
                and connection.idle_since >= stale_before
                and not connection.transport.is_closing()  # type: ignore[union-attr]
            ):
                return connection
            connection.abort()
        return None

    def keep(self, connection: _Connection) -> None:
        self.idle.append(connection)

    def forget(self, connection: _Connection) -> None:
        if connection in self.idle:
            self.idle.remove(connection)

    def close(self) -> None:
        for connection in self.idle:
            connection.abort()
        self.idle.clear()


class Client:
    """Pooled connections to any number of endpoints. One per process, used from one loop."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        """`ssl_context`: how https upstreams are verified (by default, the system's CAs)."""
        self._pools: dict[tuple[str, int, bool], _Pool] = {}
        self._ssl_context = ssl_context

    async def post(self, endpoint: Endpoint, body: bytes, timeouts: Timeouts) -> Response:
        """Send `body` and wait for the answer's head; call `release()` (or `read()`) after."""
        pool = self._pools.get(endpoint.origin)
        if pool is None:
            pool = self._pools[endpoint.origin] = self._pool(endpoint)
        connection = pool.take()
        if connection is not None:
            try:
                return await self._exchange(connection, endpoint.head, body, timeouts)
            except UpstreamConnectionError:
                # Closed before a byte of the answer: what an upstream closing an idle kept
                # connection just as it is reused looks like, so the request goes once more on a
                # new connection. (An upstream that took it and died silently sees it twice.)
                if connection.received:
                    raise
        connection = await self._connect(pool, timeouts.connect)
        return await self._exchange(connection, endpoint.head, body, timeouts)

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    def _pool(self, endpoint: Endpoint) -> _Pool:
        context = None
        if endpoint.secure:
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            context = self._ssl_context
        return _Pool(endpoint.host, endpoint.port, context)

    async def _connect(self, pool: _Pool, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(pool, loop), pool.host, pool.port, ssl=pool.ssl_context
                )
        except TimeoutError:
            raise TimeoutError(f"no connection to {pool.host}:{pool.port} in time") from None
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamConnectionError(
                f"cannot connect to {pool.host}:{pool.port}: {exc}"
            ) from exc
        return connection

    async def _exchange(
        self, connection: _Connection, head: bytes, body: bytes, timeouts: Timeouts
    ) -> Response:
        waiter = connection.start(body, timeouts, head)
        try:
            response = await waiter
        except BaseException:
            connection.finished(False)
            raise
        connection.headers_arrived()
        return response
