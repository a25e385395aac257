"""Load mode (issue 6): the mix and its interleaving, the report's arithmetic, and a short run of
several generator processes against a real quotad process (real Redis, real UDP) with zero
errors, zero timeouts, and quotad's own counters on /metrics equal to what was sent (R-74)."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators import load
from tests.conftest import free_port
from tests.e2e.test_daemon_process import _wait_ready

LINES = 60


def test_mix_parses_and_interleaves_evenly() -> None:
    assert load.parse_mix("auth=70,acct=30") == (("pap", 70), ("acct", 30))
    # smooth weighted round robin: 7 PAP and 3 accounting per 10, never two accounting in a row
    assert load.pattern((("pap", 70), ("acct", 30))) == ("pap", "acct", "pap", "pap", "pap", "acct", "pap", "pap",
                                                          "acct", "pap")
    assert load.pattern((("pap", 2), ("chap", 1), ("acct", 1))) == ("pap", "chap", "acct", "pap")
    with pytest.raises(load.LoadError, match="unknown kind 'coa'"):
        load.parse_mix("coa=1")
    with pytest.raises(load.LoadError, match="every weight is 0"):
        load.parse_mix("pap=0")


def test_percentiles_nearest_rank() -> None:
    report = load.LoadReport(load.LoadSpec(), 2.0, latency_us=list(range(1, 1001)))
    assert [report.percentile(q) for q in load.PERCENTILES] == [500, 900, 990, 999]


@pytest.fixture(params=[1, 2], ids=["1-worker", "2-workers"])
def quotad(redis_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, int]]:
    ports = {"auth": free_port(2), "acct": free_port(2), "http": free_port()}
    conf = tmp_path / "quotad.toml"
    conf.write_text(
        f'[server]\nauth_port = {ports["auth"]}\nacct_port = {ports["acct"]}\nhttp_port = {ports["http"]}\n'
        f'workers = {request.param}\nlog_level = "warning"\n[redis]\nurl = "{redis_url}"\n'
    )
    subprocess.run([sys.executable, "-m", "simulators.cli", "provision", "--lines", str(LINES), "--redis", redis_url],
                   check=True, capture_output=True)
    proc = subprocess.Popen([sys.executable, "-m", "quotad.cli", "serve", "--config", str(conf)],
                            stderr=subprocess.PIPE)
    try:
        _wait_ready(ports["http"], proc)
        yield ports
    finally:
        proc.terminate()
        proc.wait(10)


def metrics(http_port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    found = {}
    for m in re.finditer(r"^(quotad_radius_(?:requests|dropped)_total\{[^}]*\}) (\S+)$", text, re.M):
        found[m.group(1)] = float(m.group(2))
    return found


def test_short_load_run_zero_errors_and_metrics_match(quotad: dict[str, int]) -> None:
    """Two generator processes, open loop at 300/s for 1.5 s, PAP:CHAP:accounting = 2:1:1 over 60
    provisioned lines, against quotad with 1 and with 2 workers: every request answered and
    verified, none rejected, and /metrics (summed over the workers) counted exactly the accepts and
    stored accounting requests the generator saw; nothing dropped."""
    spec = load.LoadSpec(auth_port=quotad["auth"], acct_port=quotad["acct"], mix=load.parse_mix("pap=2,chap=1,acct=1"),
                         rate=300, window=128, duration=1.5, lines=LINES, processes=2, timeout=5.0)
    report = load.run(spec, progress=None)
    sent = report.sent
    assert report.timeouts == 0 and dict(report.errors) == {}
    assert sum(sent.values()) == report.answered >= 300
    # the 2:1:1 interleaving, to within the last turn of each of the 2 processes
    assert abs(sent["pap"] - 2 * sent["chap"]) <= 4 and abs(sent["chap"] - sent["acct"]) <= 2
    assert report.by_kind() == {"pap": {"sent": sent["pap"], "accept": sent["pap"]},
                                "chap": {"sent": sent["chap"], "accept": sent["chap"]},
                                "acct": {"sent": sent["acct"], "response": sent["acct"]}}
    counted = metrics(quotad["http"])
    assert counted['quotad_radius_requests_total{kind="access",outcome="accept"}'] == sent["pap"] + sent["chap"]
    assert counted['quotad_radius_requests_total{kind="accounting",outcome="stored"}'] == sent["acct"]
    others = {k: v for k, v in counted.items() if v and "accept" not in k and "stored" not in k}
    assert others == {}
