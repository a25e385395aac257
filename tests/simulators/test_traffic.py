"""Traffic models (issue 6): LTE and 3G models load from the shipped file, and a handset never
moves more than rate * time (hypothesis)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.traffic import (
    ACTIVITIES,
    Moved,
    Rate,
    Traffic,
    TrafficModel,
    TrafficModelError,
    capped_octets,
    load_models,
)

MODELS = load_models()


def test_shipped_models_have_the_four_activities_for_lte_and_3g() -> None:
    assert sorted(MODELS) == ["3g", "lte", "lte_heavy"]
    for model in MODELS.values():
        assert tuple(a.name for a in model.activities) == ACTIVITIES
    assert MODELS["lte"].activities[2].down_bps == 1_500_000
    assert MODELS["3g"].activities[2].down_bps == 700_000


@settings(max_examples=300, deadline=None)
@given(
    radio=st.sampled_from(["lte", "3g", "lte_heavy"]),
    seed=st.integers(0, 2**32),
    steps=st.lists(st.floats(0.0, 7200.0, allow_nan=False), min_size=1, max_size=20),
    down=st.integers(0, 200_000_000),
    up=st.integers(0, 50_000_000),
    zero_rating=st.booleans(),
)
def test_never_more_than_rate_times_time(
    radio: str, seed: int, steps: list[float], down: int, up: int, zero_rating: bool
) -> None:
    """Issue 6: whatever the activity, each step moves at most rate * seconds / 8 capped octets each
    way; zero-rated octets (R-23) only on a profile with the rule, never more than their share."""
    traffic = Traffic(MODELS[radio], random.Random(seed))
    top = max(a.down_bps for a in MODELS[radio].activities)
    for seconds in steps:
        moved = traffic.step(seconds, Rate(down, up), zero_rating)
        assert 0 <= moved.down <= down * seconds / 8
        assert 0 <= moved.up <= up * seconds / 8
        if not zero_rating:
            assert moved.exempt_down == moved.exempt_up == 0
        assert moved.exempt_down <= 0.5 * top * seconds / 8  # the largest shipped share is 0.5


def test_zero_rated_share_passes_beside_the_low_cap() -> None:
    """R-23: an hour idle (500 bit/s down, half of it push mail and DNS) at 200 kbit/s with the rule:
    the zero-rated half goes beside the cap, reported apart; without the rule it is all capped."""
    idle = MODELS["lte"].activities[0]
    assert (idle.name, idle.down_bps, idle.zero_rated_share) == ("idle", 500, 0.5)
    only_idle = TrafficModel("idle", (idle,))
    with_rule = Traffic(only_idle, random.Random(1)).step(3600, Rate(200_000, 200_000), zero_rating=True)
    without = Traffic(only_idle, random.Random(1)).step(3600, Rate(200_000, 200_000), zero_rating=False)
    assert with_rule == Moved(112_500, 45_000, 112_500, 45_000)
    assert without == Moved(225_000, 90_000, 0, 0)


def test_low_speed_cap_binds_video() -> None:
    """At 200 kbps (R-20 `low`) an hour of video moves exactly 200 kbps * 3600 s / 8 = 90 MB."""
    assert capped_octets(3_000_000, 200_000, 3600) == 90_000_000
    assert capped_octets(2_000, 200_000, 3600) == 900_000


def test_same_seed_same_traffic() -> None:
    a = Traffic(MODELS["lte"], random.Random(7))
    b = Traffic(MODELS["lte"], random.Random(7))
    rate = Rate(112_500_000, 37_500_000)
    assert [a.step(600, rate) for _ in range(20)] == [b.step(600, rate) for _ in range(20)]


def test_bad_model_file_names_the_key(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "t.toml"
    path.write_text("[lte.video]\ndown_bps = 1\nweight = 1\ndwell_seconds = 1\n")
    with pytest.raises(TrafficModelError, match=r"lte\.video\.up_bps: missing"):
        load_models(path)
