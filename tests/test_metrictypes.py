"""
The per-read counters and histogram (numberok.metrictypes): plain numbers
on the reactor thread, served by the same Prometheus registry as every other
metric, in the same exposition format.
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from numberok.metrics import Metrics
from numberok.metrictypes import ReactorCounter, ReactorHistogram


def test_labelled_counter_is_served_by_its_registry_with_total_suffix():
    registry = CollectorRegistry()
    reads = ReactorCounter("numberok_test_reads", "Reads.", ["source"],
                           registry=registry)
    demo = reads.labels(source="demo")
    demo.inc()
    demo.inc(2)
    reads.labels("ingest").inc()
    assert registry.get_sample_value("numberok_test_reads_total",
                                     {"source": "demo"}) == 3
    assert registry.get_sample_value("numberok_test_reads_total",
                                     {"source": "ingest"}) == 1
    text = generate_latest(registry).decode()
    assert "# TYPE numberok_test_reads_total counter" in text
    assert 'numberok_test_reads_total{source="demo"} 3.0' in text


def test_counter_refuses_the_wrong_labels():
    reads = ReactorCounter("numberok_test_reads", "Reads.", ["source"])
    with pytest.raises(ValueError):
        reads.labels(state="Lost")


def test_histogram_counts_a_value_on_a_bound_in_that_bucket():
    registry = CollectorRegistry()
    latency = ReactorHistogram("numberok_test_seconds", "Latency.",
                               buckets=(0.001, 0.01, 0.1), registry=registry)
    for value in (0.001, 0.005, 0.5):
        latency.observe(value)

    def bucket(le: str) -> float:
        return registry.get_sample_value("numberok_test_seconds_bucket",
                                         {"le": le})
    assert [bucket("0.001"), bucket("0.01"), bucket("0.1"),
            bucket("+Inf")] == [1, 2, 2, 3]
    assert registry.get_sample_value("numberok_test_seconds_count") == 3
    assert registry.get_sample_value(
        "numberok_test_seconds_sum") == pytest.approx(0.506)


def test_servers_metrics_render_the_per_read_ones_with_the_rest():
    metrics = Metrics()
    metrics.reads.labels(source="demo").inc()
    metrics.readToEvent.observe(0.002)
    metrics.connectionsAccepted.inc()
    text = metrics.render().decode()
    assert 'numberok_reads_total{source="demo"} 1.0' in text
    assert "numberok_read_to_event_seconds_count 1.0" in text
    assert "numberok_connections_accepted_total 1.0" in text
