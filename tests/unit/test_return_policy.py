"""The returns policy table: one case per rule, each named after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.returns import (Condition, OrderFacts, Payer, RefundQuote, Resolution, ReturnInputError, ReturnPolicy,
                            ReturnReason, ReturnRequest, Rule, SoldLine, Verdict, check_request, decide, on_receipt,
                            parse_reason, policy_from_settings, quote_refund, refundable)

DELIVERED = datetime(2026, 11, 1, 15, tzinfo=UTC)
D = Decimal


def order(**overrides: object) -> OrderFacts:
    facts = {
        "currency": "USD",
        "lines": {"MUG": SoldLine("MUG", 2, D("12.50")), "KNIFE": SoldLine("KNIFE", 1, D("60.00"), category="blades"),
                  "TEE": SoldLine("TEE", 3, D("20.00"), discount=D("6.00"))},
        "shipping": D("9.00"), "tax": D("12.60"), "shipped_at": DELIVERED - timedelta(days=3),
        "delivered_at": DELIVERED,
    }
    return OrderFacts(**(facts | overrides))  # type: ignore[arg-type]


def ask(reason: ReturnReason = ReturnReason.DEFECTIVE, days: int = 5, resolution: Resolution = Resolution.REFUND,
        **lines: int) -> ReturnRequest:
    return ReturnRequest(reason, lines or {"MUG": 1}, DELIVERED + timedelta(days=days), resolution)


POLICY = ReturnPolicy(window_days=30, restocking_fee_percent=D("10"), non_returnable_categories=frozenset({"blades"}),
                      refund_above=D("100.00"))


@pytest.mark.parametrize(("rule", "request_", "facts", "verdict", "payer"), [
    (Rule.NOT_SHIPPED, ask(), order(shipped_at=None, delivered_at=None), Verdict.DECLINE, Payer.SHOP),
    (Rule.OUTSIDE_WINDOW, ask(days=31), order(), Verdict.DECLINE, Payer.SHOP),
    (Rule.NON_RETURNABLE, ask(ReturnReason.CHANGED_MIND, KNIFE=1), order(), Verdict.DECLINE, Payer.CUSTOMER),
    (Rule.REASON_NEEDS_REVIEW, ask(ReturnReason.OTHER), order(), Verdict.REVIEW, Payer.CUSTOMER),
    (Rule.REFUND_ABOVE_LIMIT, ask(MUG=2, KNIFE=1, TEE=1), order(), Verdict.REVIEW, Payer.SHOP),
    (Rule.OUR_FAULT, ask(ReturnReason.WRONG_ITEM), order(), Verdict.APPROVE, Payer.SHOP),
    (Rule.CUSTOMER_CHOICE, ask(ReturnReason.CHANGED_MIND), order(), Verdict.APPROVE, Payer.CUSTOMER),
], ids=lambda v: v.value if isinstance(v, Rule) else None)
def test_each_rule_decides(rule: Rule, request_: ReturnRequest, facts: OrderFacts, verdict: Verdict, payer: Payer) -> None:
    decision = decide(request_, facts, POLICY)
    assert (decision.rule, decision.verdict, decision.label_paid_by) == (rule, verdict, payer)


def test_window_counts_from_delivery_and_its_last_day_is_open() -> None:
    assert decide(ask(days=30), order(), POLICY).rule is Rule.OUR_FAULT
    # Never delivered (no tracking): the window runs from shipping, the earlier date.
    assert decide(ask(days=28), order(delivered_at=None), POLICY).rule is Rule.OUTSIDE_WINDOW


def test_a_faulty_non_returnable_item_is_still_taken_back() -> None:
    assert decide(ask(ReturnReason.DEFECTIVE, KNIFE=1), order(), POLICY).rule is Rule.OUR_FAULT


def test_an_exchange_refunds_nothing_so_needs_no_approval_for_its_value() -> None:
    decision = decide(ask(ReturnReason.WRONG_ITEM, resolution=Resolution.EXCHANGE, MUG=2, KNIFE=1, TEE=1), order(), POLICY)
    assert (decision.verdict, decision.resolution) == (Verdict.APPROVE, Resolution.EXCHANGE)


def test_returning_everything_for_our_fault_refunds_what_was_paid() -> None:
    facts = order()
    paid = D("25.00") + D("60.00") + D("54.00") + D("9.00") + D("12.60")
    quote = quote_refund(ask(MUG=2, KNIFE=1, TEE=3), facts, POLICY)
    assert quote == RefundQuote(goods=D("139.00"), tax=D("12.60"), shipping=D("9.00"), restocking_fee=D("0.00"),
                                label_fee=D("0.00"))
    assert quote.total == paid


def test_customer_choice_pays_restocking_fee_and_label_and_no_shipping() -> None:
    decision = decide(ask(ReturnReason.CHANGED_MIND, TEE=1), order(), POLICY, label_cost=D("7.25"))
    # One tee: 20.00 less a third of its 6.00 line discount; tax share 18/139 of 12.60.
    assert decision.quote == RefundQuote(goods=D("18.00"), tax=D("1.63"), shipping=D("0.00"), restocking_fee=D("1.80"),
                                         label_fee=D("7.25"))
    assert decision.quote.total == D("10.58")


def test_our_fault_never_charges_the_label() -> None:
    assert decide(ask(ReturnReason.DAMAGED), order(), POLICY, label_cost=D("7.25")).quote.label_fee == 0


def test_order_level_discount_and_included_tax_are_shared_out() -> None:
    facts = order(order_discount=D("13.90"), taxes_included=True)
    quote = quote_refund(ask(ReturnReason.WRONG_ITEM, KNIFE=1), facts, POLICY)
    assert (quote.goods, quote.tax) == (D("54.00"), D("0.00"))  # 60 less 60/139 of 13.90


def test_amounts_round_to_the_currency_minor_unit() -> None:
    yen = order(currency="JPY", lines={"MUG": SoldLine("MUG", 3, D("1000"))}, tax=D("100"), shipping=D("0"))
    assert quote_refund(ask(MUG=1), yen, POLICY).tax == D("33")
    dinar = order(currency="KWD", lines={"MUG": SoldLine("MUG", 3, D("1.000"))}, tax=D("0.100"), shipping=D("0"))
    assert quote_refund(ask(MUG=1), dinar, POLICY).tax == D("0.033")


def test_a_fee_never_makes_a_refund_negative() -> None:
    assert decide(ask(ReturnReason.CHANGED_MIND), order(), POLICY, label_cost=D("99")).quote.total == 0


@pytest.mark.parametrize(("rule", "reason", "condition", "restock", "refund"), [
    (Rule.RESELLABLE_ON_RECEIPT, ReturnReason.CHANGED_MIND, Condition.RESELLABLE, True, Verdict.APPROVE),
    (Rule.DAMAGED_IN_TRANSIT, ReturnReason.DAMAGED, Condition.DAMAGED, False, Verdict.APPROVE),
    (Rule.DAMAGED_BY_CUSTOMER, ReturnReason.CHANGED_MIND, Condition.DAMAGED, False, Verdict.REVIEW),
], ids=lambda v: v.value if isinstance(v, Rule) else None)
def test_each_receipt_rule(rule: Rule, reason: ReturnReason, condition: Condition, restock: bool, refund: Verdict) -> None:
    receipt = on_receipt(reason, condition)
    assert (receipt.rule, receipt.restock, receipt.refund) == (rule, restock, refund)


@pytest.mark.parametrize(("lines", "code"), [
    ({}, "no_lines"),
    ({"MUG": 0}, "invalid_quantity"),
    ({"MUG": -1}, "invalid_quantity"),
    ({"SPOON": 1}, "sku_not_on_order"),
    ({"MUG": 3}, "more_than_shipped"),
])
def test_bad_requests_are_refused_by_name(lines: dict[str, int], code: str) -> None:
    with pytest.raises(ReturnInputError) as refused:
        check_request(ReturnRequest(ReturnReason.DEFECTIVE, lines, DELIVERED), order())
    assert refused.value.code == code


def test_units_already_returned_count_against_what_was_shipped() -> None:
    facts = order(lines={"MUG": SoldLine("MUG", 2, D("12.50"), returned=1)})
    check_request(ReturnRequest(ReturnReason.DEFECTIVE, {"MUG": 1}, DELIVERED), facts)
    with pytest.raises(ReturnInputError, match="more_than_shipped"):
        check_request(ReturnRequest(ReturnReason.DEFECTIVE, {"MUG": 2}, DELIVERED), facts)


def test_reason_codes_outside_the_list_are_refused() -> None:
    assert parse_reason(" Changed_Mind ") is ReturnReason.CHANGED_MIND
    with pytest.raises(ReturnInputError, match="unknown_reason"):
        parse_reason("too_expensive")


def test_refund_never_exceeds_what_the_payment_still_holds() -> None:
    assert refundable(D("50.00"), captured=D("80.00"), refunded=D("0")) == D("50.00")
    assert refundable(D("50.00"), captured=D("80.00"), refunded=D("45.00")) == D("35.00")
    assert refundable(D("50.00"), captured=D("80.00"), refunded=D("90.00")) == 0


def test_policy_from_settings() -> None:
    class Returns:
        window_days = 14
        restocking_fee_percent = D("15")
        non_returnable_categories = ["food"]
        review_reasons = ["other", "late_delivery"]

    policy = policy_from_settings(Returns(), D("250"))
    assert policy == ReturnPolicy(14, D("15"), frozenset({"food"}),
                                  frozenset({ReturnReason.OTHER, ReturnReason.LATE_DELIVERY}), D("250"))
    Returns.review_reasons = ["whim"]
    with pytest.raises(ReturnInputError, match="unknown_reason"):
        policy_from_settings(Returns(), D("250"))
