"""config/alerts.yml: every rule is well formed, every metric it names is one quotad exports, every
label value it selects is one quotad sets; quotad_redis_up follows Redis without a /readyz probe."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from quotad import metrics
from quotad.aaa.rejects import Reject
from quotad.quota.embedded import EmbeddedRedis
from quotad.radius import coa
from quotad.radius.reasons import CoaOutcome
from quotad.radius.server import _KIND, Drops
from tests.integration.daemon_fixture import daemon_config, running_daemon
from tests.integration.test_noc import exported_names

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "config" / "alerts.yml"
PROMETHEUS_OWN = {"up"}  # written by Prometheus itself for every scrape target
SELECTOR = re.compile(r"\b(quotad_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r'([a-z_]+)\s*(=~|=|!=|!~)\s*"([^"]*)"')


def rules() -> list[dict[str, object]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def label_values() -> dict[tuple[str, str], set[str]]:
    """The values quotad gives the labels the rules select on, from the code that sets them."""
    coa_kinds = set(coa._CODES)
    return {
        ("quotad_radius_dropped_total", "reason"): set(Drops().by_reason),
        ("quotad_radius_rejects_total", "reason"): {str(r) for r in Reject},
        ("quotad_radius_requests_total", "kind"): set(_KIND.values()),
        ("quotad_coa_requests_total", "outcome"): {str(o) for o in CoaOutcome},
        ("quotad_coa_requests_total", "kind"): coa_kinds,
    }


def test_rules_are_complete_alerts() -> None:
    found = rules()
    names = [r["alert"] for r in found]
    assert len(names) == 16
    assert len(set(names)) == len(names)
    for rule in found:
        assert set(rule) - {"for"} == {"alert", "expr", "labels", "annotations"}, rule["alert"]
        assert rule["labels"] == {"severity": "critical"} or rule["labels"] == {"severity": "warning"}
        assert set(rule["annotations"]) == {"summary", "description"}  # type: ignore[arg-type]


def test_every_alert_names_exported_metrics() -> None:
    exported = exported_names()
    for rule in rules():
        expr = str(rule["expr"])
        named = set(re.findall(r"\bquotad_[a-z0-9_]+", expr))
        assert named or set(re.findall(r"^[a-z_]+", expr)) <= PROMETHEUS_OWN, expr
        assert named <= exported, f"{rule['alert']}: {named - exported} not exported"


def test_every_selected_label_value_is_one_quotad_sets() -> None:
    known = label_values()
    checked = 0
    for rule in rules():
        for metric, matchers in SELECTOR.findall(str(rule["expr"])):
            for label, op, value in MATCHER.findall(matchers):
                values = known.get((metric.removesuffix("_bucket"), label))
                if values is None:
                    continue
                wanted = value.split("|") if op == "=~" else [value]
                assert set(wanted) <= values, f"{rule['alert']}: {metric}{{{label}}} {set(wanted) - values}"
                checked += len(wanted)
    assert checked == 12


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Prometheus) not installed")
def test_promtool_accepts_the_rules() -> None:
    out = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 16 rules found" in out.stdout


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Prometheus) not installed")
def test_promtool_rule_tests_pass() -> None:
    """Alerts fire, or stay quiet, on synthetic series (tests/data/alerts-test.yml)."""
    out = subprocess.run(["promtool", "test", "rules", str(ROOT / "tests" / "data" / "alerts-test.yml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


async def test_redis_up_follows_redis_without_a_probe(tmp_path: Path) -> None:
    """quotad_redis_up is set by quotad's own PING (nobody calls /readyz here): 1, then 0 once
    Redis is gone."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = EmbeddedRedis(data_dir=tmp_path, port=port)
    server.start()
    try:
        async with running_daemon(daemon_config(server.url)) as daemon:
            await asyncio.sleep(0.5)
            assert metrics.REGISTRY.get_sample_value("quotad_redis_up") == 1
            server.stop()
            checker = asyncio.ensure_future(daemon._sample_gauges(redis_check_seconds=0.1))
            for _ in range(50):
                await asyncio.sleep(0.1)
                if metrics.REGISTRY.get_sample_value("quotad_redis_up") == 0:
                    break
            checker.cancel()
            assert metrics.REGISTRY.get_sample_value("quotad_redis_up") == 0
    finally:
        server.stop()
