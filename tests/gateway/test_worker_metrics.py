"""Metrics across worker processes: any worker answers `/metrics` for all of them."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from gigawatt.gateway.metrics import Metrics
from gigawatt.gateway.worker_metrics import WorkerMetrics

from .conftest import stop_serving


def a_worker(requests: int, inflight: float) -> Metrics:
    metrics = Metrics()
    metrics.counter("requests_total", "Requests.", ("outcome",))
    metrics.histogram("wait_seconds", "Waits.")
    metrics.gauge("inflight", "In flight.", lambda: {(): inflight})
    for _ in range(requests):
        metrics.inc("requests_total", "ok")
        metrics.observe("wait_seconds", 0.02)
    return metrics


def test_a_scrape_sums_every_workers_series(tmp_path: Path) -> None:
    mine, theirs = a_worker(3, 1.0), a_worker(4, 2.0)
    theirs.inc("requests_total", "refused")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])  # a worker that has exited
    gone.wait()
    WorkerMetrics(tmp_path, pid=gone.pid).write(theirs.snapshot())
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        WorkerMetrics(tmp_path, pid=alive.pid).write(a_worker(5, 4.0).snapshot())
        (tmp_path / "notes.json").write_text("not a worker's")
        (tmp_path / "77.json").write_text("{half written")
        text = mine.render(WorkerMetrics(tmp_path).others())
    finally:
        alive.kill()
        alive.wait()
    assert 'requests_total{outcome="ok"} 12\n' in text
    assert 'requests_total{outcome="refused"} 1\n' in text
    assert 'wait_seconds_bucket{le="0.025"} 12\n' in text
    assert "wait_seconds_count 12\n" in text
    # Gauges of a worker that is gone are left out: 1 (this one) + 4 (the live one).
    assert "inflight 5\n" in text


def test_a_worker_leaves_out_its_own_file(tmp_path: Path) -> None:
    worker = WorkerMetrics(tmp_path)
    worker.write(a_worker(2, 0.0).snapshot())
    assert worker.others() == []
    assert [p.name for p in tmp_path.iterdir()] == [f"{os.getpid()}.json"]


def test_serve_with_two_workers_counts_every_request_on_every_scrape(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gigawatt", "serve", "--port", str(port), "--workers", "2"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert proc.stdout is not None
        banner = ""
        while "demo key" not in banner:
            line = proc.stdout.readline()
            assert line, "serve exited early:\n" + banner
            banner += line
        key = re.search(r"demo key \(plan \w+\): (\S+)", banner).group(1)  # type: ignore[union-attr]
        body = json.dumps(
            {"model": "small", "messages": [{"role": "user", "content": "hi [[sim:tokens=3]]"}]}
        )
        deadline = time.monotonic() + 60
        sent = 0
        while sent < 20:
            request = urllib.request.Request(
                base + "/v1/chat/completions",
                data=body.encode(),
                headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    assert response.status == 200
                sent += 1
            except OSError:  # the workers are still starting
                assert time.monotonic() < deadline
                time.sleep(0.2)
        time.sleep(2.5)  # every worker has written its series since
        counts = []
        for _ in range(8):  # each on a new connection, so to either worker
            with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
                text = response.read().decode()
            counts.append(
                sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith("gigawatt_requests_total{") and 'outcome="ok"' in line
                )
            )
        assert counts == [20.0] * 8
    finally:
        stop_serving(proc)
