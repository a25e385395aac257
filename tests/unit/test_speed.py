"""aaa.speed: the one path of a line's speed change, with an in-memory compare-and-set (pure logic)."""

from __future__ import annotations

from quotad import metrics
from quotad.aaa.speed import Push, SpeedChanges
from quotad.policy.plans import MB, Plan, PlanCatalog
from quotad.quota.model import LineFacts, LineRef

LINE = LineRef("c1", "819000000001")
CATALOG = PlanCatalog({"light": Plan("light", 1, 0, 366 * MB)})


class Speeds:
    """The line's speed field with set_speed's compare-and-set."""

    def __init__(self, speed: str = "") -> None:
        self.speed = speed

    async def set_speed(self, ref: LineRef, expected: str, new: str) -> bool:
        if self.speed != expected:
            return False
        self.speed = new
        return True


def facts(speed: str, held: int = 0, pool: int = 0, coupon_on: bool = True) -> LineFacts:
    return LineFacts("light", "active", coupon_on, held, pool, 0, speed)


def changes(store: Speeds) -> tuple[SpeedChanges, list[tuple[LineRef, Push]]]:
    pushed: list[tuple[LineRef, Push]] = []
    return SpeedChanges(store, CATALOG, lambda ref, push: pushed.append((ref, push))), pushed


def counted(speed: str) -> float:
    """Changes to ``speed`` as a scrape reads them."""
    name = f"{metrics.SPEED_CHANGES._name}_total"
    return metrics.REGISTRY.get_sample_value(name, {metrics.SPEED_CHANGES._labelnames[0]: speed}) or 0.0


async def test_a_change_is_set_counted_and_pushed_with_its_grant() -> None:
    store = Speeds("high")
    speeds, pushed = changes(store)
    before = counted("low")
    assert await speeds.follow(LINE, facts("high")) == ("low", True)
    assert (store.speed, counted("low") - before) == ("low", 1)
    assert pushed == [(LINE, Push("low", with_grant=True, told=""))]


async def test_the_told_session_and_the_grant_are_passed_to_the_push() -> None:
    speeds, pushed = changes(Speeds("low"))
    assert await speeds.follow(LINE, facts("low", pool=MB), told="gw/s2") == ("high", True)
    assert await speeds.apply(LINE, "high", "restricted", with_grant=False)
    assert pushed == [(LINE, Push("high", True, "gw/s2")), (LINE, Push("restricted", False, ""))]


async def test_a_lost_compare_and_set_neither_counts_nor_pushes() -> None:
    """Another process changed the speed first: it counts and pushes, this one does nothing."""
    store = Speeds("low")
    speeds, pushed = changes(store)
    before = counted("high")
    assert not await speeds.apply(LINE, "high", "low")
    assert (store.speed, counted("high") - before, pushed) == ("low", 0, [])


async def test_no_change_writes_nothing() -> None:
    speeds, pushed = changes(Speeds("high"))
    assert await speeds.follow(LINE, facts("high", held=MB)) == ("high", False)
    assert pushed == []


async def test_a_first_decision_is_recorded_and_not_pushed() -> None:
    """A line whose speed was never recorded has no session that was told one."""
    store = Speeds("")
    speeds, pushed = changes(store)
    assert await speeds.follow(LINE, facts("", held=MB)) == ("high", True)
    assert (store.speed, pushed) == ("high", [])


async def test_without_a_pusher_the_change_is_still_made() -> None:
    store = Speeds("high")
    assert await SpeedChanges(store, CATALOG).apply(LINE, "high", "low")
    assert store.speed == "low"
