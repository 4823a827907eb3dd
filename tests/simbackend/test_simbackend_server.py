"""Starting and stopping the backend: in a running loop, in a thread, and from the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import subprocess
import sys
import textwrap
from contextvars import copy_context

import aiohttp
import openai
import pytest
from simbackend_helpers import get_json

from gigawatt.simbackend import SimModel, run_sim_backend_in_thread, serve_sim_backend
from gigawatt.simbackend.cli import add_sim_backend
from gigawatt.simbackend.core import DELIBERATE_DROP
from gigawatt.simbackend.server import _DeliberateDropFilter


def test_serve_in_a_running_loop_on_a_free_port() -> None:
    async def scenario() -> None:
        server = await serve_sim_backend("127.0.0.1", 0, time_scale=0)
        try:
            host, port = server.url.removeprefix("http://").split(":")
            assert host == "127.0.0.1" and int(port) > 0
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    server.url + "/v1/messages",
                    json={
                        "model": "any-name",
                        "max_tokens": 5,
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                ) as response,
            ):
                assert response.status == 200
                assert (await response.json())["usage"]["output_tokens"] == 5
            assert server.stats.total.completed == 1
            assert server.stats.models["any-name"].output_tokens == 5
        finally:
            await server.close()

    asyncio.run(scenario())


def test_a_port_in_use_is_an_os_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def scenario() -> None:
            await serve_sim_backend("127.0.0.1", port)

        with pytest.raises(OSError):
            asyncio.run(scenario())


def test_the_thread_runner_takes_a_model_table() -> None:
    fast = SimModel(base_latency_s=0, decode_tokens_per_s=10_000)
    with (
        run_sim_backend_in_thread(models={"fast": fast}, time_scale=1.0, seed=7) as url,
        openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as client,
    ):
        completion = client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "hi [[sim:tokens=20]]"}]
        )
        assert completion.usage is not None and completion.usage.completion_tokens == 20
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(
                model="small", messages=[{"role": "user", "content": "hi"}]
            )
        assert get_json(url + "/v1/models")["data"][0]["id"] == "fast"


def test_the_drop_filter_hides_only_deliberate_drops() -> None:
    record = logging.LogRecord(
        "uvicorn.error", logging.ERROR, __file__, 1,
        "ASGI callable returned without completing response.", None, None,
    )  # fmt: skip
    quiet = _DeliberateDropFilter()
    assert quiet.filter(record)

    def in_a_dropping_request() -> bool:
        DELIBERATE_DROP.set(True)
        return quiet.filter(record)

    assert not copy_context().run(in_a_dropping_request)
    assert quiet.filter(record)


def test_the_command_line_hook_imports_neither_server_nor_tokenizer() -> None:
    check = (
        "import sys, gigawatt.simbackend.cli; "
        "print(sorted({'uvicorn', 'bpe_openai'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.stdout.strip() == "[]"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gigawatt")
    add_sim_backend(parser.add_subparsers())
    return parser.parse_args(argv)


def test_the_command_line_defaults() -> None:
    args = parse(["sim-backend"])
    assert (args.host, args.port, args.time_scale, args.seed) == ("127.0.0.1", 8000, 1.0, 0)


@pytest.mark.parametrize("argv", [["--time-scale", "-1"], ["--port", "70000"]])
def test_the_command_line_refuses_bad_values(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse(["sim-backend", *argv])
    assert args.run(args) == 2
    assert "gigawatt:" in capsys.readouterr().err


def test_the_command_serves_until_interrupted() -> None:
    script = textwrap.dedent(
        """
        import argparse, sys
        from gigawatt.simbackend.cli import add_sim_backend
        parser = argparse.ArgumentParser()
        add_sim_backend(parser.add_subparsers())
        args = parser.parse_args(sys.argv[1:])
        sys.exit(args.run(args))
        """
    )
    command = [sys.executable, "-c", script, "sim-backend", "--port", "0", "--time-scale", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as p:
        try:
            assert p.stdout is not None
            line = p.stdout.readline()
            url = line.split()[3]
            assert url.startswith("http://127.0.0.1:")
            assert get_json(url + "/healthz") == {"status": "ok"}
            p.send_signal(signal.SIGINT)
            assert p.wait(timeout=10) == 0
        finally:
            if p.poll() is None:
                p.kill()
        assert p.stderr is not None
        assert p.stderr.read() == ""
