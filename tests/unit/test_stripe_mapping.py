"""Stripe's wire format to and from Clerk's payment types: money in minor units (two-, zero-
and three-decimal currencies), form encoding, refunds and errors in Stripe's documented
shapes, and `Stripe-Signature` webhook checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from integrations.protocols import Payment, Refund, RefundState
from integrations.stripe import mapping

# A refund as Stripe's API reference shows one (version 2023-08-16), with Clerk's key.
REFUND = {"id": "re_1Nispe2eZvKYlo2Cd31jOCgZ", "object": "refund", "amount": 1000,
          "balance_transaction": "txn_1Nispe2eZvKYlo2CYezqFhEx", "charge": "ch_1NirD82eZvKYlo2CIvbtLWuY",
          "created": 1692942318, "currency": "usd", "metadata": {"clerk_key": "refund:RMA-7"},
          "payment_intent": "pi_3NirD82eZvKYlo2C1oBvGA2n", "reason": None, "receipt_number": None,
          "source_transfer_reversal": None, "status": "succeeded", "transfer_reversal": None}
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SECRET = "whsec_test_secret"
EVENT = b'{"id": "evt_1", "type": "refund.updated", "data": {"object": {"id": "re_1"}}}'


# ------------------------------------------------------------------------ money


@pytest.mark.parametrize(("amount", "currency", "units"), [
    (Decimal("10.50"), "USD", 1050), (Decimal("0.01"), "eur", 1), (Decimal("1000"), "JPY", 1000),
    (Decimal("1000"), "krw", 1000), (Decimal("1.250"), "KWD", 1250), (Decimal("12.34"), "BHD", 12340),
    (Decimal("1500.00"), "ISK", 150000),
])
def test_amounts_go_to_the_currencys_minor_units_and_back(amount: Decimal, currency: str, units: int) -> None:
    assert mapping.to_minor(amount, currency) == units
    assert mapping.from_minor(units, currency) == amount


def test_amounts_read_back_with_the_currencys_places() -> None:
    assert str(mapping.from_minor(1050, "usd")) == "10.50"
    assert str(mapping.from_minor(1000, "JPY")) == "1000"
    assert str(mapping.from_minor(1250, "KWD")) == "1.250"


@pytest.mark.parametrize(("amount", "currency"), [
    (Decimal("10.005"), "USD"),  # finer than a cent
    (Decimal("1.5"), "JPY"),  # there are no half yen
    (Decimal("1.255"), "KWD"),  # Stripe takes three-decimal amounts in tens of fils only
    (Decimal("10.50"), "ISK"),  # whole krónur only
    (Decimal("NaN"), "USD"),
])
def test_an_amount_stripe_could_not_take_is_refused(amount: Decimal, currency: str) -> None:
    with pytest.raises(ValueError):
        mapping.to_minor(amount, currency)


# ------------------------------------------------------------------------ requests


def test_forms_are_flattened_as_stripe_reads_them() -> None:
    pairs = mapping.form_pairs({"amount": 1050, "metadata": {"clerk_key": "k", "note": None},
                                "expand": ["charge", "payment_intent"], "refund_application_fee": False,
                                "reason": None})
    assert pairs == [("amount", "1050"), ("metadata[clerk_key]", "k"), ("expand[0]", "charge"),
                     ("expand[1]", "payment_intent"), ("refund_application_fee", "false")]


def test_a_refund_of_a_payment_intent_carries_the_key_in_metadata() -> None:
    body = mapping.build_refund("pi_3Nir", Decimal("10.5"), "USD", "refund:RMA-7", "requested_by_customer")
    assert body == {"payment_intent": "pi_3Nir", "amount": 1050, "metadata": {"clerk_key": "refund:RMA-7"},
                    "reason": "requested_by_customer"}


def test_a_refund_of_a_charge_keeps_clerks_own_reason_in_metadata() -> None:
    body = mapping.build_refund("ch_1Nir", Decimal("1000"), "JPY", "k", "damaged")
    assert body == {"charge": "ch_1Nir", "amount": 1000, "metadata": {"clerk_key": "k", "clerk_reason": "damaged"}}


@pytest.mark.parametrize(("payment", "amount", "key"), [
    ("py_1Nir", Decimal("1"), "k"),  # neither a PaymentIntent nor a charge
    ("pi_1Nir", Decimal("0"), "k"),
    ("pi_1Nir", Decimal("-5"), "k"),
    ("pi_1Nir", Decimal("1"), " "),
    ("pi_1Nir", Decimal("1"), "k" * 256),  # longer than an Idempotency-Key may be
])
def test_a_refund_that_could_never_be_made_is_refused_before_sending(payment: str, amount: Decimal, key: str) -> None:
    with pytest.raises(ValueError):
        mapping.build_refund(payment, amount, "USD", key)


def test_the_refunds_of_a_payment_are_listed_a_full_page_at_a_time() -> None:
    assert mapping.build_refunds_query("ch_1") == {"charge": "ch_1", "limit": 100}
    assert mapping.build_refunds_query("pi_1", "re_9") == {"payment_intent": "pi_1", "limit": 100,
                                                          "starting_after": "re_9"}


# ------------------------------------------------------------------------ answers


def test_an_error_body_is_read_with_its_code() -> None:
    error = mapping.parse_error({"error": {"type": "invalid_request_error", "code": "amount_too_large",
                                           "param": "amount", "message": "Refund amount ($20.00) is greater"}})
    assert error == mapping.ApiError("invalid_request_error", "amount_too_large", "Refund amount ($20.00) is greater",
                                     "amount")
    assert error.reason == "amount_too_large"


def test_an_idempotency_error_is_known_by_its_type() -> None:
    error = mapping.parse_error({"error": {"type": "idempotency_error", "message": "Keys for idempotent requests"}})
    assert error.reason == "idempotency_error" and error.code == ""


@pytest.mark.parametrize("body", [None, "upstream error", {"error": "nope"}, {"data": []}])
def test_a_body_that_is_no_error_reads_as_an_empty_one(body: object) -> None:
    assert mapping.parse_error(body) == mapping.ApiError("", "", "", "")


def test_a_refund_is_read_with_its_payment_and_key() -> None:
    assert mapping.parse_refund(REFUND) == Refund(
        reference="re_1Nispe2eZvKYlo2Cd31jOCgZ", payment="pi_3NirD82eZvKYlo2C1oBvGA2n", amount=Decimal("10.00"),
        currency="USD", state=RefundState.SUCCEEDED, key="refund:RMA-7")


def test_a_failed_refund_of_a_bare_charge_says_why() -> None:
    failed = {**REFUND, "payment_intent": None, "status": "failed", "failure_reason": "expired_or_canceled_card",
              "charge": {"id": "ch_9", "object": "charge"}, "currency": "jpy", "amount": 500, "metadata": {}}
    refund = mapping.parse_refund(failed)
    assert (refund.payment, refund.amount, refund.currency) == ("ch_9", Decimal("500"), "JPY")
    assert (refund.state, refund.failure_reason, refund.key) == (RefundState.FAILED, "expired_or_canceled_card", None)


@pytest.mark.parametrize(("status", "state"), [
    ("pending", RefundState.PENDING), ("requires_action", RefundState.PENDING), ("succeeded", RefundState.SUCCEEDED),
    ("failed", RefundState.FAILED), ("canceled", RefundState.FAILED),
    ("some_new_status", RefundState.PENDING),  # followed, never taken as failed
    (None, RefundState.PENDING),
])
def test_every_refund_status_has_a_clerk_state(status: str | None, state: RefundState) -> None:
    assert mapping.parse_refund({**REFUND, "status": status}).state is state


@pytest.mark.parametrize("broken", [
    {**REFUND, "id": None}, {**REFUND, "object": "charge"}, {**REFUND, "amount": "10.00"},
    {**REFUND, "amount": True}, {**REFUND, "charge": None, "payment_intent": None}, [REFUND],
])
def test_a_refund_without_what_it_should_carry_is_unexpected(broken: object) -> None:
    with pytest.raises(mapping.UnexpectedAnswer):
        mapping.parse_refund(broken)


def test_a_payment_intent_is_read_with_its_expanded_charge() -> None:
    intent = {"id": "pi_1", "object": "payment_intent", "amount": 5000, "amount_received": 5000, "currency": "usd",
              "status": "succeeded", "latest_charge": {"id": "ch_1", "object": "charge", "amount_refunded": 1250}}
    assert mapping.parse_payment(intent) == Payment("pi_1", "USD", Decimal("50.00"), Decimal("12.50"))
    unpaid = {**intent, "amount_received": 0, "latest_charge": None, "status": "requires_payment_method"}
    assert mapping.parse_payment(unpaid) == Payment("pi_1", "USD", Decimal("0.00"), Decimal("0.00"))
    with pytest.raises(mapping.UnexpectedAnswer, match="latest_charge"):
        mapping.parse_payment({**intent, "latest_charge": "ch_1"})


def test_a_charge_is_read_as_captured_and_refunded() -> None:
    charge = {"id": "ch_1", "object": "charge", "amount": 1200, "amount_captured": 1200, "amount_refunded": 200,
              "currency": "kwd"}
    assert mapping.parse_payment(charge) == Payment("ch_1", "KWD", Decimal("1.200"), Decimal("0.200"))
    with pytest.raises(mapping.UnexpectedAnswer):
        mapping.parse_payment({**charge, "object": "customer"})


def test_a_list_page_and_the_refund_carrying_a_key() -> None:
    other = {**REFUND, "id": "re_2", "metadata": {"clerk_key": "refund:RMA-8"}}
    page = {"object": "list", "data": [other, REFUND, {**REFUND, "id": "re_3", "metadata": None}],
            "has_more": True, "url": "/v1/refunds"}
    refunds, more = mapping.parse_list(page)
    assert more and len(refunds) == 3
    assert mapping.find_refund(refunds, "refund:RMA-7") == mapping.parse_refund(REFUND)
    assert mapping.find_refund(refunds, "refund:RMA-9") is None
    with pytest.raises(mapping.UnexpectedAnswer):
        mapping.parse_list({"data": [REFUND], "has_more": False})


# ------------------------------------------------------------------------ webhooks


def signed(body: bytes = EVENT, at: datetime = NOW, secret: str = SECRET) -> str:
    t = int(at.timestamp())
    return f"t={t},v1={mapping.webhook_signature(secret, t, body)},v0=ignored"


def test_a_delivery_signed_with_the_secret_verifies() -> None:
    assert mapping.verify_webhook(SECRET, signed(), EVENT, NOW + timedelta(seconds=30))


def test_the_signature_is_stripes_hmac_over_timestamp_dot_body() -> None:
    # Computed independently: printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test_secret
    assert mapping.webhook_signature(SECRET, 1700000000, b"{}") == (
        "ceb8863f7208fa249a6cd8f951e993c7563412aca65866f6272283debe143ab3")


def test_any_one_v1_signature_may_match_while_a_secret_is_rolled() -> None:
    t = int(NOW.timestamp())
    header = f"t={t},v1={'0' * 64},v1={mapping.webhook_signature(SECRET, t, EVENT)}"
    assert mapping.verify_webhook(SECRET, header, EVENT, NOW)


@pytest.mark.parametrize(("header", "body", "now", "secret"), [
    (signed(), EVENT + b" ", NOW, SECRET),  # the body was changed on the way
    (signed(secret="whsec_other"), EVENT, NOW, SECRET),  # signed with another secret
    (signed(), EVENT, NOW + timedelta(seconds=301), SECRET),  # too old: a replay
    (signed(at=NOW + timedelta(seconds=301)), EVENT, NOW, SECRET),  # dated too far ahead
    (signed().split(",", 1)[1], EVENT, NOW, SECRET),  # no timestamp
    (f"t=abc,v1={'0' * 64}", EVENT, NOW, SECRET),
    (f"t={int(NOW.timestamp())},v0={mapping.webhook_signature(SECRET, int(NOW.timestamp()), EVENT)}", EVENT, NOW,
     SECRET),  # only the test-mode scheme
    (signed(secret=" "), EVENT, NOW, " "),  # a blank secret never verifies
    (None, EVENT, NOW, SECRET),
])
def test_a_delivery_that_is_not_stripes_or_not_fresh_is_refused(header: str | None, body: bytes, now: datetime,
                                                                 secret: str) -> None:
    assert not mapping.verify_webhook(secret, header, body, now)


def test_the_tolerance_is_the_callers() -> None:
    assert mapping.verify_webhook(SECRET, signed(), EVENT, NOW + timedelta(seconds=600), tolerance=900)
    assert not mapping.verify_webhook(SECRET, signed(), EVENT, NOW + timedelta(seconds=60), tolerance=30)
