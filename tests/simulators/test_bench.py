"""simulators.bench: the report's summary of a kind's runs (pure; the runs themselves need radload)."""

import argparse

import pytest

from simulators.bench import alternate, policies, summarize, variant_label, worker_counts


def _run(rps: float, recv: int, quotad_s: float, redis_s: float) -> dict:
    return {"rps": rps, "recv": recv, "timeouts": 0, "bad_auth": 0, "bad_ma": 0, "wall_s": 10.0,
            "p50_us": 9000, "p99_us": 20000, "p999_us": 30000, "quotad_cpu_s": quotad_s,
            "redis_cpu_s": redis_s, "gen_cpu_s": 2.0}


def test_summary_takes_the_median_run_and_gives_cpu_per_request() -> None:
    runs = [_run(12000, 120000, 11.0, 5.0), _run(14000, 140000, 11.2, 4.9), _run(13000, 130000, 11.7, 5.2)]
    row = summarize("pap", runs)
    assert row == {
        "kind": "pap", "rps": 13000, "timeouts": 0, "errors": 0, "p50_us": 9000, "p99_us": 20000,
        "p999_us": 30000, "cpu_quotad": "117%", "cpu_redis": "52%", "cpu_generator": "20%",
        "us_quotad": 90.0, "us_redis": 40.0,
    }


def test_appendfsync_policies_are_checked() -> None:
    assert policies("always") == ["always"]
    assert policies("always, everysec") == ["always", "everysec"]
    for bad in ("sometimes", "always,always", "always,"):
        with pytest.raises(argparse.ArgumentTypeError):
            policies(bad)


def test_runs_alternate_between_the_daemons() -> None:
    """A B, B A, A B: each policy gets the machine's fast and slow moments alike."""
    seen: list[str] = []
    daemons: dict = {"always": "A", "everysec": "B"}

    def run(q: str) -> dict:
        seen.append(q)
        return {"n": len(seen)}

    results = alternate(daemons, run, 3)
    assert seen == ["A", "B", "B", "A", "A", "B"]
    assert results == {"always": [{"n": 1}, {"n": 4}, {"n": 5}], "everysec": [{"n": 2}, {"n": 3}, {"n": 6}]}


def test_worker_counts_are_checked() -> None:
    assert worker_counts("2") == [2]
    assert worker_counts("1,2") == [1, 2]
    for bad in ("0", "1,1", "two", "1,", "65"):
        with pytest.raises(argparse.ArgumentTypeError):
            worker_counts(bad)


def test_a_daemon_is_named_by_what_differs_between_those_compared() -> None:
    def args(workers: list[int], fsync: list[str]) -> argparse.Namespace:
        return argparse.Namespace(workers=workers, appendfsync=fsync)

    assert variant_label(2, "", args([2], [""])) == ""
    assert variant_label(1, "", args([1, 2], [""])) == "1 worker"
    assert variant_label(2, "", args([1, 2], [""])) == "2 workers"
    assert variant_label(2, "always", args([2], ["always", "everysec"])) == "always"
    assert variant_label(1, "always", args([1, 2], ["always", "everysec"])) == "1 worker, always"
