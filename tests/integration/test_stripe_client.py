"""The Stripe client against the Stripe sandbox over loopback: payments read, partial refunds
never over what was captured, refusals, idempotent replays, every refund made exactly once
under lost answers and faults, refund status followed to its end, and the sandbox's own
Stripe behaviour (idempotency, refusals) asked directly."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from domain.orders import Lifecycle
from integrations import wiring
from integrations.protocols import Payment, PaymentGateway, RefundRefused, RefundState, UpstreamError
from integrations.sandbox.faults import Faults
from integrations.sandbox.server import serve_in_thread
from integrations.sandbox.store import StoreSpec, generate_store, payment_gateway
from integrations.sandbox.stripe import StripeSandbox, create_stripe_app, payment_intent_id
from integrations.settings import Settings
from integrations.stripe import StripeClient, mapping

KEY = "sk_test_clerk_4242"
PI = "pi_3NirD82eZvKYlo2C1oBvGA2n"
CH = "ch_3NirD82eZvKYlo2C0bAreCh9"  # a charge made without a PaymentIntent


def no_wait(_seconds: float) -> None:
    """Backoff without waiting, so retried tests run at loopback speed."""


@pytest.fixture
def sandbox() -> Iterator[tuple[StripeSandbox, str]]:
    app = create_stripe_app(api_key=KEY, faults=Faults(timeout_seconds=0.6, seed=5), retry_after=0)
    app.add_payment(PI, Decimal("100.00"), "USD")
    app.add_payment(CH, Decimal("5000"), "JPY")
    with serve_in_thread(app) as server:
        yield app, server.url


def make_client(url: str, **options: object) -> StripeClient:
    settings = {"timeout": 5, "max_attempts": 8, "sleep": no_wait, "rng": random.Random(2)} | options
    return StripeClient(KEY, url, **settings)  # type: ignore[arg-type]


@pytest.fixture
def client(sandbox: tuple[StripeSandbox, str]) -> Iterator[StripeClient]:
    with make_client(sandbox[1]) as c:
        yield c


def stripe_post(url: str, form: dict[str, str], key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {KEY}"} | ({"Idempotency-Key": key} if key else {})
    return httpx.post(f"{url}/v1/refunds", data=form, headers=headers)


# ------------------------------------------------------------------------ setup


def test_the_client_is_a_payment_gateway(client: StripeClient) -> None:
    assert isinstance(client, PaymentGateway) and client.name == "stripe"


def test_from_settings_names_the_missing_key() -> None:
    with StripeClient.from_settings(Settings(stripe_api_key="sk_test_x", http_max_attempts=2)) as built:
        assert str(built.api) == "https://api.stripe.com/v1/"
    with pytest.raises(UpstreamError) as caught:
        StripeClient.from_settings(Settings(stripe_api_key=None))
    assert caught.value.setting == "CLERK_STRIPE_API_KEY"


@pytest.mark.parametrize("url", ["http://api.stripe.com", "api.stripe.com", "ftp://api.stripe.com"])
def test_a_url_that_would_leak_the_key_names_the_variable(url: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        StripeClient(KEY, url)
    assert caught.value.setting == "CLERK_STRIPE_API_URL"


def test_wiring_builds_the_gateway_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_STRIPE_API_KEY", KEY)
    monkeypatch.setenv("CLERK_STRIPE_API_URL", "http://127.0.0.1:9")
    wiring.reset()
    try:
        built = wiring.payment_gateway()
        assert isinstance(built, StripeClient) and wiring.payment_gateway() is built
        assert built.url == "http://127.0.0.1:9"
        with pytest.raises(UpstreamError) as caught:
            wiring.build_payment_gateway(Settings(stripe_api_key=None))
        assert caught.value.setting == "CLERK_STRIPE_API_KEY"
    finally:
        wiring.reset()


def test_a_wrong_key_names_the_variable_and_never_the_key(sandbox: tuple[StripeSandbox, str]) -> None:
    with StripeClient("sk_test_wrong_key_9999", sandbox[1], sleep=no_wait) as wrong, \
            pytest.raises(UpstreamError) as caught:
        wrong.payment(PI)
    assert caught.value.setting == "CLERK_STRIPE_API_KEY"
    assert "sk_test_wrong" not in str(caught.value)


def test_the_key_is_never_logged(client: StripeClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        client.refund(PI, Decimal("1.00"), "USD", "refund:log")
        client.payment(PI)
    assert caplog.records and KEY not in caplog.text


def test_an_api_that_does_not_answer_names_the_url() -> None:
    with StripeClient(KEY, "http://127.0.0.1:9", sleep=no_wait, max_attempts=2) as nowhere, \
            pytest.raises(UpstreamError) as caught:
        nowhere.payment(PI)
    assert caught.value.setting == "CLERK_STRIPE_API_URL"


# ------------------------------------------------------------------------ payments


def test_every_paid_store_order_has_a_payment_intent_for_its_total() -> None:
    store = generate_store(StoreSpec(seed=11, orders=120, tricky_share=0.0))
    app = create_stripe_app(store, api_key=KEY)
    paid = [o for o in store.orders if o.lifecycle is not Lifecycle.CANCELLED and payment_gateway(o.id) == "stripe"]
    cancelled = next(o for o in store.orders if o.lifecycle is Lifecycle.CANCELLED)
    by_paypal = next(o for o in store.orders if o.lifecycle is not Lifecycle.CANCELLED and payment_gateway(o.id) != "stripe")
    with serve_in_thread(app) as server, make_client(server.url) as client:
        for order in paid[:5]:
            assert client.payment(payment_intent_id(order.id)) == Payment(
                payment_intent_id(order.id), order.currency, Decimal(order.total), Decimal("0.00"))
        for unpaid in (cancelled, by_paypal):  # Stripe never took these
            with pytest.raises(UpstreamError, match="resource_missing"):
                client.payment(payment_intent_id(unpaid.id))
    assert len(app.payment_intents) == len(paid)
    assert payment_intent_id(paid[0].id) == payment_intent_id(paid[0].id) != payment_intent_id(paid[1].id)
    assert len(payment_intent_id(paid[0].id)) == len("pi_") + 24


def test_a_charge_in_a_zero_decimal_currency_is_read_in_yen(client: StripeClient) -> None:
    assert client.payment(CH) == Payment(CH, "JPY", Decimal("5000"), Decimal("0"))
    refund = client.refund(CH, Decimal("1200"), "JPY", "refund:yen")
    assert (refund.payment, refund.amount, refund.currency) == (CH, Decimal("1200"), "JPY")
    assert client.payment(CH).refunded == Decimal("1200")


# ------------------------------------------------------------------------ refunds


def test_partial_refunds_never_add_up_to_more_than_was_captured(
        client: StripeClient, sandbox: tuple[StripeSandbox, str]) -> None:
    app = sandbox[0]
    first = client.refund(PI, Decimal("30.00"), "USD", "refund:RMA-1", "requested_by_customer")
    second = client.refund(PI, Decimal("50.00"), "USD", "refund:RMA-2", "damaged")
    assert (first.amount, second.amount, first.key, second.key) == (
        Decimal("30.00"), Decimal("50.00"), "refund:RMA-1", "refund:RMA-2")
    assert first.state is second.state is RefundState.PENDING and first.payment == PI
    assert client.payment(PI).refunded == Decimal("80.00")
    posts = len(app.refund_keys)
    with pytest.raises(RefundRefused) as caught:
        client.refund(PI, Decimal("20.01"), "USD", "refund:RMA-3")
    assert caught.value.code == "amount_too_large"
    assert len(app.refund_keys) == posts  # refused before the call: Stripe never saw it
    client.refund(PI, Decimal("20.00"), "USD", "refund:RMA-3")
    with pytest.raises(RefundRefused, match="amount_too_large"):
        client.refund(PI, Decimal("0.01"), "USD", "refund:RMA-4")
    assert app.refunds_created(PI) == 3 and len(app.refund_keys) == posts + 1
    assert app.refunds[second.reference].metadata == {"clerk_key": "refund:RMA-2", "clerk_reason": "damaged"}
    assert app.refunds[first.reference].reason == "requested_by_customer"


def test_a_refund_in_another_currency_is_refused_before_the_call(
        client: StripeClient, sandbox: tuple[StripeSandbox, str]) -> None:
    with pytest.raises(RefundRefused) as caught:
        client.refund(PI, Decimal("10.00"), "EUR", "refund:eur")
    assert caught.value.code == "currency_mismatch" and sandbox[0].refund_keys == []


def test_stripes_own_refusal_is_a_refund_refused(client: StripeClient, sandbox: tuple[StripeSandbox, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    app = sandbox[0]
    app.dispute(CH)
    with pytest.raises(RefundRefused) as caught:
        client.refund(CH, Decimal("100"), "JPY", "refund:disputed")
    assert caught.value.code == "charge_disputed" and app.refund_keys == ["refund:disputed"]
    # A refund racing another one: Clerk's read is stale, Stripe's own check refuses it.
    client.refund(PI, Decimal("90.00"), "USD", "refund:first")
    monkeypatch.setattr(client, "_payment_now", lambda ref: Payment(ref, "USD", Decimal("100.00"), Decimal("0")))
    with pytest.raises(RefundRefused) as caught:
        client.refund(PI, Decimal("20.00"), "USD", "refund:racing")
    assert caught.value.code == "amount_too_large" and "greater than unrefunded" in caught.value.detail
    assert app.refunds_created(PI) == 1 and app.refund_keys[-1] == "refund:racing"


def test_the_same_key_gives_the_same_refund_once(client: StripeClient, sandbox: tuple[StripeSandbox, str]) -> None:
    first = client.refund(PI, Decimal("25.00"), "USD", "refund:RMA-9")
    again = client.refund(PI, Decimal("25.00"), "USD", "refund:RMA-9")
    assert again == first and sandbox[0].refunds_created() == 1
    assert client.find_refund(PI, "refund:RMA-9") == first
    assert client.find_refund(PI, "refund:RMA-0") is None


def test_the_same_key_for_another_amount_is_an_idempotency_error(
        client: StripeClient, sandbox: tuple[StripeSandbox, str]) -> None:
    app = sandbox[0]
    client.refund(PI, Decimal("25.00"), "USD", "refund:RMA-9")
    with pytest.raises(RefundRefused) as caught:
        client.refund(PI, Decimal("26.00"), "USD", "refund:RMA-9")
    assert caught.value.code == "idempotency_error" and len(app.refund_keys) == 1
    # The key on another payment is found by no look-up: Stripe itself refuses it.
    with pytest.raises(RefundRefused) as caught:
        client.refund(CH, Decimal("100"), "JPY", "refund:RMA-9")
    assert caught.value.code == "idempotency_error" and app.refund_keys == ["refund:RMA-9"] * 2
    assert app.refunds_created() == 1


def test_a_refund_is_found_across_pages(client: StripeClient, sandbox: tuple[StripeSandbox, str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(5):
        client.refund(PI, Decimal("1.00"), "USD", f"refund:page-{n}")
    monkeypatch.setattr(mapping, "MAX_PAGE_SIZE", 2)
    oldest = client.find_refund(PI, "refund:page-0")  # on the third page, newest first
    assert oldest is not None and oldest.key == "refund:page-0"
    assert client.find_refund(sandbox[0].payment_intents[PI].id, "refund:page-1") is not None
    assert client.find_refund(PI, "refund:page-9") is None


# ------------------------------------------------------------------------ exactly once


def refund_many(client: StripeClient, payments: list[str], rounds: int) -> dict[str, int]:
    """`rounds` partial refunds of 1.00 on each payment, each under its own key."""
    for n in range(rounds):
        for payment in payments:
            refund = client.refund(payment, Decimal("1.00"), "USD", f"refund:{payment}:{n}")
            assert refund.amount == Decimal("1.00") and refund.key == f"refund:{payment}:{n}"
    return {payment: rounds for payment in payments}


def test_every_refund_is_made_exactly_once_under_lost_answers_and_faults() -> None:
    faults = Faults(error_rate=0.06, throttle_rate=0.06, timeout_rate=0.08, malformed_rate=0.03, drop_rate=0.03,
                    timeout_seconds=0.6, seed=17)
    app = create_stripe_app(api_key=KEY, faults=faults, retry_after=0)
    payments = [f"pi_chaos{n:020d}" for n in range(10)]
    for payment in payments:
        app.add_payment(payment, Decimal("10.00"), "USD")
    app.lose_refund_responses(0.25)
    with serve_in_thread(app) as server, make_client(server.url, timeout=0.3, max_attempts=14) as client:
        wanted = refund_many(client, payments, 3)
        assert all(client.payment(p).refunded == Decimal("3.00") for p in payments)
    assert {p: app.refunds_created(p) for p in payments} == wanted
    assert app.lost >= 5 and set(app.faults.injected) == {"error", "throttle", "timeout", "malformed", "drop"}
    assert app.replays >= 1  # a post held past the client's timeout landed after its retry: Stripe replayed it
    assert len({r.metadata["clerk_key"] for r in app.refunds.values()}) == 30


def test_pruned_keys_and_lost_answers_still_refund_once_because_the_client_looks_first() -> None:
    app = create_stripe_app(api_key=KEY, faults=Faults(error_rate=0.1, throttle_rate=0.1, drop_rate=0.05, seed=3),
                            retry_after=0, remember_keys=False)
    payments = [f"pi_pruned{n:019d}" for n in range(6)]
    for payment in payments:
        app.add_payment(payment, Decimal("10.00"), "USD")
    app.lose_refund_responses(0.5)
    with serve_in_thread(app) as server, make_client(server.url, max_attempts=14) as client:
        wanted = refund_many(client, payments, 3)
    assert {p: app.refunds_created(p) for p in payments} == wanted and app.lost >= 5 and app.replays == 0


def test_without_the_look_lost_answers_would_refund_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hazard the look-up guards against is real in this sandbox: the tests above can fail."""
    app = create_stripe_app(api_key=KEY, remember_keys=False)
    app.add_payment(PI, Decimal("100.00"), "USD")
    app.lose_refund_responses(0.5)
    with serve_in_thread(app) as server, make_client(server.url, max_attempts=14) as client:
        monkeypatch.setattr(client, "_find_now", lambda payment, key: None)
        for n in range(6):
            client.refund(PI, Decimal("1.00"), "USD", f"refund:blind-{n}")
    assert app.refunds_created(PI) > 6


def test_a_refund_still_running_upstream_is_waited_for_not_made_again() -> None:
    app = create_stripe_app(api_key=KEY, retry_after=0)
    app.add_payment(PI, Decimal("100.00"), "USD")
    app.delay_refunds(1, 1.0)
    with serve_in_thread(app) as server, make_client(server.url, timeout=0.3, max_attempts=12,
                                                     sleep=time.sleep) as client:
        refund = client.refund(PI, Decimal("40.00"), "USD", "refund:slow")
    assert app.refunds_created() == 1 and refund.amount == Decimal("40.00")
    assert app.conflicts >= 1 and set(app.refund_keys) == {"refund:slow"}  # 409 idempotency_key_in_use, retried


# ------------------------------------------------------------------------ status


def test_a_refund_is_followed_from_pending_to_succeeded(client: StripeClient) -> None:
    refund = client.refund(PI, Decimal("10.00"), "USD", "refund:follow")
    seen = [client.refund_status(refund.reference).state for _ in range(4)]
    assert seen == [RefundState.PENDING, RefundState.PENDING, RefundState.SUCCEEDED, RefundState.SUCCEEDED]
    assert client.payment(PI).refunded == Decimal("10.00")


def test_a_refund_to_a_dead_card_ends_failed_and_gives_the_money_back(
        client: StripeClient, sandbox: tuple[StripeSandbox, str]) -> None:
    sandbox[0].fail_refunds(PI)
    refund = client.refund(PI, Decimal("100.00"), "USD", "refund:dead-card")
    assert client.payment(PI).refunded == Decimal("100.00")
    while (now := client.refund_status(refund.reference)).state is RefundState.PENDING:
        pass
    assert (now.state, now.failure_reason) == (RefundState.FAILED, "expired_or_canceled_card")
    assert client.payment(PI).refunded == Decimal("0.00")  # the money is back: a clerk may refund another way


def test_refunds_can_settle_by_age() -> None:
    app = create_stripe_app(api_key=KEY, settle_after_reads=None, settle_after_seconds=0.2)
    app.add_payment(PI, Decimal("100.00"), "USD")
    with serve_in_thread(app) as server, make_client(server.url) as client:
        refund = client.refund(PI, Decimal("1.00"), "USD", "refund:aged")
        assert client.refund_status(refund.reference).state is RefundState.PENDING
        time.sleep(0.25)
        assert client.refund_status(refund.reference).state is RefundState.SUCCEEDED


def test_an_unknown_refund_is_an_upstream_error(client: StripeClient) -> None:
    with pytest.raises(UpstreamError, match="resource_missing"):
        client.refund_status("re_nothing")


# ------------------------------------------------------------------------ the sandbox as Stripe


def test_the_sandbox_replays_a_key_with_the_same_parameters(sandbox: tuple[StripeSandbox, str]) -> None:
    app, url = sandbox
    form = {"payment_intent": PI, "amount": "500", "metadata[clerk_key]": "k"}
    first, again = stripe_post(url, form, "k"), stripe_post(url, form, "k")
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert app.refunds_created() == 1 and app.replays == 1
    other = stripe_post(url, {**form, "amount": "600"}, "k")
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    app.forget_keys()  # 24 hours later
    assert stripe_post(url, form, "k").json()["id"] != first.json()["id"] and app.refunds_created() == 2


def test_the_sandbox_refuses_what_stripe_refuses(sandbox: tuple[StripeSandbox, str]) -> None:
    app, url = sandbox

    def error(form: dict[str, str]) -> tuple[int, str | None, str | None]:
        answer = stripe_post(url, form)
        body = answer.json()["error"]
        return answer.status_code, body.get("code"), body.get("param")

    assert error({"payment_intent": PI, "amount": "10001"}) == (400, "amount_too_large", "amount")
    assert error({"payment_intent": PI, "amount": "-1"}) == (400, "parameter_invalid_integer", "amount")
    assert error({"amount": "100"}) == (400, "parameter_missing", None)
    assert error({"payment_intent": "pi_nope"}) == (404, "resource_missing", "payment_intent")
    assert error({"payment_intent": PI, "colour": "red"}) == (400, "parameter_unknown", "colour")
    assert error({"payment_intent": PI, "reason": "damaged"}) == (400, "parameter_invalid_string", "reason")
    assert stripe_post(url, {"payment_intent": PI}).json()["amount"] == 10000  # the whole rest by default
    assert error({"charge": app.payment_intents[PI].id, "amount": "1"}) == (400, "charge_already_refunded", None)
    assert app.refunds_created() == 1
    unauthorised = httpx.get(f"{url}/v1/refunds", headers={"Authorization": "Bearer sk_test_wrong_1234"})
    assert unauthorised.status_code == 401 and unauthorised.json()["error"]["type"] == "invalid_request_error"
    assert "sk_test_wrong_1234" not in unauthorised.text


def test_the_sandbox_answers_409_while_a_key_is_in_flight(sandbox: tuple[StripeSandbox, str]) -> None:
    app, url = sandbox
    app.delay_refunds(1, 0.5)
    form = {"payment_intent": PI, "amount": "100"}
    slow = threading.Thread(target=stripe_post, args=(url, form, "busy"))
    slow.start()
    time.sleep(0.2)
    clash = stripe_post(url, form, "busy")
    slow.join()
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "idempotency_key_in_use"
    assert app.refunds_created() == 1 and stripe_post(url, form, "busy").headers["idempotent-replayed"] == "true"


def test_the_sandbox_throttles_with_retry_after() -> None:
    app = create_stripe_app(api_key=KEY, faults=Faults(throttle_rate=1.0), retry_after=2)
    with serve_in_thread(app) as server:
        answer = httpx.get(f"{server.url}/v1/charges/{CH}", headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 429 and answer.headers["retry-after"] == "2"
    assert answer.json()["error"]["code"] == "rate_limit"
