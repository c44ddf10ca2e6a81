"""Payments read from each channel's order, and return requests read from each channel: pure mappings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.orders import GATEWAYS, Payment, normalise_gateway
from integrations.magento import mapping as magento
from integrations.protocols import RETURN_REASONS, Unreadable
from integrations.reading import return_reason
from integrations.sandbox.store import (
    PAYPAL_EVERY,
    StoreSpec,
    generate_store,
    payment_gateway,
    payment_intent_id,
    payment_reference,
)
from integrations.shopify import mapping as shopify
from integrations.woocommerce import mapping as woo
from tests.unit.factories import order

AT = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


# ------------------------------------------------------------------ payments


@pytest.mark.parametrize(("name", "expected"), [
    ("stripe", "stripe"), ("Stripe", "stripe"), ("stripe_payments", "stripe"), ("ppcp-gateway", "paypal"),
    ("paypal_express", "paypal"), ("bacs", "manual"), ("checkmo", "manual"), ("manual", "manual"),
    ("shopify_payments", "shopify_payments"), ("braintree", "braintree"), ("Some New Gateway", "some_new_gateway"),
    ("", None), ("  ", None), (None, None),
])
def test_gateway_names_are_normalised_by_one_table(name: str | None, expected: str | None) -> None:
    assert normalise_gateway(name) == expected


def test_every_gateway_the_table_names_is_a_normalised_name() -> None:
    assert set(GATEWAYS.values()) == {"stripe", "paypal", "braintree", "shopify_payments", "manual"}
    assert all(normalise_gateway(value) == value for value in GATEWAYS.values())


def test_the_fingerprint_covers_the_payment_and_leaves_older_digests_alone() -> None:
    base = order()
    assert base.payment is None
    paid = replace(base, payment=Payment("stripe", "pi_1"))
    assert len({base.fingerprint(), paid.fingerprint(), replace(base, payment=Payment("stripe", "pi_2")).fingerprint(),
                replace(base, payment=Payment("paypal", "pi_1")).fingerprint()}) == 4
    assert paid.fingerprint() == replace(paid, updated_at=AT).fingerprint()


def test_shopify_payment_is_the_successful_sale_or_capture() -> None:
    transactions = [
        {"kind": "AUTHORIZATION", "status": "SUCCESS", "gateway": "shopify_payments", "paymentId": "auth"},
        {"kind": "SALE", "status": "FAILURE", "gateway": "paypal", "paymentId": "failed"},
        {"kind": "CAPTURE", "status": "SUCCESS", "gateway": "stripe", "paymentId": "pi_123"},
        {"kind": "REFUND", "status": "SUCCESS", "gateway": "stripe", "paymentId": "re_1"},
    ]
    assert shopify.parse_payment(transactions) == Payment("stripe", "pi_123")
    assert shopify.parse_payment([{"kind": "SALE", "status": "SUCCESS", "gateway": "manual", "paymentId": None}]) \
        == Payment("manual", None)
    assert shopify.parse_payment(None) is None
    assert shopify.parse_payment(["odd", {"kind": "SALE"}]) is None


def test_woocommerce_and_magento_payments() -> None:
    assert woo.parse_payment({"payment_method": "ppcp-gateway", "transaction_id": "8AB12"}) == Payment("paypal", "8AB12")
    assert woo.parse_payment({"payment_method": "bacs", "transaction_id": ""}) == Payment("manual", None)
    assert woo.parse_payment({"payment_method": ""}) is None
    assert magento.parse_payment({"method": "stripe_payments", "last_trans_id": "pi_9"}) == Payment("stripe", "pi_9")
    assert magento.parse_payment({"method": "checkmo"}) == Payment("manual", None)
    assert magento.parse_payment(None) is None


def test_the_store_pays_most_orders_with_stripe_and_a_few_with_paypal() -> None:
    assert payment_intent_id(5_100_000_001) == payment_intent_id(5_100_000_001)
    assert payment_intent_id(5_100_000_001) != payment_intent_id(5_100_000_002)
    assert payment_intent_id(7).startswith("pi_") and len(payment_intent_id(7)) == 27
    gateways = [payment_gateway(n) for n in range(5_100_000_001, 5_100_000_301)]
    assert gateways.count("paypal") == 300 // PAYPAL_EVERY and gateways.count("stripe") == 300 - 20
    paypal = next(n for n in range(5_100_000_001, 5_100_000_100) if payment_gateway(n) == "paypal")
    assert not payment_reference(paypal).startswith("pi_")


# ------------------------------------------------------------------ return reasons


@pytest.mark.parametrize(("text", "code"), [
    ("Item arrived damaged", "damaged"), ("defective", "defective"), ("Stopped working after a day", "defective"),
    ("Customer received the wrong item", "wrong_item"), ("Not as described", "not_as_described"),
    ("Customer changed their mind", "changed_mind"), ("Late delivery", "late_delivery"),
    ("changed_mind", "changed_mind"), ("Goodwill", "other"), ("", "other"), (None, "other"),
])
def test_free_text_reasons_become_clerks_codes(text: str | None, code: str) -> None:
    assert return_reason(text) == code
    assert code in RETURN_REASONS


@pytest.mark.parametrize(("reason", "note", "code"), [
    ("DEFECTIVE", "", "defective"), ("DEFECTIVE", "Arrived damaged", "damaged"), ("WRONG_ITEM", "", "wrong_item"),
    ("NOT_AS_DESCRIBED", "", "not_as_described"), ("SIZE_TOO_SMALL", "", "changed_mind"),
    ("SIZE_TOO_LARGE", "", "changed_mind"), ("UNWANTED", "", "changed_mind"), ("STYLE", "", "changed_mind"),
    ("COLOR", "", "changed_mind"), ("OTHER", "", "other"), ("OTHER", "Arrived too late", "late_delivery"),
    ("UNKNOWN", "", "other"), ("SOMETHING_NEW", "", "other"), (None, None, "other"),
])
def test_shopify_return_reasons_map_to_clerks_codes(reason: str | None, note: str | None, code: str) -> None:
    assert shopify.return_reason_of(reason, note) == code


def test_every_shopify_return_reason_is_in_the_table() -> None:
    from integrations.sandbox.shopify import load_schema
    assert set(load_schema().type_map["ReturnReason"].values) == set(shopify.RETURN_REASONS)
    assert set(shopify.RETURN_REASONS.values()) <= set(RETURN_REASONS)


# ------------------------------------------------------------------ Shopify returns


def _return_node(status: str = "REQUESTED", lines: list | None = None, refunds: list | None = None) -> dict:
    return {"id": "gid://shopify/Return/1", "name": "#1001-R1", "status": status, "createdAt": "2026-10-01T12:00:00Z",
            "returnLineItems": {"pageInfo": {"hasNextPage": False}, "nodes": lines if lines is not None else [
                {"quantity": 1, "returnReason": "WRONG_ITEM", "returnReasonNote": "", "customerNote": "Sent red",
                 "fulfillmentLineItem": {"lineItem": {"sku": "A"}}},
                {"quantity": 2, "returnReason": "UNWANTED", "returnReasonNote": "", "customerNote": None,
                 "fulfillmentLineItem": {"lineItem": {"sku": "A"}}}]},
            "refunds": {"nodes": refunds or []}}


ORDER = {"id": "gid://shopify/Order/9", "name": "#1001"}


def test_a_shopify_return_is_read_with_its_units_by_sku() -> None:
    found = shopify.parse_return(ORDER, _return_node(refunds=[
        {"totalRefundedSet": {"shopMoney": {"amount": "12.5", "currencyCode": "USD"}}}]))
    assert found is not None
    assert (found.external_id, found.order_external_id, found.order_number) == (
        "gid://shopify/Return/1", "gid://shopify/Order/9", "#1001")
    assert (dict(found.lines), found.reason, found.refunded, found.requested_at) == ({"A": 3}, "wrong_item",
                                                                                   Decimal("12.5"), AT)
    assert found.note == "Sent red"


def test_only_open_shopify_returns_are_read() -> None:
    assert shopify.parse_return(ORDER, _return_node("OPEN")) is not None
    for status in ("DECLINED", "CLOSED", "CANCELED"):
        assert shopify.parse_return(ORDER, _return_node(status)) is None


def test_an_unreadable_shopify_return_is_reported_and_the_others_read() -> None:
    bad = _return_node(lines=[{"quantity": 0, "returnReason": "OTHER", "returnReasonNote": "",
                               "fulfillmentLineItem": {"lineItem": {"sku": "A"}}}])
    bad["id"] = "gid://shopify/Return/2"
    problems: list[Unreadable] = []
    found = shopify.parse_returns({**ORDER, "returns": {"nodes": [bad, _return_node()]}}, None, unreadable=problems)
    assert [r.external_id for r in found] == ["gid://shopify/Return/1"]
    assert [(p.reason, p.external_id) for p in problems] == [("malformed", "gid://shopify/Return/2")]
    assert "quantity" in problems[0].detail
    with pytest.raises(Unreadable):
        shopify.parse_returns({**ORDER, "returns": {"nodes": [bad]}}, None)
    assert shopify.parse_returns({**ORDER, "returns": {"nodes": [_return_node()]}}, AT.replace(day=2)) == []


def test_returns_are_searched_by_return_status_and_change() -> None:
    variables = shopify.build_returns_variables(AT, "in_progress", None, 7)
    assert variables == {"first": 7, "after": None, "query": "updated_at:>='2026-10-01T12:00:00Z' return_status:in_progress"}
    assert shopify.build_returns_variables(None, "return_requested", "c", 3)["query"] == "return_status:return_requested"


# ------------------------------------------------------------------ WooCommerce refunds

WOO_ORDER = {"id": 77, "number": "1077", "refunds": [{"id": 5, "reason": "", "total": "-10.00"}]}


def _refund(**changes: object) -> dict:
    return {"id": 5, "date_created_gmt": "2026-10-01T12:00:00", "amount": "10.00", "reason": "Item arrived damaged",
            "refunded_payment": True, "meta_data": [],
            "line_items": [{"id": 1, "sku": "A", "quantity": -2}, {"id": 2, "sku": "B", "quantity": -1}]} | changes


def test_a_woocommerce_refund_reads_its_negative_quantities_as_units_back() -> None:
    found = woo.parse_refund(WOO_ORDER, _refund(), None)
    assert found is not None
    assert (found.external_id, found.order_external_id, found.order_number) == ("5", "77", "1077")
    assert (dict(found.lines), found.reason, found.refunded, found.note) == (
        {"A": 2, "B": 1}, "damaged", Decimal("10.00"), "Item arrived damaged")


def test_a_woocommerce_refund_the_gateway_did_not_move_refunded_nothing() -> None:
    found = woo.parse_refund(WOO_ORDER, _refund(refunded_payment=False, reason="Goodwill"), None)
    assert found is not None and (found.refunded, found.reason) == (Decimal(0), "other")


def test_clerks_own_woocommerce_refunds_and_older_ones_are_skipped() -> None:
    own = _refund(meta_data=[{"key": woo.IDEMPOTENCY_META_KEY, "value": "refund:rma-1"}])
    assert woo.parse_refund(WOO_ORDER, own, None) is None
    assert woo.parse_refund(WOO_ORDER, _refund(), AT.replace(hour=13)) is None
    assert woo.parse_refund(WOO_ORDER, _refund(), AT) is not None


def test_an_unreadable_woocommerce_refund_names_itself() -> None:
    with pytest.raises(Unreadable) as caught:
        woo.parse_refund(WOO_ORDER, _refund(line_items=[{"id": 1, "sku": "A", "quantity": "two"}]), None)
    assert (caught.value.reason, caught.value.external_id) == ("malformed", "5")
    assert woo.has_refunds(WOO_ORDER) and not woo.has_refunds({"id": 3, "refunds": []})


# ------------------------------------------------------------------ Magento credit memos


def _memo(**changes: object) -> dict:
    return {"entity_id": 4, "order_id": 28, "created_at": "2026-10-01 12:00:00", "grand_total": 30.5,
            "transaction_id": "re_1", "items": [{"order_item_id": 1, "sku": "A", "qty": 1.0},
                                                {"order_item_id": 2, "sku": "B", "qty": 0.0}],
            "comments": [{"comment": "Returned: wrong item shipped"}]} | changes


def test_a_magento_credit_memo_refunded_online_moved_its_grand_total() -> None:
    found = magento.parse_creditmemo(_memo(), {28: "000001028"})
    assert found is not None
    assert (found.external_id, found.order_external_id, found.order_number, dict(found.lines)) == (
        "4", "28", "000001028", {"A": 1})
    assert (found.reason, found.refunded, found.requested_at) == ("wrong_item", Decimal("30.5"), AT)
    offline = magento.parse_creditmemo(_memo(transaction_id=None, comments=[]), {})
    assert offline is not None and (offline.refunded, offline.reason, offline.order_number) == (Decimal(0), "other", "28")


def test_clerks_own_credit_memos_are_skipped_and_a_bad_one_named() -> None:
    own = _memo(comments=[{"comment": f"Refunded by Clerk: damaged {magento.key_mark('refund:1')}"}])
    assert magento.parse_creditmemo(own, {}) is None
    with pytest.raises(Unreadable) as caught:
        magento.parse_creditmemo(_memo(items=[{"order_item_id": 1, "qty": 1.0}]), {})
    assert (caught.value.external_id, caught.value.detail) == ("4", "items[0].sku is missing")


def test_credit_memos_are_walked_by_creation_key() -> None:
    params = magento.build_creditmemos_search(None, (AT, 9), 50)
    assert params["searchCriteria[filterGroups][1][filters][1][field]"] == "entity_id"
    assert params["searchCriteria[sortOrders][0][field]"] == "created_at"
    assert params["searchCriteria[pageSize]"] == "50"


# ------------------------------------------------------------------ the seeded store


def test_the_store_seeds_a_handful_of_returns_on_fulfilled_orders_with_several_reasons() -> None:
    store = generate_store(StoreSpec(seed=41, orders=300, tricky_share=0, days=30))
    seeded = store.return_requests()
    assert len(seeded) == 6 and len({r.reason for r in seeded}) == 6
    assert {r.reason for r in seeded} <= set(RETURN_REASONS)
    assert any(r.refunded for r in seeded) and not all(r.refunded for r in seeded)
    again = generate_store(StoreSpec(seed=41, orders=300, tricky_share=0, days=30)).return_requests()
    assert again == seeded
