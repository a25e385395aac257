"""The [publicsafety] section (R-63 heavy use, R-65 fees) and the small RADIUS helpers of R-62."""

from __future__ import annotations

import pytest

from quotad import config
from quotad.aaa.publicsafety import ipv6_prefix_attr, ipv6_prefix_text
from quotad.publicsafety import rules
from quotad.radius import packet as rp


def test_r65_default_fees_are_the_seeds() -> None:
    ps = config.Config().publicsafety
    assert (ps.one_off_yen, ps.pack_yen_per_gb, ps.overage_yen_per_gb, ps.call_flat_yen, ps.sim_change_yen,
            ps.reissue_yen) == (1500, 220, 300, 1080, 1500, 1500)
    assert ps.plan_yen_data == {"1GB": 1200, "3GB": 1650, "10GB": 2450, "30GB": 3750, "org_share": 1050}
    assert ps.plan_yen_voice == {"1GB": 1250, "3GB": 1700, "10GB": 2500, "30GB": 3800, "org_share": 1100}


def test_r65_bad_publicsafety_settings_named() -> None:
    with pytest.raises(config.ConfigError) as err:
        config.from_dict({"publicsafety": {"apns": ["nope.jp"], "plan_yen_voice": {"1GB": 1}, "call_flat_yen": -1,
                                           "heavy_use_days": 0}})
    assert dict(err.value.problems) == {
        "publicsafety.apns": "'nope.jp' is not an APN under [[apns]]",
        "publicsafety.plan_yen_voice": "must give exactly 1GB, 3GB, 10GB, 30GB, org_share",
        "publicsafety.call_flat_yen": "must not be negative",
        "publicsafety.heavy_use_days": "must be between 1 and 31",
    }


def test_r62_apn_named_in_publicsafety_must_exist_any_case() -> None:
    cfg = config.from_dict({"apns": [{"name": "PS.example.jp", "user": "u", "password": "p"}],
                            "publicsafety": {"apns": ["ps.example.jp"]}})
    assert cfg.publicsafety.apns == ("ps.example.jp",)


def test_r62_framed_ipv6_prefix_encoding_and_parsing() -> None:
    expected = rp.attr(rp.FRAMED_IPV6_PREFIX, bytes.fromhex("0040" "20010db800000001"))
    assert ipv6_prefix_attr("2001:db8:0:1::/64") == expected
    assert ipv6_prefix_attr("2001:db8::/48") == rp.attr(rp.FRAMED_IPV6_PREFIX, bytes.fromhex("0030" "20010db80000"))
    assert ipv6_prefix_text(bytes.fromhex("0040" "20010db800000001")) == "2001:db8:0:1::/64"
    assert ipv6_prefix_text(bytes.fromhex("0040" + "20010db8000000010000000000000000")) == "2001:db8:0:1::/64"
    assert ipv6_prefix_text(None) is None
    assert ipv6_prefix_text(b"\x00") == ""  # malformed: never equal to a line's prefix
    assert ipv6_prefix_text(bytes([0, 200, 1])) == ""


@pytest.mark.parametrize(("window", "threshold", "restricted"), [
    (0, 0, False), (10**12, 0, False), (5_000_000_000, 5_000_000_000, False), (5_000_000_001, 5_000_000_000, True),
])
def test_r63_heavy_use_strictly_past_threshold_zero_is_off(window: int, threshold: int, restricted: bool) -> None:
    assert rules.heavy_use_restricted(window, threshold) is restricted


def test_r62_requested_address_none_or_own() -> None:
    assert rules.requested_address_allowed(None, "203.0.113.1")
    assert rules.requested_address_allowed("203.0.113.1", "203.0.113.1")
    assert not rules.requested_address_allowed("203.0.113.2", "203.0.113.1")
    assert not rules.requested_address_allowed("", "203.0.113.1")
