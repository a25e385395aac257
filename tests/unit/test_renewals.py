"""R-5: the memo of lease renewals lets an Interim skip a renewal made within a quarter lease."""

from __future__ import annotations

import gc

from quotad.quota.renewals import RenewalMemo


def test_r5_renewal_due_after_a_quarter_of_the_lease() -> None:
    memo = RenewalMemo(lease_seconds=600)
    assert memo.window == 150
    assert memo.due("a", 1000.0) is True  # never renewed here
    memo.renewed("a", 1000.0)
    assert memo.due("a", 1000.0) is False
    assert memo.due("a", 1149.9) is False
    assert memo.due("a", 1150.0) is True
    assert memo.due("a", 999.0) is True  # a clock that went back: renew rather than trust it
    assert memo.due("b", 1001.0) is True


def test_r5_release_forgets_the_owner() -> None:
    memo = RenewalMemo(lease_seconds=600)
    memo.renewed("a", 1000.0)
    memo.forget("a")
    assert memo.due("a", 1001.0) is True and len(memo) == 0
    memo.forget("never-seen")  # a Stop for a session leased elsewhere


def test_r5_two_generations_bound_the_memo_without_losing_a_live_entry() -> None:
    memo = RenewalMemo(lease_seconds=400)  # window 100
    memo.renewed("old", 0.0)
    memo.renewed("a", 90.0)
    memo.renewed("b", 100.0)  # rotation: "old" and "a" move to the previous generation
    assert len(memo) == 3
    assert memo.due("a", 189.0) is False  # still within its window from the previous generation
    assert memo.due("old", 150.0) is True
    memo.renewed("c", 200.0)  # second rotation: the previous generation ("old", "a") is dropped
    assert len(memo) == 2
    assert memo.due("a", 200.0) is True and memo.due("b", 199.0) is False and memo.due("c", 200.0) is False


def test_r5_memo_holds_nothing_the_garbage_collector_tracks() -> None:
    memo = RenewalMemo(lease_seconds=7200)
    for i in range(100):
        memo.renewed(f"C{i}\t0900\ts{i}", float(i))
    gc.collect()
    assert all(not gc.is_tracked(v) for v in memo._current.values())


def test_r5_a_full_memo_notes_no_new_owner_and_keeps_the_known_ones() -> None:
    memo = RenewalMemo(lease_seconds=400, max_entries=2)  # window 100
    memo.renewed("a", 0.0, "1", "g1")
    memo.renewed("b", 1.0)
    memo.renewed("c", 2.0, "3", "g3")  # full: not noted; its renewals go to Redis
    assert memo.due("c", 3.0) is True and memo.lease("c", 3.0) is None
    memo.renewed("a", 4.0)  # a known owner is still updated (and keeps its note)
    assert memo.lease("a", 5.0) == ("1", "g1") and len(memo) == 2
    memo.renewed("d", 150.0)  # rotation: "a" and "b" to the previous generation, room again
    memo.renewed("a", 160.0, "9", "g9")
    assert memo.lease("a", 161.0) == ("9", "g9")
    memo.renewed("e", 170.0)  # the current generation is full ("d", "a"): "e" is not noted
    assert memo.due("e", 171.0) is True and len(memo) == 4  # "a" and "b" linger in the previous one
