"""A store that fails raises one typed error, quickly: never a driver's exception, never a hang."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gigawatt.errors import StateError, StateTimeout
from gigawatt.limits import Limiter, Usage, open_store
from gigawatt.policy.model import Rate

from .policies import make_policy

T0 = 1_796_000_000.0


def _admit(url: str, timeout_s: float) -> None:
    limiter = Limiter(make_policy(), open_store(url, timeout_s=timeout_s))
    try:
        limiter.admit("a", "pro", "small", Usage(1, 1), T0)
    finally:
        limiter.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_an_unreachable_redis_is_a_state_error() -> None:
    started = time.monotonic()
    with pytest.raises(StateError):
        _admit(f"redis://127.0.0.1:{_free_port()}/0", 0.5)
    assert time.monotonic() - started < 5


def test_a_redis_that_never_answers_times_out(silent_server: int) -> None:
    started = time.monotonic()
    with pytest.raises(StateTimeout):
        _admit(f"redis://127.0.0.1:{silent_server}/0", 0.3)
    assert time.monotonic() - started < 5


def test_a_locked_sqlite_file_times_out(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _admit(f"sqlite:///{path}", 1.0)  # creates the schema
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(StateTimeout):
            _admit(f"sqlite:///{path}", 0.2)
        assert time.monotonic() - started < 3
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_an_unusable_sqlite_path_is_a_state_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where a directory should be")
    with pytest.raises(StateError):
        _admit(f"sqlite:///{tmp_path / 'taken' / 'state.db'}", 0.5)


@pytest.mark.parametrize("url", ["postgres://x", "sqlite://", "nothing"])
def test_an_unknown_state_url_is_a_value_error(url: str) -> None:
    with pytest.raises(ValueError, match="state URL"):
        open_store(url)


def test_an_unreachable_redis_cluster_is_a_state_error() -> None:
    started = time.monotonic()
    with pytest.raises(StateError):
        _admit(f"redis+cluster://127.0.0.1:{_free_port()}", 0.5)
    assert time.monotonic() - started < 5


def test_sqlite_durability_is_chosen_in_the_url(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}?synchronous=full")
    try:
        assert store.synchronous == "full"  # type: ignore[attr-defined]
        limiter = Limiter(make_policy(), store)
        assert limiter.admit("a", "pro", "small", Usage(1, 1), T0).admitted
    finally:
        store.close()
    with pytest.raises(ValueError, match="unknown option"):
        open_store(f"sqlite:///{tmp_path / 's.db'}?fsync=yes")
    with pytest.raises(ValueError, match="synchronous"):
        open_store(f"sqlite:///{tmp_path / 's.db'}?synchronous=off")


def test_sixteen_threads_on_one_sqlite_file_never_time_out(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    limiter = Limiter(make_policy(rate=Rate(), windows=()), open_store(url, timeout_s=2.0))
    errors: list[BaseException] = []
    slowest = [0.0]

    def work(thread: int) -> None:
        for i in range(150):
            started = time.monotonic()
            try:
                decision = limiter.admit(
                    f"acct{(thread * 7 + i) % 20}", "pro", "small", Usage(1, 1), T0
                )
                assert decision.reservation is not None
                limiter.reconcile(decision.reservation, Usage(1, 1), T0)
            except BaseException as exc:
                errors.append(exc)
            slowest[0] = max(slowest[0], time.monotonic() - started)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    limiter.close()
    assert errors == []
    assert slowest[0] < 1.0
