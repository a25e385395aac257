"""The log writes each event as one whole line in one write, on whatever stderr is now."""

from __future__ import annotations

import io
import json
import sys

import pytest

from quotad import log


class Recording(io.StringIO):
    """A stderr that keeps each write() call apart, as the kernel sees a write-through stream."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return super().write(text)


def test_each_event_leaves_in_one_write_with_its_newline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two processes sharing one stderr (the supervisor and its workers) interleave between calls:
    # an event and its newline written apart once put two events on one line in CI.
    stream = Recording()
    monkeypatch.setattr(sys, "stderr", stream)
    log.setup("info")
    logger = log.get("test_log")
    logger.info("first_event", index=1)
    logger.info("second_event", index=2)
    assert len(stream.calls) == 2
    assert all(call.endswith("\n") and call.count("\n") == 1 for call in stream.calls)
    events = [json.loads(call) for call in stream.calls]
    assert [(e["event"], e["index"]) for e in events] == [("first_event", 1), ("second_event", 2)]


def test_a_stderr_swapped_after_setup_is_the_one_written(monkeypatch: pytest.MonkeyPatch) -> None:
    log.setup("info")
    logger = log.get("test_log")
    later = Recording()
    monkeypatch.setattr(sys, "stderr", later)
    logger.warning("after_swap")
    assert [json.loads(call)["event"] for call in later.calls] == ["after_swap"]
