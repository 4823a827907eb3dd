"""Metrics across the worker processes of one `gigawatt serve --workers N`.

The workers share a listening socket, so a scrape of `/metrics` reaches whichever one takes the
connection. Each worker writes its series to a file of its own in a directory they share (named
in `METRICS_DIR_ENV` by the parent process), every `WRITE_EVERY_S` and whenever it answers a
scrape; the worker answering sums its own series with everyone else's. So a scrape is at most
`WRITE_EVERY_S` behind for the other workers.

Counters and histograms of a worker that has exited stay in the sum (a total must not fall when a
worker is replaced); its gauges (requests queued and in flight) are left out.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from gigawatt.gateway.metrics import Snapshot

METRICS_DIR_ENV = "GIGAWATT_METRICS_DIR"
WRITE_EVERY_S = 1.0


class WorkerMetrics:
    def __init__(self, directory: Path, pid: int | None = None) -> None:
        self.directory = directory
        self.pid = os.getpid() if pid is None else pid

    def write(self, snapshot: Snapshot) -> None:
        """This worker's series, replacing its last ones in one step (a reader never sees half)."""
        path = self.directory / f"{self.pid}.json"
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(snapshot.to_json()))
        os.replace(partial, path)

    def others(self) -> list[Snapshot]:
        """Every other worker's last series; a file that cannot be read is skipped."""
        found = []
        for path in self.directory.glob("*.json"):
            pid = int(path.stem) if path.stem.isdigit() else None
            if pid is None or pid == self.pid:
                continue
            try:
                snapshot = Snapshot.from_json(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # removed meanwhile, or not ours
            if not _alive(pid):
                snapshot.gauges = {}
            found.append(snapshot)
        return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def worker_metrics_from_env() -> WorkerMetrics | None:
    directory = os.environ.get(METRICS_DIR_ENV)
    if not directory:
        return None
    path = Path(directory)
    with contextlib.suppress(OSError):
        path.mkdir(parents=True, exist_ok=True)
    return WorkerMetrics(path)
