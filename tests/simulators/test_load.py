"""Load mode (issue 6): the mix and its interleaving, the report's arithmetic, and a short run of
several generator processes against a real quotad process (real Redis, real UDP) with zero
errors, zero timeouts, and quotad's own counters on /metrics equal to what was sent (R-74)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections import Counter
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


def test_unknown_sim_rejects_make_a_warning_naming_the_command() -> None:
    spec = load.LoadSpec(lines=100)
    report = load.LoadReport(spec, 1.0, sent=Counter({"pap": 80, "chap": 20, "acct": 50}),
                             outcomes=Counter({"pap:accept": 4, "pap:reject": 76, "chap:accept": 1, "chap:reject": 18,
                                               "chap:timeout": 1, "acct:response": 50}),
                             rejects=Counter({"pap:Unknown SIM": 75, "pap:Line is suspended": 1,
                                              "chap:Unknown SIM": 18}))
    assert report.rejects_by_message() == {"Unknown SIM": 93, "Line is suspended": 1}
    assert load.warnings(report) == [
        '93 of 99 Access-Requests answered (94%) were rejected "Unknown SIM": quotad has no line for some of the '
        "MSISDNs 819000000000…819000000099 that --lines 100 sends to, so these figures measure rejects, not "
        "attaches. Create the lines first: quotad-sim provision --lines 100 (in the directory `quotad demo` runs "
        "in; else add --config FILE or --redis URL of the quotad under test), then run the load again."]
    text = load.text(report).splitlines()
    assert text[-1] == "WARNING: " + load.warnings(report)[0]
    assert '  rejects by Reply-Message: "Unknown SIM" 93  "Line is suspended" 1' in text
    assert report.as_dict()["warnings"] == load.warnings(report)
    report.rejects = Counter({"pap:Line is suspended": 1})
    assert load.warnings(report) == [] and not load.text(report).splitlines()[-1].startswith("WARNING")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Path, dict[str, int]]]:
    """The real `quotad demo` (5 demo lines, no simulated ones), on free ports."""
    ports = {"auth": free_port(2), "acct": free_port(2), "http": free_port()}
    conf = tmp_path / "quotad.toml"
    conf.write_text(
        f'[server]\nauth_port = {ports["auth"]}\nacct_port = {ports["acct"]}\nhttp_port = {ports["http"]}\n'
        f'log_level = "warning"\n[redis]\ndata_dir = "{tmp_path / "data"}"\n'
    )
    proc = subprocess.Popen([sys.executable, "-m", "quotad.cli", "demo", "--config", str(conf)],
                            stderr=subprocess.DEVNULL)
    try:
        _wait_ready(ports["http"], proc)
        yield conf, ports
    finally:
        proc.terminate()
        proc.wait(10)


def test_load_on_the_demo_without_provision_says_so_and_fails(demo: tuple[Path, dict[str, int]]) -> None:
    """`quotad-sim load` on `quotad demo` before `quotad-sim provision` (issue 17): the demo holds
    5 of the 40 lines 8190xxxxxxxx the load sends to, so most Access-Requests are rejected "Unknown
    SIM". The run reports them by Reply-Message, ends with a warning naming the command to run, and
    exits 1. After that command the same run is clean and exits 0."""
    conf, ports = demo
    cmd = [sys.executable, "-m", "simulators.cli", "load", "--rate", "200", "--duration", "1", "--mix", "pap=1",
           "--lines", "40", "--processes", "1", "--quiet", "--auth-port", str(ports["auth"]),
           "--acct-port", str(ports["acct"])]
    out = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    sent = report["sent"]
    # lines 1, 2, 3, 11 and 21 are demo lines (819000000001 …); the other 35 of each 40 are unknown
    accepts = sum(1 for n in range(sent) if n % 40 in (1, 2, 3, 11, 21))
    assert report["by_kind"] == {"pap": {"sent": sent, "accept": accepts, "reject": sent - accepts}}
    assert report["rejects"] == {"Unknown SIM": sent - accepts}
    share = f"{(sent - accepts) / sent:.0%}"
    warning = (f'{sent - accepts:,} of {sent:,} Access-Requests answered ({share}) were rejected "Unknown SIM": '
               "quotad has no line for some of the MSISDNs 819000000000…819000000039 that --lines 40 sends to, so "
               "these figures measure rejects, not attaches. Create the lines first: quotad-sim provision --lines "
               "40 (in the directory `quotad demo` runs in; else add --config FILE or --redis URL of the quotad "
               "under test), then run the load again.")
    assert report["warnings"] == [warning]
    assert out.stderr == f"quotad-sim load: warning: {warning}\n"

    text = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert text.returncode == 1
    assert text.stdout.splitlines()[-1].startswith('WARNING: ') and "quotad-sim provision --lines 40" in text.stdout

    prov = subprocess.run([sys.executable, "-m", "simulators.cli", "provision", "--lines", "40", "--config", str(conf)],
                          capture_output=True, text=True, timeout=60)
    assert prov.returncode == 0 and prov.stdout.startswith("provisioned 35 new lines of 40 in "), prov
    time.sleep(5.5)  # quotad remembers for 5 s that a SIM is unknown (QuotaSettings.index_cache_seconds)
    again = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=60)
    assert (again.returncode, again.stderr) == (0, "")
    report = json.loads(again.stdout)
    assert report["by_kind"] == {"pap": {"sent": report["sent"], "accept": report["sent"]}}
    assert (report["rejects"], report["warnings"]) == ({}, [])
