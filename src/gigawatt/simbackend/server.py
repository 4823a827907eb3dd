"""Running the simulated backend: inside a running event loop, or in a thread of its own."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Generator, Iterator, Mapping

import uvicorn

from gigawatt.simbackend.app import SimApp, create_app
from gigawatt.simbackend.core import DELIBERATE_DROP
from gigawatt.simbackend.stats import SimStats
from gigawatt.simbackend.timing import SimModel

try:
    import uvloop
except ImportError:  # not built for Windows
    uvloop = None  # type: ignore[assignment]

# In-flight streams get this long to finish when the server stops; then they are cancelled.
GRACE_S = 2
_STARTED_POLL_S = 0.005
_UNFINISHED = "ASGI callable returned without completing response."


class SimServer:
    """A running simulated backend: its base `url`, its `app` (and counters), and `close()`."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], url: str) -> None:
        self._server = server
        self._task = task
        self.url = url
        app = server.config.app
        assert isinstance(app, SimApp)
        self.app = app

    @property
    def stats(self) -> SimStats:
        return self.app.stats

    async def close(self) -> None:
        """Stop accepting, let in-flight answers finish (for up to `GRACE_S`), then return."""
        self._server.should_exit = True
        await self._task


async def serve_sim_backend(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    models: Mapping[str, SimModel] | None = None,
    time_scale: float = 1.0,
    seed: int = 0,
) -> SimServer:
    """Start a simulated backend on the running loop and return once it accepts connections.

    Port 0 picks a free port; `url` reports the one bound. Arguments after `port` are
    `create_app`'s.
    """
    app = create_app(models, time_scale=time_scale, seed=seed)
    sock = bind_socket(host, port)
    try:
        server = _EmbeddedServer(server_config(app, grace_s=GRACE_S))
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the simulated backend stopped while starting")
            await asyncio.sleep(_STARTED_POLL_S)
    except BaseException:
        sock.close()
        raise
    return SimServer(server, task, socket_url(sock))


@contextlib.contextmanager
def run_sim_backend_in_thread(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    models: Mapping[str, SimModel] | None = None,
    time_scale: float = 1.0,
    seed: int = 0,
) -> Iterator[str]:
    """Run a simulated backend on its own event loop in a background thread; yield its URL.

    For synchronous tests and benchmarks. The backend stops when the block ends.
    """
    started: concurrent.futures.Future[tuple[asyncio.AbstractEventLoop, asyncio.Event, str]]
    started = concurrent.futures.Future()

    async def main() -> None:
        try:
            server = await serve_sim_backend(
                host, port, models=models, time_scale=time_scale, seed=seed
            )
        except BaseException as exc:
            started.set_exception(exc)
            return
        stop = asyncio.Event()
        started.set_result((asyncio.get_running_loop(), stop, server.url))
        try:
            await stop.wait()
        finally:
            await server.close()

    def run() -> None:
        try:
            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                runner.run(main())
        except BaseException as exc:
            if started.done():
                raise
            started.set_exception(exc)

    thread = threading.Thread(target=run, name="gigawatt-sim-backend", daemon=True)
    thread.start()
    try:
        loop, stop, url = started.result()
    except BaseException:
        thread.join()
        raise
    try:
        yield url
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join()


def server_config(app: SimApp, *, grace_s: int) -> uvicorn.Config:
    config = uvicorn.Config(
        app,
        loop="uvloop" if uvloop is not None else "asyncio",
        http="httptools",
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=grace_s,
    )
    # After Config: building it configures uvicorn's loggers.
    quiet_deliberate_drops()
    return config


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    return uvloop.new_event_loop if uvloop is not None else None


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one. Raises OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=2048)


def socket_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _EmbeddedServer(uvicorn.Server):
    # uvicorn takes over SIGINT and SIGTERM while serving from the main thread; a backend started
    # inside someone else's program must leave the signals to that program.
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class _DeliberateDropFilter(logging.Filter):
    """Drop uvicorn's error line for a response cut off on purpose by a drop_after directive.

    The flag is a context variable set in that request's own task, so the same line from any
    other application in the process (a gateway under test, say) still gets through.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == _UNFINISHED and DELIBERATE_DROP.get())


def quiet_deliberate_drops() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DeliberateDropFilter) for f in logger.filters):
        logger.addFilter(_DeliberateDropFilter())
