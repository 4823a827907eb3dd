"""Prometheus metrics, in the text exposition format, kept per process.

A few counters, gauges and histograms are all the gateway needs, so they are written here rather
than pulling in a client library. With `--workers N` each process reports its own; scrape each
worker, or run one process per port.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable

Labels = tuple[tuple[str, str], ...]
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    def __init__(self) -> None:
        self._counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._histograms: dict[str, dict[Labels, list[float]]] = defaultdict(dict)
        self._gauges: dict[str, Callable[[], dict[Labels, float]]] = {}
        self._help: dict[str, tuple[str, str]] = {}

    def describe(self, name: str, kind: str, text: str) -> None:
        self._help[name] = (kind, text)

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        self._counters[name][tuple(sorted(labels.items()))] += value

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        counts = self._histograms[name].get(key)
        if counts is None:
            # one count per bucket, then +Inf, then the sum
            counts = self._histograms[name][key] = [0.0] * (len(LATENCY_BUCKETS_S) + 2)
        counts[bisect.bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        counts[-1] += seconds

    def gauge(self, name: str, read: Callable[[], dict[Labels, float]]) -> None:
        self._gauges[name] = read

    def render(self) -> str:
        lines: list[str] = []
        for name, series in sorted(self._counters.items()):
            self._header(lines, name, "counter")
            lines += [f"{name}{_labels(k)} {v:g}" for k, v in sorted(series.items())]
        for name, read in sorted(self._gauges.items()):
            self._header(lines, name, "gauge")
            lines += [f"{name}{_labels(k)} {v:g}" for k, v in sorted(read().items())]
        for name, series in sorted(self._histograms.items()):
            self._header(lines, name, "histogram")
            for key, counts in sorted(series.items()):
                running = 0.0
                for bound, count in zip((*LATENCY_BUCKETS_S, "+Inf"), counts[:-1], strict=True):
                    running += count
                    le = (("le", str(bound)),)
                    lines.append(f"{name}_bucket{_labels(key + le)} {running:g}")
                lines.append(f"{name}_sum{_labels(key)} {counts[-1]:g}")
                lines.append(f"{name}_count{_labels(key)} {running:g}")
        return "\n".join(lines) + "\n"

    def _header(self, lines: list[str], name: str, default_kind: str) -> None:
        kind, text = self._help.get(name, (default_kind, ""))
        if text:
            lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")
