"""`gigawatt serve` on the embedded default: it serves, and its printed examples work as printed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import stop_serving


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_prints_a_key_and_examples_that_work(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gigawatt", "serve", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while not any(line.startswith("metrics:") for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            line = proc.stdout.readline()
            assert line, "serve exited early:\n" + "".join(lines)
            lines.append(line)
        banner = "".join(lines)
        assert (tmp_path / ".gigawatt" / "state.db").exists()
        _wait_for_port(port)
        python = next(line.strip() for line in lines if " -c " in line)
        result = subprocess.run(python, shell=True, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.split()) > 5
        if shutil.which("curl"):
            start = banner.index("curl ")
            curl = banner[start : banner.index("\n\n", start)]
            out = subprocess.run(curl, shell=True, capture_output=True, text=True, timeout=60)
            assert '"choices"' in out.stdout, out.stdout + out.stderr
    finally:
        stop_serving(proc)


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.parametrize(
    "args, message",
    [(["--workers", "0"], "--workers must be at least 1"), (["--config", "nope.toml"], "nope")],
)
def test_bad_serve_arguments(args: list[str], message: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gigawatt", "serve", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_a_serving_process_collects_cycles_less_often() -> None:
    code = (
        "import gc; from gigawatt.gateway.serve import GC_YOUNG_THRESHOLD, tune_gc; "
        "before = gc.get_freeze_count(); tune_gc(); "
        "print(gc.get_threshold()[0] == GC_YOUNG_THRESHOLD, gc.get_freeze_count() > before)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]
