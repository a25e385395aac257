"""The atheris harnesses' targets (fuzz/targets.py) replayed on the shipped seed corpus, and on
hypothesis's inputs, in CI: the long fuzzing runs are not in CI, but the harness cannot rot (R-72)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.make_corpus import seeds
from fuzz.targets import EdgeTarget, packet_target

CORPUS = Path(__file__).resolve().parents[2] / "fuzz" / "corpus"


def test_r72_shipped_corpus_is_what_make_corpus_writes() -> None:
    assert {p.stem: p.read_bytes() for p in CORPUS.glob("*.bin")} == seeds()


@pytest.fixture(scope="module")
def edge() -> EdgeTarget:
    return EdgeTarget()


def test_r72_corpus_through_both_targets(edge: EdgeTarget) -> None:
    answered = 0
    for path in sorted(CORPUS.glob("*.bin")):
        data = path.read_bytes()
        packet_target(data)
        edge(data)
        answered += edge.transport.sent_total - answered
    # the signed Access-Requests with Message-Authenticator (3 seeds) are admitted and answered, and
    # the Status-Server (it carries one too) is answered by the edge itself (RFC 5997)
    assert answered == 4


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(seed=st.sampled_from(sorted(seeds().values())), edits=st.lists(st.tuples(st.integers(0, 400),
       st.integers(0, 255)), max_size=4), cut=st.integers(0, 450))
def test_r72_mutated_seeds_through_both_targets(edge: EdgeTarget, seed: bytes, edits: list[tuple[int, int]],
                                               cut: int) -> None:
    data = bytearray(seed)
    for pos, value in edits:
        if pos < len(data):
            data[pos] = value
    mutated = bytes(data[:cut])
    packet_target(mutated)
    edge(mutated)
