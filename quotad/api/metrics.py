"""API metrics (R-74), on the daemon's registry; labelled by route template, never by id."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from quotad.metrics import REGISTRY

API_REQUESTS = Counter(
    "quotad_api_requests_total",
    "HTTP API requests answered, by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
API_LATENCY = Histogram(
    "quotad_api_request_duration_seconds",
    "HTTP API request latency, by route template and method.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)


def observe(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its latency."""
    API_REQUESTS.labels(route, method, str(status)).inc()
    API_LATENCY.labels(route, method).observe(seconds)
