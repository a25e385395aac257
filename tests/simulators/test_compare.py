"""simulators.compare (`make bench-compare`): its configurations, summaries, ratios, and the skip
without FreeRADIUS (the runs themselves need FreeRADIUS and radload: run by hand, docs/benchmarks.md)."""

from pathlib import Path

import pytest

from simulators import compare


def _run(rps: float, recv: int, server_s: float, redis_s: float) -> dict:
    return {"rps": rps, "recv": recv, "timeouts": 0, "bad_auth": 0, "bad_ma": 0, "wall_s": 10.0,
            "p50_us": 9000, "p99_us": 20000, "p999_us": 30000, "server_cpu_s": server_s, "redis_cpu_s": redis_s}


def test_the_two_freeradius_configurations() -> None:
    plain = compare.freeradius_config(Path("/x"), 1812, 1813, 6390, 16, None)
    quota = compare.freeradius_config(Path("/x"), 1812, 1813, 6390, 16, "abc123")
    assert '%{redis:HGET sub:%{User-Name} pw}' in plain and "INCRBY acct:" in plain and "EVALSHA" not in plain
    assert quota.count("EVALSHA abc123 1 q:%{Calling-Station-Id}") == 2  # authorize and accounting
    assert "INCRBY" not in quota
    for conf in (plain, quota):
        assert conf.count("{") == conf.count("}")
        assert "require_message_authenticator = yes" in conf and "port = 6390" in conf
        assert "start_servers = 16" in conf


def test_summary_and_ratios_count_each_server_with_its_redis() -> None:
    q = compare.summarize("quotad", "pap", [_run(9000, 90000, 9.0, 4.5), _run(10000, 100000, 10.0, 5.0),
                                            _run(11000, 110000, 11.0, 5.5)])
    assert (q["rps"], q["us_server"], q["us_redis"], q["us_total"]) == (10000, 100.0, 50.0, 150.0)
    fr = compare.summarize("fr-redis", "pap", [_run(25000, 250000, 12.5, 2.5)])
    assert fr["us_total"] == 60.0
    assert compare.ratios([q, fr]) == [{"kind": "pap", "against": "fr-redis", "rps_ratio": 0.4, "us_ratio": 2.5}]


def test_without_freeradius_it_says_so_and_exits_0(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(compare, "freeradius_binary", lambda: None)
    monkeypatch.setattr(compare.shutil, "which", lambda name: "/usr/bin/" + name)
    assert compare.main(["--seconds", "1"]) == 0
    assert "FreeRADIUS with its Redis module is not installed" in capsys.readouterr().out
