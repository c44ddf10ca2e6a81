"""Deciding a batch: outcomes, history, cancellations, stock competition, counting once."""

from __future__ import annotations

from domain.intake import Decision, Known, Outcome, Rejection, Tally, decide_batch, fold_outcome
from domain.orders import Lifecycle, Status
from domain.reasons import ALL_REASONS
from domain.stock import Claim, allocate, reservation_changes
from tests.unit.factories import CATALOG, line, order


def by_id(decisions: list[Decision]) -> dict[str, Decision]:
    return {d.order.external_id: d for d in decisions}


def test_new_open_order_is_accepted_and_reserves() -> None:
    [decision] = decide_batch([order("1", (line(qty=3),))], {}, CATALOG, {"SKU-1": 5})
    assert (decision.outcome, decision.status, dict(decision.reservation)) == (Outcome.CREATED, Status.ACCEPTED, {"SKU-1": 3})


def test_oldest_order_gets_the_last_units() -> None:
    young = order("1", (line(qty=2),), placed=10)
    old = order("2", (line(qty=2),), placed=0)
    result = by_id(decide_batch([young, old], {}, CATALOG, {"SKU-1": 3}))
    assert result["2"].status == Status.ACCEPTED
    assert result["1"].status == Status.HELD and result["1"].reasons == ("insufficient_stock",)
    assert result["1"].reservation == {}


def test_history_is_never_held_nor_reserving() -> None:
    for lifecycle in (Lifecycle.FULFILLED, Lifecycle.CLOSED):
        [decision] = decide_batch([order("1", (line("NOPE", qty=99),), lifecycle=lifecycle)], {}, CATALOG, {})
        assert decision.status == Status.FULFILLED and decision.reservation == {} and decision.reasons == ()


def test_cancelled_upstream_releases_its_reservation() -> None:
    known = {"1": Known("old", Status.ACCEPTED, {"SKU-1": 2})}
    [decision] = decide_batch([order("1", lifecycle=Lifecycle.CANCELLED)], known, CATALOG, {"SKU-1": 0})
    assert (decision.outcome, decision.status, dict(decision.reservation)) == (Outcome.UPDATED, Status.CANCELLED, {})
    assert reservation_changes({"SKU-1": 2}, decision.reservation) == {"SKU-1": -2}


def test_unchanged_order_keeps_status_and_reservation() -> None:
    stored = order("1")
    known = {"1": Known(stored.fingerprint(), Status.ACCEPTED, {"SKU-1": 1})}
    [decision] = decide_batch([stored], known, CATALOG, {"SKU-1": 0})
    assert (decision.outcome, decision.status, dict(decision.reservation)) == (Outcome.UNCHANGED, Status.ACCEPTED, {"SKU-1": 1})


def test_an_edited_order_does_not_compete_with_itself() -> None:
    known = {"1": Known("old", Status.ACCEPTED, {"SKU-1": 2})}
    [decision] = decide_batch([order("1", (line(qty=3),))], known, CATALOG, {"SKU-1": 1})
    assert decision.status == Status.ACCEPTED and decision.reservation == {"SKU-1": 3}


def test_a_repeated_order_in_one_batch_is_decided_once_by_its_newest_version() -> None:
    older, newer = order("1", (line(qty=1),), updated=0), order("1", (line(qty=2),), updated=5)
    [decision] = decide_batch([newer, older], {}, CATALOG, {"SKU-1": 10})
    assert decision.reservation == {"SKU-1": 2}


def test_allocation_is_all_lines_or_nothing() -> None:
    claims = [Claim("a", {"X": 1, "Y": 5}, {}), Claim("b", {"X": 1}, {})]
    assert allocate(claims, {"X": 1, "Y": 1}) == {"b"}


def test_tally_counts_each_order_once_and_reasons_by_code() -> None:
    tally = Tally()
    first = decide_batch([order("1", (line("NOPE"),))], {}, CATALOG, {})
    tally.record("shopify", first, [Rejection("shopify", None, "malformed", "x", {})])
    again = decide_batch([order("1", (line("NOPE", qty=2),))], {"1": Known("old", Status.HELD)}, CATALOG, {})
    tally.record("shopify", again, [Rejection("shopify", None, "malformed", "y", {}), Rejection("shopify", "9", "invalid_quantity", "", {})])
    counts = tally.counts()
    assert counts == {"fetched": 4, "created": 1, "updated": 0, "unchanged": 0, "quarantined": 3, "held": 1}
    reasons = tally.reason_counts(ALL_REASONS)
    assert reasons["unknown_sku"] == 1 and reasons["malformed"] == 2 and reasons["invalid_quantity"] == 1
    assert set(ALL_REASONS) <= set(reasons)


def test_fold_prefers_the_weightier_outcome() -> None:
    assert fold_outcome(Outcome.CREATED, Outcome.UPDATED) == Outcome.CREATED
    assert fold_outcome(Outcome.UNCHANGED, Outcome.UPDATED) == Outcome.UPDATED
    assert fold_outcome(None, Outcome.QUARANTINED) == Outcome.QUARANTINED


def test_a_line_not_shipped_by_us_reserves_nothing_and_is_never_short() -> None:
    from dataclasses import replace

    digital = replace(line("SKU-1", qty=4), requires_shipping=False)  # a download, or fulfilled by the marketplace
    shipped = line("SKU-2", qty=1, price="25.00")
    [decision] = decide_batch([order("1", (digital, shipped))], {}, CATALOG, {"SKU-1": 0, "SKU-2": 1})
    assert (decision.status, dict(decision.reservation)) == (Status.ACCEPTED, {"SKU-2": 1})
