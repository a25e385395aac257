"""quotad.metrics in one process: counters and histograms count in plain numbers and hand them to
prometheus_client when read, so every read sees exactly what prometheus_client's own classes
would show (issue 20: an increment at a tenth of the instructions)."""

import math

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from quotad import metrics

BUCKETS = (0.0005, 0.001, 0.01, 0.1, 1.0)
OBSERVED = (0.0, 0.0004, 0.0005, 0.00051, 0.001, 0.05, 0.1, 0.7, 1.0, 3.0, math.inf, 0.002)


def _pair(kind: str) -> tuple[CollectorRegistry, object, CollectorRegistry, object]:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    if kind == "counter":
        a = metrics._PlainCounter("t_total", "t", ["k"], registry=ours)
        b = prometheus_client.Counter("t_total", "t", ["k"], registry=theirs)
    else:
        a = metrics._PlainHistogram("t_seconds", "t", ["k"], buckets=BUCKETS, registry=ours)
        b = prometheus_client.Histogram("t_seconds", "t", ["k"], buckets=BUCKETS, registry=theirs)
    return ours, a, theirs, b


def _without_created(text: bytes) -> list[str]:
    return [line for line in text.decode().splitlines() if "_created" not in line]


def test_counters_read_as_prometheus_clients_own_after_each_step() -> None:
    ours, a, theirs, b = _pair("counter")
    for step, (label, amount) in enumerate([("x", 1), ("x", 2.5), ("y", 1), ("x", 0), ("y", 7)]):
        a.labels(label).inc(amount)  # type: ignore[attr-defined]
        b.labels(label).inc(amount)  # type: ignore[attr-defined]
        if step % 2:
            assert _without_created(generate_latest(ours)) == _without_created(generate_latest(theirs))
    assert ours.get_sample_value("t_total", {"k": "x"}) == 3.5
    assert _without_created(generate_latest(ours)) == _without_created(generate_latest(theirs))
    with pytest.raises(ValueError):
        a.labels("x").inc(-1)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="missing label values"):
        a.inc()  # type: ignore[attr-defined]


def test_histograms_read_as_prometheus_clients_own_bucket_by_bucket() -> None:
    ours, a, theirs, b = _pair("histogram")
    for i, value in enumerate(OBSERVED):
        a.labels("x").observe(value)  # type: ignore[attr-defined]
        b.labels("x").observe(value)  # type: ignore[attr-defined]
        if i in (0, 5):
            assert _without_created(generate_latest(ours)) == _without_created(generate_latest(theirs))
    assert _without_created(generate_latest(ours)) == _without_created(generate_latest(theirs))
    assert ours.get_sample_value("t_seconds_count", {"k": "x"}) == len(OBSERVED)
    with pytest.raises(ValueError, match="missing label values"):
        a.observe(1.0)  # type: ignore[attr-defined]
    # read again with nothing new: nothing counted twice
    assert _without_created(generate_latest(ours)) == _without_created(generate_latest(theirs))


def test_the_daemons_metrics_are_the_plain_kind_in_one_process() -> None:
    if metrics.MULTIPROCESS:
        pytest.skip("a worker of several: written through to the shared files")
    assert isinstance(metrics.RADIUS_REQUESTS, metrics._PlainCounter)
    assert isinstance(metrics.RADIUS_LATENCY, metrics._PlainHistogram)
    child = metrics.RADIUS_REQUESTS.labels("access", "accept")
    before = metrics.REGISTRY.get_sample_value("quotad_radius_requests_total", {"kind": "access", "outcome": "accept"})
    child.inc()
    after = metrics.REGISTRY.get_sample_value("quotad_radius_requests_total", {"kind": "access", "outcome": "accept"})
    assert after == (before or 0) + 1


def test_each_garbage_collection_is_timed_by_generation() -> None:
    import gc

    metrics.time_gc_pauses()
    metrics.time_gc_pauses()  # once a process: a second call adds no second callback

    def count(generation: int) -> float:
        value = metrics.REGISTRY.get_sample_value("quotad_gc_pause_seconds_count", {"generation": str(generation)})
        return value or 0.0

    enabled = gc.isenabled()
    gc.disable()  # only the collections asked for below
    try:
        before = [count(g) for g in range(3)]
        gc.collect(2)
        gc.collect(0)
        after = [count(g) for g in range(3)]
    finally:
        if enabled:
            gc.enable()
    assert [a - b for a, b in zip(after, before, strict=True)] == [1.0, 0.0, 1.0]
    assert metrics.REGISTRY.get_sample_value("quotad_gc_pause_seconds_sum", {"generation": "2"}) > 0
