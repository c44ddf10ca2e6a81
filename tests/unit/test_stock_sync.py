"""Channel stock sync rules: what is pushed, in what batches, what is a conflict, and its alert."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.stock_sync import Conflict, Push, Pushed, Verdict, judge, plan_pushes, summarise_conflicts

AT = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(("wanted", "last_pushed", "sold_since", "shown", "verdict"), [
    (5, 7, 0, 7, Verdict.WRITE),  # the channel shows Clerk's last push: Clerk's new count goes
    (5, 7, 0, 5, Verdict.ALREADY),  # already as wanted (a repeat, or a write whose answer was lost)
    (5, 7, 0, 8, Verdict.CONFLICT),  # more than Clerk pushed: someone added units there
    (0, 7, 0, 9, Verdict.CONFLICT),
    (5, 7, 0, 6, Verdict.BEHIND),  # less, with no sale read: the channel sold one Clerk has not read yet
    (9, 7, 2, 5, Verdict.WRITE),  # lowered by exactly the two units its orders took: its own doing
    (9, 7, 2, 7, Verdict.WRITE),  # a channel that lowers its count only when an order ships
    (9, 7, 2, 4, Verdict.BEHIND),  # a third sale Clerk has not read: wait for intake
    (9, 7, 2, 6, Verdict.CONFLICT),  # between the two: not explained by sales
    (5, None, 0, 6, Verdict.WRITE),  # never pushed: Clerk takes the count over
    (5, None, 0, 5, Verdict.ALREADY),
    (5, 7, 0, None, Verdict.WRITE),  # the channel keeps no count for it: nothing to overwrite
    (0, 3, 0, 0, Verdict.ALREADY),
])
def test_judge(wanted: int, last_pushed: int | None, sold_since: int, shown: int | None, verdict: Verdict) -> None:
    assert judge(Push("A-1", wanted, last_pushed, sold_since), shown) is verdict


def test_only_counts_that_changed_since_the_last_push_go_and_an_oversold_sku_shows_0() -> None:
    available = {"A": 5, "B": 3, "C": -2, "D": 0, "E": 9}
    pushed = {"A": Pushed(5), "B": Pushed(4), "C": Pushed(0), "E": Pushed(9, conflict_seen=12)}
    plan = plan_pushes(available, pushed, batch_size=10)
    # D was never pushed; E's conflict is open, so it is looked at again until both sides agree.
    assert plan.batches == [[Push("B", 3, 4), Push("D", 0, None), Push("E", 9, 9)]]
    assert plan.unchanged == 2


def test_pushes_come_in_batches_by_sku() -> None:
    available = {f"S-{n:03d}": n for n in range(7)}
    plan = plan_pushes(available, {}, batch_size=3)
    assert [[p.sku for p in batch] for batch in plan.batches] == [
        ["S-000", "S-001", "S-002"], ["S-003", "S-004", "S-005"], ["S-006"]]
    assert plan_pushes({}, {}, batch_size=3).batches == []
    with pytest.raises(ValueError):
        plan_pushes(available, {}, batch_size=0)


def test_one_alert_names_the_conflicts_by_sku_and_count_only_and_is_the_same_for_the_same_ones() -> None:
    conflicts = [Conflict("woocommerce", "MUG-1", 9, AT), Conflict("shopify", "TEE-2", 4, AT)]
    text = summarise_conflicts("sync-stock", conflicts)
    assert text is not None
    assert text.title == "sync-stock: 2 stock counts changed on a channel"
    assert text.lines[:2] == ("TEE-2 on shopify: the channel shows 4, not what Clerk last pushed",
                              "MUG-1 on woocommerce: the channel shows 9, not what Clerk last pushed")
    assert text.counts == {"shopify": 1, "woocommerce": 1}
    assert text.incident == summarise_conflicts("sync-stock", conflicts[::-1]).incident  # type: ignore[union-attr]
    later = [Conflict("woocommerce", "MUG-1", 9, AT.replace(hour=10)), conflicts[1]]
    assert summarise_conflicts("sync-stock", later).incident != text.incident  # type: ignore[union-attr]
    assert summarise_conflicts("sync-stock", []) is None


def test_a_long_list_of_conflicts_is_cut_short() -> None:
    many = [Conflict("magento", f"SKU-{n:02d}", n, AT) for n in range(14)]
    text = summarise_conflicts("sync-stock", many)
    assert text is not None and text.counts == {"magento": 14}
    assert sum(line.startswith("SKU-") for line in text.lines) == 10 and "… and 4 more" in text.lines
