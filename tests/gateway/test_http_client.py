"""The upstream client against small real servers written for each case: what it sends, how it
reads every shape of answer, when it keeps a connection, and how each failure surfaces."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from gigawatt.gateway import http_client
from gigawatt.gateway.http_client import (
    Client,
    Endpoint,
    Timeouts,
    UpstreamConnectionError,
)

Reader, Writer = asyncio.StreamReader, asyncio.StreamWriter
Handler = Callable[["Upstream", Reader, Writer], Awaitable[None]]
WHOLE = Timeouts(total=5.0, read=None, connect=5.0)
STREAM = Timeouts(total=None, read=5.0, connect=5.0)


class Upstream:
    """A server running `handler` on each connection; it counts connections and keeps requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.port = 0
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []  # (head, body)
        self.closed = asyncio.Event()  # set when a connection ends from the client's side

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.closed.set()
        finally:
            writer.close()

    async def until_closed(self, reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass
        self.closed.set()

    async def read_request(self, reader: asyncio.StreamReader) -> bool:
        """Reads one request; False at the end of the connection."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            self.closed.set()
            return False
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        self.requests.append((head, await reader.readexactly(length)))
        return True


@asynccontextmanager
async def serving(
    handler: Handler, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[Upstream]:
    upstream = Upstream(handler)
    server = await asyncio.start_server(upstream, "127.0.0.1", 0, ssl=ssl_context)
    upstream.port = server.sockets[0].getsockname()[1]
    try:
        yield upstream
    finally:
        server.close()


def endpoint(upstream: Upstream, scheme: str = "http") -> Endpoint:
    url = f"{scheme}://127.0.0.1:{upstream.port}/v1/chat/completions"
    return Endpoint.post(url, {"content-type": "application/json", "x-test": "1"})


def answer(body: bytes, *headers: str) -> bytes:
    head = ["HTTP/1.1 200 OK", f"content-length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def keep_answering(upstream: Upstream, reader: Reader, writer: Writer, reply: bytes) -> None:
    while await upstream.read_request(reader):
        writer.write(reply)
        await writer.drain()


def run(test: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(test, 20))


def test_sends_one_request_head_and_body_and_keeps_the_connection() -> None:
    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            await keep_answering(upstream, reader, writer, answer(b'{"ok":1}', "x-up: a"))

        async with serving(handler) as upstream:
            client = Client()
            for body in (b'{"n":1}', b'{"n":22}'):
                response = await client.post(endpoint(upstream), body, WHOLE)
                assert response.status == 200
                assert response.headers["x-up"] == "a"
                assert await response.read() == b'{"ok":1}'
            await client.close()
        assert upstream.connections == 1
        head, body = upstream.requests[1]
        assert body == b'{"n":22}'
        lines = head.decode().split("\r\n")
        assert lines[0] == "POST /v1/chat/completions HTTP/1.1"
        assert f"host: 127.0.0.1:{upstream.port}" in lines
        assert "content-length: 8" in lines and "x-test: 1" in lines

    run(main())


def test_reads_a_chunked_answer() -> None:
    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            await upstream.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for part in (b"hel", b"lo ", b"world"):
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
                await asyncio.sleep(0.01)
            writer.write(b"0\r\n\r\n")
            await keep_answering(upstream, reader, writer, answer(b"again"))

        async with serving(handler) as upstream:
            client = Client()
            assert await (await client.post(endpoint(upstream), b"{}", WHOLE)).read() == (
                b"hello world"
            )
            assert await (await client.post(endpoint(upstream), b"{}", WHOLE)).read() == b"again"
            assert upstream.connections == 1
            await client.close()

    run(main())


def test_an_answer_without_a_length_ends_with_its_connection_which_is_not_reused() -> None:
    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            await upstream.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\npart one, ")
            await writer.drain()
            await asyncio.sleep(0.02)
            writer.write(b"part two")

        async with serving(handler) as upstream:
            client = Client()
            for _ in range(2):
                response = await client.post(endpoint(upstream), b"{}", WHOLE)
                assert await response.read() == b"part one, part two"
            assert upstream.connections == 2
            await client.close()

    run(main())


def test_an_upstream_that_says_connection_close_gets_a_new_connection_each_time() -> None:
    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            await upstream.read_request(reader)
            writer.write(answer(b"x", "connection: close"))
            await writer.drain()
            await asyncio.sleep(0.5)  # the client must not wait for this close

        async with serving(handler) as upstream:
            client = Client()
            started = time.monotonic()
            for _ in range(3):
                assert await (await client.post(endpoint(upstream), b"{}", WHOLE)).read() == b"x"
            # Had it sent a request on a connection the upstream said it would close, it would
            # have waited for the close (half a second, twice) to learn to send it again.
            assert time.monotonic() - started < 0.9
            assert upstream.connections == 3
            await client.close()

    run(main())


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_answer_is_decoded_whole_and_as_lines(encoding: str) -> None:
    text = b"data: one\n\ndata: two\n\n" * 50
    packed = gzip.compress(text) if encoding == "gzip" else __import__("zlib").compress(text)

    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            reply = answer(packed, f"content-encoding: {encoding}")
            await keep_answering(upstream, reader, writer, reply)

        async with serving(handler) as upstream:
            client = Client()
            assert await (await client.post(endpoint(upstream), b"{}", WHOLE)).read() == text
            response = await client.post(endpoint(upstream), b"{}", STREAM)
            lines = [line async for line in response.lines()]
            response.release()
            assert b"".join(lines) == text and lines[:2] == [b"data: one\n", b"\n"]
            await client.close()

    run(main())


def test_an_encoding_it_cannot_decode_is_an_error() -> None:
    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            await keep_answering(upstream, reader, writer, answer(b"...", "content-encoding: br"))

        async with serving(handler) as upstream:
            with pytest.raises(UpstreamConnectionError, match="content-encoding 'br'"):
                await Client().post(endpoint(upstream), b"{}", WHOLE)

    run(main())


def test_a_stream_comes_line_by_line_however_its_bytes_are_cut() -> None:
    pieces = [b"event: a\r\nda", b'ta: {"x"', b": 1}\r\n\r\n", b"data: [DONE]\n\nlast, unended"]

    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            await upstream.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
            writer.write(b"transfer-encoding: chunked\r\n\r\n")
            for piece in pieces:
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
                await asyncio.sleep(0.01)
            writer.write(b"0\r\n\r\n")
            await keep_answering(upstream, reader, writer, answer(b"next"))

        async with serving(handler) as upstream:
            client = Client()
            response = await client.post(endpoint(upstream), b"{}", STREAM)
            lines = [line async for line in response.lines()]
            response.release()
            assert lines == [
                b"event: a\r\n",
                b'data: {"x": 1}\r\n',
                b"\r\n",
                b"data: [DONE]\n",
                b"\n",
                b"last, unended",
            ]
            # A stream read to its end leaves its connection fit for the next request.
            assert await (await client.post(endpoint(upstream), b"{}", WHOLE)).read() == b"next"
            assert upstream.connections == 1
            await client.close()

    run(main())


def test_a_refused_connection_names_the_upstream() -> None:
    async def main() -> None:
        async with serving(lambda upstream, reader, writer: asyncio.sleep(0)) as upstream:
            closed = endpoint(upstream)
        with pytest.raises(UpstreamConnectionError, match=f"127.0.0.1:{closed.port}"):
            await Client().post(closed, b"{}", WHOLE)

    run(main())


def test_an_upstream_that_never_answers_times_out_and_its_connection_is_closed() -> None:
    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            while await upstream.read_request(reader):
                pass

        async with serving(handler) as upstream:
            quick = Timeouts(total=0.2, read=None, connect=5.0)
            with pytest.raises(TimeoutError):
                await Client().post(endpoint(upstream), b"{}", quick)
            await asyncio.wait_for(upstream.closed.wait(), 5)

    run(main())


def test_a_total_timeout_covers_a_body_that_trickles() -> None:
    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            await upstream.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
            for _ in range(100):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.05)

        async with serving(handler) as upstream:
            quick = Timeouts(total=0.3, read=None, connect=5.0)
            response = await Client().post(endpoint(upstream), b"{}", quick)
            with pytest.raises(TimeoutError):
                await response.read()

    run(main())


def test_a_stream_that_stalls_times_out_at_its_read_timeout() -> None:
    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            await upstream.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            writer.write(b"6\r\nfirst\n\r\n")
            await writer.drain()
            await upstream.until_closed(reader)

        async with serving(handler) as upstream:
            stalls = Timeouts(total=None, read=0.3, connect=5.0)
            response = await Client().post(endpoint(upstream), b"{}", stalls)
            lines = response.lines()
            assert await anext(lines) == b"first\n"
            with pytest.raises(TimeoutError):
                await anext(lines)
            await asyncio.wait_for(upstream.closed.wait(), 5)

    run(main())


def test_a_connection_cut_mid_answer_is_an_error_and_is_not_retried() -> None:
    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            await upstream.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nonly part")
            await writer.drain()

        async with serving(handler) as upstream:
            response = await Client().post(endpoint(upstream), b"{}", WHOLE)
            with pytest.raises(UpstreamConnectionError, match="closed the connection"):
                await response.read()
            assert len(upstream.requests) == 1

    run(main())


def test_a_kept_connection_closed_before_any_answer_is_replaced_once() -> None:
    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            if upstream.connections == 1:
                # Answers one request, then reads the next and hangs up without a word: what a
                # server closing an idle connection at the moment it is reused looks like.
                await upstream.read_request(reader)
                writer.write(answer(b"first"))
                await writer.drain()
                await upstream.read_request(reader)
                return
            await keep_answering(upstream, reader, writer, answer(b"second"))

        async with serving(handler) as upstream:
            client = Client()
            assert await (await client.post(endpoint(upstream), b"{}", WHOLE)).read() == b"first"
            assert await (await client.post(endpoint(upstream), b"{}", WHOLE)).read() == b"second"
            assert upstream.connections == 2 and len(upstream.requests) == 3
            await client.close()

    run(main())


def test_an_answer_that_is_not_http_is_an_error() -> None:
    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            await upstream.read_request(reader)
            writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(1)

        async with serving(handler) as upstream:
            with pytest.raises(UpstreamConnectionError, match="not HTTP"):
                await Client().post(endpoint(upstream), b"{}", WHOLE)

    run(main())


def test_an_interim_100_continue_is_skipped() -> None:
    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            reply = b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"done")
            await keep_answering(upstream, reader, writer, reply)

        async with serving(handler) as upstream:
            client = Client()
            for _ in range(2):
                response = await client.post(endpoint(upstream), b"{}", WHOLE)
                assert (response.status, await response.read()) == (200, b"done")
            assert upstream.connections == 1
            await client.close()

    run(main())


def test_an_answer_over_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_client, "MAX_BODY_BYTES", 1000)

    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            await keep_answering(upstream, reader, writer, answer(b"x" * 5000))

        async with serving(handler) as upstream:
            response = await Client().post(endpoint(upstream), b"{}", WHOLE)
            with pytest.raises(UpstreamConnectionError, match="larger than 1000 bytes"):
                await response.read()

    run(main())


def test_a_stream_read_slowly_is_held_back_at_the_socket_not_in_memory() -> None:
    line = b"data: " + b"y" * 1000 + b"\n"
    count = 4000  # about 4 MB

    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            await upstream.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (len(line) * count))
            for _ in range(count):
                writer.write(line)
                await writer.drain()

        async with serving(handler) as upstream:
            response = await Client().post(endpoint(upstream), b"{}", STREAM)
            lines = response.lines()
            assert await anext(lines) == line
            await asyncio.sleep(0.3)  # the upstream could send everything meanwhile
            assert response._buffered < 4 * http_client.STREAM_BUFFER_BYTES
            rest = [got async for got in lines]
            assert len(rest) == count - 1 and set(rest) == {line}
            response.release()

    run(main())


def test_a_reader_cancelled_mid_stream_closes_the_connection() -> None:
    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            await upstream.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for i in range(100):
                writer.write(b"4\r\n%03d\n\r\n" % i)
                await writer.drain()
                await asyncio.sleep(0.05)

        async with serving(handler) as upstream:
            response = await Client().post(endpoint(upstream), b"{}", STREAM)

            async def read_all() -> None:
                async for _ in response.lines():
                    pass

            reading = asyncio.ensure_future(read_all())
            await asyncio.sleep(0.2)
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
            response.release()
            # The upstream's next write finds the connection gone.
            await asyncio.wait_for(upstream.closed.wait(), 5)

    run(main())


def test_releasing_an_answer_twice_leaves_the_next_request_alone() -> None:
    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            await upstream.read_request(reader)
            writer.write(answer(b"z"))
            await upstream.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.1)  # the body comes after the old answer is released again
            writer.write(b"z")
            await keep_answering(upstream, reader, writer, answer(b"z"))

        async with serving(handler) as upstream:
            client = Client()
            first = await client.post(endpoint(upstream), b"{}", WHOLE)
            assert await first.read() == b"z"  # released: the connection is back in the pool
            second = await client.post(endpoint(upstream), b"{}", WHOLE)
            first.release()  # must not touch `second`'s connection
            assert await second.read() == b"z"
            assert await (await client.post(endpoint(upstream), b"{}", WHOLE)).read() == b"z"
            assert upstream.connections == 1
            await client.close()

    run(main())


def test_a_connection_idle_too_long_is_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_client, "IDLE_S", 0.05)

    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            await keep_answering(upstream, reader, writer, answer(b"k"))

        async with serving(handler) as upstream:
            client = Client()
            for _ in range(2):
                assert await (await client.post(endpoint(upstream), b"{}", WHOLE)).read() == b"k"
            assert upstream.connections == 1
            await asyncio.sleep(0.1)
            assert await (await client.post(endpoint(upstream), b"{}", WHOLE)).read() == b"k"
            assert upstream.connections == 2
            await client.close()

    run(main())


def test_https_upstreams_are_verified(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
    command += ["-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))

    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            await keep_answering(upstream, reader, writer, answer(b"secret"))

        async with serving(handler, server_context) as upstream:
            client = Client(trusting)
            for _ in range(2):
                response = await client.post(endpoint(upstream, "https"), b"{}", WHOLE)
                assert await response.read() == b"secret"
            assert upstream.connections == 1
            await client.close()
            # The system's CAs do not know this certificate.
            with pytest.raises(UpstreamConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
                await Client().post(endpoint(upstream, "https"), b"{}", WHOLE)

    run(main())


def test_endpoints_take_http_urls_with_their_query() -> None:
    made = Endpoint.post("https://example.com/v1/x?beta=true", {"a": "b"})
    assert (made.host, made.port, made.secure) == ("example.com", 443, True)
    assert made.head.startswith(b"POST /v1/x?beta=true HTTP/1.1\r\nhost: example.com\r\na: b\r\n")
    assert Endpoint.post("http://h:81", {}).head.startswith(b"POST / HTTP/1.1\r\nhost: h:81\r\n")
    assert b"\r\nhost: [::1]:81\r\n" in Endpoint.post("http://u:p@[::1]:81/", {}).head
    with pytest.raises(ValueError, match="not an http"):
        Endpoint.post("ftp://example.com/", {})


def test_an_error_answer_to_a_stream_request_is_read_within_the_read_timeout() -> None:
    async def main() -> None:
        async def handler(upstream: Upstream, reader: Reader, writer: Writer) -> None:
            await upstream.read_request(reader)
            writer.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 100\r\n\r\noops")
            await writer.drain()
            await upstream.until_closed(reader)

        async with serving(handler) as upstream:
            stalls = Timeouts(total=None, read=0.3, connect=5.0)
            response = await Client().post(endpoint(upstream), b"{}", stalls)
            assert response.status == 500
            with pytest.raises(TimeoutError):
                await response.read()
            await asyncio.wait_for(upstream.closed.wait(), 5)

    run(main())
