"""docs/operations.md names only what exists: every alert has its runbook entry and every runbook
entry an alert, every log event in its table is one quotad logs, every setting it names is a
setting, every quotad command line it shows is one quotad's parser accepts, the settings it says a
reload applies are the ones it does."""

from __future__ import annotations

import re
import shlex
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from quotad import cli, reload
from quotad.config import Config

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "operations.md").read_text()
LOG_CALL = re.compile(r'\.(?:debug|info|warning|error|exception)\(\s*(f?)"([a-z_{}]+)"')


def logged_events() -> set[str]:
    events: set[str] = set()
    for path in (ROOT / "quotad").rglob("*.py"):
        for is_f, name in LOG_CALL.findall(path.read_text()):
            if is_f:  # coa.py: f"coa_{outcome}" for the outcomes nak and timeout
                assert name == "coa_{outcome}", f"{path}: {name}"
                events |= {"coa_nak", "coa_timeout"}
            else:
                events.add(name)
    return events


def test_every_alert_has_a_runbook_entry_and_back() -> None:
    document = yaml.safe_load((ROOT / "config" / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in document["groups"] for rule in group["rules"]}
    runbook = DOC.split("## Runbook", 1)[1]
    entries = set(re.findall(r"^\*\*(Quotad[A-Za-z]+)\*\* — ", runbook, re.M))
    assert entries == alerts


def test_every_log_event_in_the_table_is_logged() -> None:
    section = DOC.split("## Logs", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])}
    assert len(named) == 42
    assert named <= logged_events(), named - logged_events()


def test_every_setting_named_exists() -> None:
    sections = {f.name: f.type for f in fields(Config)}
    named = set(re.findall(r"`(server|redis|quota|coa|radsec|api)\.([a-z_]+)`", DOC))
    assert len(named) == 20
    for section, key in named:
        settings = getattr(Config(), section)
        assert key in {f.name for f in fields(settings)}, f"{section}.{key}"
    assert set(sections) >= {s for s, _ in named}


@pytest.mark.parametrize("line", sorted(set(re.findall(r"^/opt/quotad/bin/quotad ([^#\n]+)", DOC, re.M))))
def test_every_quotad_command_shown_parses(line: str) -> None:
    argv = shlex.split(line)
    if argv == ["--version"]:
        with pytest.raises(SystemExit) as exc:
            cli._parser().parse_args(argv)
        assert exc.value.code == 0
        return
    args = cli._parser().parse_args(argv)
    assert args.command in ("check-config", "redis-status")


def test_the_reload_section_names_what_a_reload_applies() -> None:
    section = DOC.split("### Reloading the configuration (SIGHUP)", 1)[1].split("\n### ", 1)[0]
    sentence = section.split("A reload applies", 1)[1].split("Every other setting", 1)[0]
    spelled = {"clients": "`[[clients]]`", "api.tokens": "`[[api.tokens]]`", "coa.port": "`coa.port`",
               "server.log_level": "`server.log_level`"}
    assert set(spelled) == set(reload.RELOADABLE)
    assert {key for key, text in spelled.items() if text in sentence} == set(reload.RELOADABLE)
    outcomes = set(re.findall(r"`([a-z_]+)`", section.split("quotad_config_reloads_total{outcome}", 1)[1]))
    assert outcomes >= set(reload.OUTCOMES)
