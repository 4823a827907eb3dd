"""The Prometheus text the gateway's metrics render, and how a series is named."""

from __future__ import annotations

import pytest

from gigawatt.gateway.metrics import Metrics


def test_counters_render_with_their_declared_label_names() -> None:
    metrics = Metrics()
    metrics.counter("requests_total", "Requests.", ("model", "plan"))
    metrics.inc("requests_total", "small", "pro")
    metrics.inc("requests_total", "small", "pro", by=2)
    metrics.inc("requests_total", 'a"b\\c\nd', "free")
    text = metrics.render()
    assert "# HELP requests_total Requests.\n# TYPE requests_total counter\n" in text
    assert 'requests_total{model="small",plan="pro"} 3\n' in text
    assert 'requests_total{model="a\\"b\\\\c\\nd",plan="free"} 1\n' in text


def test_a_series_with_the_wrong_number_of_label_values_is_refused() -> None:
    metrics = Metrics()
    metrics.counter("requests_total", "Requests.", ("model", "plan"))
    metrics.histogram("wait_seconds", "Waits.", ("upstream",))
    with pytest.raises(ValueError, match="takes labels"):
        metrics.inc("requests_total", "small")
    with pytest.raises(ValueError, match="takes labels"):
        metrics.observe("wait_seconds", 0.1)
    assert "requests_total{" not in metrics.render()


def test_an_undeclared_metric_is_an_error() -> None:
    with pytest.raises(KeyError):
        Metrics().inc("nobody_declared_this")


def test_histograms_count_cumulatively_and_sum() -> None:
    metrics = Metrics()
    metrics.histogram("wait_seconds", "Waits.", ("upstream",))
    for seconds in (0.001, 0.02, 0.02, 200.0):
        metrics.observe("wait_seconds", seconds, "sim")
    text = metrics.render()
    assert 'wait_seconds_bucket{upstream="sim",le="0.005"} 1\n' in text
    assert 'wait_seconds_bucket{upstream="sim",le="0.025"} 3\n' in text
    assert 'wait_seconds_bucket{upstream="sim",le="120"} 3\n' in text
    assert 'wait_seconds_bucket{upstream="sim",le="+Inf"} 4\n' in text
    assert 'wait_seconds_count{upstream="sim"} 4\n' in text
    assert 'wait_seconds_sum{upstream="sim"} 200.041\n' in text


def test_gauges_are_read_when_rendered() -> None:
    metrics = Metrics()
    depth = {"sim": 0.0}
    metrics.gauge(
        "queue_depth", "Waiting.", lambda: {(k,): v for k, v in depth.items()}, ("upstream",)
    )
    depth["sim"] = 5
    assert 'queue_depth{upstream="sim"} 5\n' in metrics.render()
