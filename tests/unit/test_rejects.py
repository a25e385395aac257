"""aaa.rejects: one spelling per reject reason, shared with the attach scripts."""

from __future__ import annotations

import re
from pathlib import Path

from quotad.aaa.rejects import Reject
from quotad.quota.model import STATUSES

SCRIPTS = Path(__file__).resolve().parents[2] / "quotad" / "quota" / "scripts"


def refusals(script: str) -> set[str]:
    """The reasons a script answers with: refuse('x') and a one-word reply {'x'}."""
    text = (SCRIPTS / script).read_text()
    return set(re.findall(r"refuse\('(\w+)'\)", text)) | set(re.findall(r"return \{'(\w+)'\}", text))


def test_every_reason_the_attach_scripts_give_is_one_of_ours() -> None:
    said = refusals("attach.lua") | refusals("ps_attach.lua")
    assert said == {"unknown", "not_started", "card_pending", "card_replaced", "identity_unverified", "unknown_sim",
                    "terminated"}
    assert all(Reject.of(reason).value == reason for reason in said)


def test_a_line_status_other_than_active_is_a_reason() -> None:
    """attach.lua refuses a line that is not active with its status."""
    assert {Reject.of(s).value for s in STATUSES if s != "active"} == {"suspended", "terminated"}


def test_one_spelling_and_every_reason_has_its_text() -> None:
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", r.value) for r in Reject)
    assert Reject.NO_ADDRESS.text == "No address available"
    assert len({r.text for r in Reject}) == len(Reject)


def test_an_unknown_refusal_is_told_as_the_line_not_active() -> None:
    assert (Reject.of("something new"), Reject.of(None), Reject.UNKNOWN.text) == (
        Reject.UNKNOWN, Reject.UNKNOWN, "Line is not active")
