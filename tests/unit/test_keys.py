"""The Redis key schema (quota.keys): R-73, every key of a contract in its hash slot."""

from __future__ import annotations

from quotad.quota import keys as k


def test_session_keys_are_the_schema_keys_in_script_order() -> None:
    ck = k.ContractKeys("C0000123")
    days = ["20261123", "20261122", "20261121"]
    assert ck.session_keys("819000000123", "a01", days) == [
        *ck.pool_keys(), ck.line("819000000123"), ck.live("819000000123"), ck.session("819000000123", "a01"),
        *(ck.usage("819000000123", day) for day in days),
    ]
    assert ck.session_keys("8190", "s", ["20261123"])[0] == "q:{c:C0000123}:c"
    assert ck.session_keys("8190", "s", ["20261123"])[-1] == "q:{c:C0000123}:u:8190:20261123"
