"""The soak's verdict (issue #8's load criterion, R-71/R-73): zero errors, flat memory, every
segment's p99 within 2x the reference (the second segment; the first is warm-up)."""

from __future__ import annotations

from typing import Any

from simulators.soak import verdict


def row(p99: float, rss: float, errors: int = 0, timeouts: int = 0) -> dict[str, Any]:
    return {"sent": 1000, "errors": errors, "timeouts": timeouts, "p99_ms": p99, "quotad_rss_mb": rss,
            "redis_rss_mb": 50.0}


def test_r73_steady_soak_passes_and_warm_up_is_not_judged() -> None:
    result = verdict([row(500.0, 100.0), row(10.0, 110.0), row(19.9, 112.0), row(15.0, 111.0)], 20.0)
    assert result["ok"] is True
    assert result["p99_reference_ms"] == 10.0 and result["p99_worst_ms"] == 19.9
    assert result["quotad_rss_growth_mb"] == 1.0 and result["requests"] == 4000


def test_r73_a_segment_past_twice_the_reference_fails() -> None:
    result = verdict([row(5.0, 100.0), row(10.0, 100.0), row(20.1, 100.0)], 20.0)
    assert result["ok"] is False and result["p99_ratio"] == 2.01


def test_r71_any_error_or_timeout_fails() -> None:
    assert verdict([row(5.0, 100.0), row(5.0, 100.0, timeouts=1)], 20.0)["ok"] is False
    assert verdict([row(5.0, 100.0, errors=1), row(5.0, 100.0)], 20.0)["ok"] is False


def test_r73_memory_growth_past_the_bound_fails() -> None:
    result = verdict([row(5.0, 100.0), row(5.0, 100.0), row(5.0, 120.5)], 20.0)
    assert result["ok"] is False and result["quotad_rss_growth_mb"] == 20.5


def test_r73_short_run_reference_replaces_the_second_segment() -> None:
    rows = [row(500.0, 100.0), row(300.0, 100.0), row(30.0, 100.0)]
    assert verdict(rows, 20.0)["ok"] is True  # judged against a poor second segment, it passes
    judged = verdict(rows, 20.0, reference_p99=10.0)
    assert judged["ok"] is False and judged["p99_reference_ms"] == 10.0 and judged["p99_ratio"] == 30.0
