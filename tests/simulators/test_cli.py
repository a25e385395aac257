"""`quotad-sim` commands as a user runs them (issue 6): the shipped scenario in virtual time on a
private redis-server, as JSON; a scenario without --virtual is refused with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulators import cli, trace
from tests.simulators.test_scenario import FAMILY


def test_scenario_virtual_json_on_a_private_redis(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Two days of the shipped family month: JSON report, and the recorded trace parses."""
    recorded = tmp_path / "month.jsonl"
    assert cli.main(["scenario", str(FAMILY), "--virtual", "--days", "2", "--json", "--record", str(recorded)]) == 0
    out = json.loads(capsys.readouterr().out)
    events = trace.load(recorded)
    assert [e.event for e in events][:3] == ["attach"] * 3
    assert {e.msisdn for e in events if e.event == "attach"} == {"819000000101", "819000000102", "819000000103"}
    assert out["scenario"] == "family_share, one month, three lines"
    assert [d["date"] for d in out["days"]] == ["2026-11-01", "2026-11-02"]
    assert sorted(out["used"]) == ["819000000101", "819000000102", "819000000103"]
    for msisdn, moved in out["used"].items():
        counted = out["counted"][msisdn]
        assert counted["high"] + counted["low"] + out["zero_rated"][msisdn] == moved


def test_scenario_needs_virtual(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["scenario", str(FAMILY)]) == 2
    assert "only --virtual" in capsys.readouterr().err


def test_bad_trace_exits_2_naming_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t": 0, "event": "attach", "session": "a", "msisdn": "1"}\n'
                   '{"t": 1, "event": "jump", "session": "a"}\n')
    assert cli.main(["replay", str(bad), "--coa-port", "0"]) == 2
    assert "quotad-sim replay: line 2: event: must be one of attach" in capsys.readouterr().err


def test_bad_mix_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["load", "--mix", "pap=1,coa=2", "--duration", "1"]) == 2
    assert "unknown kind 'coa'" in capsys.readouterr().err
