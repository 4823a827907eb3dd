"""Prometheus metrics, in the text exposition format, kept per process.

A few counters, gauges and histograms are all the gateway needs, so they are written here rather
than pulling in a client library. With `--workers N` each worker also writes its series to a
directory they share (`worker_metrics`), and whichever worker answers `/metrics` sums them all.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# A series is named by its label values, in the order its metric declared the label names.
Values = tuple[str, ...]
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


def _labels(names: tuple[str, ...], values: Values) -> str:
    if not names:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in zip(names, values, strict=True))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass
class Snapshot:
    """One process's series at one moment: metric name -> label values -> value (a histogram's:
    its bucket counts, +Inf, then the sum)."""

    counters: dict[str, dict[Values, float]]
    histograms: dict[str, dict[Values, list[float]]]
    gauges: dict[str, dict[Values, float]]

    def add(self, other: Snapshot) -> None:
        """Sum `other`'s series into these (a series only one of them has is kept as it is)."""
        for mine, theirs in ((self.counters, other.counters), (self.gauges, other.gauges)):
            for name, series in theirs.items():
                into = mine.setdefault(name, {})
                for key, value in series.items():
                    into[key] = into.get(key, 0.0) + value
        for name, histograms in other.histograms.items():
            into_h = self.histograms.setdefault(name, {})
            for key, counts in histograms.items():
                known = into_h.get(key)
                into_h[key] = (
                    list(counts)
                    if known is None
                    else [a + b for a, b in zip(known, counts, strict=True)]
                )

    def to_json(self) -> dict[str, Any]:
        return {
            kind: {
                name: [[list(k), v] for k, v in series.items()] for name, series in group.items()
            }
            for kind, group in (
                ("counters", self.counters),
                ("histograms", self.histograms),
                ("gauges", self.gauges),
            )
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        def group(kind: str) -> dict[str, dict[Values, Any]]:
            return {name: {tuple(k): v for k, v in series} for name, series in data[kind].items()}

        return cls(group("counters"), group("histograms"), group("gauges"))


@dataclass(frozen=True)
class Family:
    kind: str  # counter | gauge | histogram
    text: str
    labels: tuple[str, ...]


class Metrics:
    """Counters, gauges and histograms, each declared once with its label names; a series is
    then updated with its label values alone (positional: every request updates several, and
    keyword labels cost a dict and a sort each time)."""

    def __init__(self) -> None:
        self._families: dict[str, Family] = {}
        self._counters: dict[str, dict[Values, float]] = {}
        self._histograms: dict[str, dict[Values, list[float]]] = {}
        self._gauges: dict[str, Callable[[], dict[Values, float]]] = {}

    def counter(self, name: str, text: str, labels: tuple[str, ...] = ()) -> None:
        self._families[name] = Family("counter", text, labels)
        self._counters[name] = {}

    def histogram(self, name: str, text: str, labels: tuple[str, ...] = ()) -> None:
        self._families[name] = Family("histogram", text, labels)
        self._histograms[name] = {}

    def gauge(
        self,
        name: str,
        text: str,
        read: Callable[[], dict[Values, float]],
        labels: tuple[str, ...] = (),
    ) -> None:
        self._families[name] = Family("gauge", text, labels)
        self._gauges[name] = read

    def inc(self, name: str, *values: str, by: float = 1.0) -> None:
        series = self._counters[name]
        try:
            series[values] += by
        except KeyError:
            self._check(name, values)
            series[values] = by

    def observe(self, name: str, seconds: float, *values: str) -> None:
        counts = self._histograms[name].get(values)
        if counts is None:
            self._check(name, values)
            # one count per bucket, then +Inf, then the sum
            counts = self._histograms[name][values] = [0.0] * (len(LATENCY_BUCKETS_S) + 2)
        counts[bisect.bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        counts[-1] += seconds

    def _check(self, name: str, values: Values) -> None:
        labels = self._families[name].labels
        if len(values) != len(labels):
            raise ValueError(f"{name} takes labels {labels}, got values {values}")

    def snapshot(self) -> Snapshot:
        """Every series now (gauges read), as plain data another process can merge."""
        return Snapshot(
            {name: dict(series) for name, series in self._counters.items()},
            {
                name: {k: list(v) for k, v in series.items()}
                for name, series in self._histograms.items()
            },
            {name: read() for name, read in self._gauges.items()},
        )

    def render(self, others: Sequence[Snapshot] = ()) -> str:
        """The text format: this process's series, summed with those of `others` (other worker
        processes serving the same gateway)."""
        merged = self.snapshot()
        for other in others:
            merged.add(other)
        lines: list[str] = []
        for name, series in sorted(merged.counters.items()):
            labels = self._header(lines, name)
            lines += [f"{name}{_labels(labels, k)} {v:g}" for k, v in sorted(series.items())]
        for name, values in sorted(merged.gauges.items()):
            labels = self._header(lines, name)
            lines += [f"{name}{_labels(labels, k)} {v:g}" for k, v in sorted(values.items())]
        for name, histogram in sorted(merged.histograms.items()):
            labels = self._header(lines, name)
            bucket_labels = (*labels, "le")
            for key, counts in sorted(histogram.items()):
                running = 0.0
                for bound, count in zip((*LATENCY_BUCKETS_S, "+Inf"), counts[:-1], strict=True):
                    running += count
                    le = (*key, str(bound))
                    lines.append(f"{name}_bucket{_labels(bucket_labels, le)} {running:g}")
                lines.append(f"{name}_sum{_labels(labels, key)} {counts[-1]:g}")
                lines.append(f"{name}_count{_labels(labels, key)} {running:g}")
        return "\n".join(lines) + "\n"

    def _header(self, lines: list[str], name: str) -> tuple[str, ...]:
        family = self._families[name]
        if family.text:
            lines.append(f"# HELP {name} {family.text}")
        lines.append(f"# TYPE {name} {family.kind}")
        return family.labels
