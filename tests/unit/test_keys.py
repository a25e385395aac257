"""The Redis key schema (quota.keys): R-73, every key of a contract in its hash slot."""

from __future__ import annotations

from quotad.quota import keys as k


def test_session_keys_are_the_schema_keys_in_script_order() -> None:
    ck = k.ContractKeys("C0000123")
    days = ["20261123", "20261122", "20261121"]
    assert ck.session_keys("819000000123", "a01", days) == [
        *ck.pool_keys(), ck.line("819000000123"), ck.live("819000000123"),
        *(ck.usage("819000000123", day) for day in days), ck.session("819000000123", "a01"),
    ]
    assert ck.session_keys("8190", "s", ["20261123"])[0] == "q:{c:C0000123}:c"
    assert ck.session_keys("8190", "s", ["20261123"])[-2] == "q:{c:C0000123}:u:8190:20261123"
    assert ck.session_keys("8190", "s", ["20261123"])[-1] == "q:{c:C0000123}:s:8190:s"
    assert ck.line_keys("8190", ["20261123"]) == ck.session_keys("8190", "s", ["20261123"])[:-1]


def test_a_lines_session_keys_encoded_once_are_the_script_keys() -> None:
    from quotad.quota.model import LineRef
    from quotad.quota.resp import encode_command, flat
    from quotad.quota.runner import line_keys, session_run

    ck, days = k.ContractKeys("C1"), ["20261123", "20261122", "20261121"]
    line = line_keys(LineRef("C1", "8190"), days)
    for sid in ("s1", "s2", "s1", "sé"):
        run = session_run(line, sid)
        assert flat(run) == ck.session_keys("8190", sid, days)
        assert encode_command((run,)) == encode_command(tuple(ck.session_keys("8190", sid, days)))
        assert (line["session"], line["owner"]) == (ck.session("8190", sid), k.session_owner("C1", "8190", sid))
    assert line["today"] == ck.usage("8190", "20261123") and line["session_prefix"] == ck.session_prefix("8190")


def test_a_lines_keys_are_not_tracked_by_the_cyclic_garbage_collector() -> None:
    """The store keeps one a line (up to index_cache_entries): as objects, every full collection
    walked them all (runner.LineKeys)."""
    import gc

    from quotad.quota.model import LineRef
    from quotad.quota.runner import line_keys, session_run

    line = line_keys(LineRef("C1", "8190"), ["20261123", "20261122", "20261121"])
    session_run(line, "s1")
    line["session_read"] = b"*3..."
    gc.collect()
    assert not gc.is_tracked(line)
    session_run(line, "s2")
    assert not gc.is_tracked(line)
