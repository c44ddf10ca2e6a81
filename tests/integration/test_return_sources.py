"""Each channel client's `return_requests` against its sandbox over loopback: the seeded return
requests (refunds, credit memos) read in pages, Clerk's own refunds skipped, a malformed record
reported without stopping the others, and each order's payment read with it.

A record that cannot be read is left out and an `Unreadable` naming it goes to the list the caller
passes (see `integrations.protocols.ReturnSource`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from integrations.magento import MagentoClient
from integrations.protocols import RETURN_REASONS, ReturnSource, Unreadable
from integrations.sandbox.magento import create_magento_app
from integrations.sandbox.server import serve_in_thread
from integrations.sandbox.shopify import DEFAULT_TOKEN, create_shopify_app
from integrations.sandbox.shopify.render import gid
from integrations.sandbox.shopify.returns import seeded as hand_made
from integrations.sandbox.store import SeededReturn, Store, StoreSpec, generate_store, payment_gateway
from integrations.sandbox.woocommerce import DEFAULT_KEY, DEFAULT_SECRET, create_woocommerce_app
from integrations.shopify import ShopifyClient
from integrations.woocommerce import WooCommerceClient

CHANNELS = ("shopify", "woocommerce", "magento")
MAGENTO_TOKEN = "return_sources_test"


@dataclass
class Channel:
    name: str
    store: Store
    app: Any
    client: Any
    page_size: int  # small, so the seeded returns take several pages


def _store() -> Store:
    return generate_store(StoreSpec(seed=41, orders=300, tricky_share=0, days=30))


@pytest.fixture(params=CHANNELS)
def channel(request: pytest.FixtureRequest) -> Iterator[Channel]:
    name, store = request.param, _store()
    with ExitStack() as stack:
        if name == "shopify":
            app = create_shopify_app(store, restore_rate=50_000)
            stack.callback(app.close)
            url = stack.enter_context(serve_in_thread(app)).url
            client = stack.enter_context(ShopifyClient(url, DEFAULT_TOKEN, sleep=lambda _: None))
            yield Channel(name, store, app, client, 2)
        elif name == "woocommerce":
            app = create_woocommerce_app(store)
            url = stack.enter_context(serve_in_thread(app)).url
            client = stack.enter_context(WooCommerceClient(url, DEFAULT_KEY, DEFAULT_SECRET, timeout=5,
                                                           sleep=lambda _: None))
            yield Channel(name, store, app, client, 20)
        else:
            app = create_magento_app(store, token=MAGENTO_TOKEN)
            url = stack.enter_context(serve_in_thread(app)).url
            client = stack.enter_context(MagentoClient(url, MAGENTO_TOKEN, sleep=lambda _: None))
            yield Channel(name, store, app, client, 2)


def _requests(channel: Channel) -> list[Any]:
    counted = channel.app.stats["requests"]
    problems: list[Unreadable] = []
    found = channel.client.return_requests(None, problems, page_size=channel.page_size)
    assert problems == []
    assert channel.app.stats["requests"] - counted > 3, "read in several pages"
    return found


def test_every_channel_client_is_a_return_source(channel: Channel) -> None:
    assert isinstance(channel.client, ReturnSource) and channel.client.channel == channel.name


def test_the_seeded_return_requests_are_read_in_pages(channel: Channel) -> None:
    seeded = channel.store.return_requests()
    found = _requests(channel)
    assert len(found) == len(seeded) == 6
    by_order = {line.id: line for o in channel.store.orders for line in o.lines}
    for want, got in zip(seeded, found, strict=True):
        order = channel.store.order(want.order_id)
        assert got.channel == channel.name
        assert got.order_number.lstrip("#0") == str(order.number)
        assert dict(got.lines) == {by_order[line].sku: units for line, units in want.lines}
        assert got.reason == want.reason and got.reason in RETURN_REASONS
        assert got.requested_at == want.requested_at
        assert got.refunded == (Decimal(want.amount) if want.refunded else Decimal(0))
    assert [r.requested_at for r in found] == sorted(r.requested_at for r in found)


def test_since_leaves_out_older_requests(channel: Channel) -> None:
    seeded = channel.store.return_requests()
    since = seeded[3].requested_at
    found = channel.client.return_requests(since, page_size=channel.page_size)
    assert [r.requested_at for r in found] == [r.requested_at for r in seeded[3:]]
    assert channel.client.return_requests(seeded[-1].requested_at + timedelta(seconds=1)) == []


def _add_malformed(channel: Channel) -> str:
    """A record the channel would send but Clerk cannot read (a line without a SKU, a bad quantity)."""
    first = channel.store.return_requests()[0]
    order = channel.store.order(first.order_id)
    late = SeededReturn(9, order.id, first.lines, "other", first.requested_at + timedelta(seconds=1), "1.00",
                        False, None)
    if channel.name == "shopify":
        line = {"__typename": "ReturnLineItem", "id": gid("ReturnLineItem", 999), "quantity": 1,
                "returnReason": "OTHER", "returnReasonNote": "", "customerNote": None,
                "fulfillmentLineItem": {"id": gid("FulfillmentLineItem", 999), "quantity": 1,
                                        "lineItem": {"sku": None}}}
        return channel.app.returns.add(order, hand_made(order, 9, first.lines, "other", late.requested_at),
                                       "REQUESTED", [line])
    if channel.name == "woocommerce":
        refund = channel.app.seed_refund(late)
        refund["line_items"][0]["quantity"] = "-1"
        return str(refund["id"])
    memo = channel.app.documents.seed_creditmemo(late)
    del memo["items"][0]["sku"]
    return str(memo["entity_id"])


def test_a_malformed_record_is_reported_and_the_others_are_read(channel: Channel) -> None:
    bad = _add_malformed(channel)
    problems: list[Unreadable] = []
    found = channel.client.return_requests(None, problems, page_size=channel.page_size)
    assert len(found) == 6 and bad not in {r.external_id for r in found}
    assert [(p.reason, p.external_id) for p in problems] == [("malformed", bad)]
    assert channel.client.return_requests(None, page_size=channel.page_size) == found, "logged, not raised"


def test_clerks_own_refunds_are_not_return_requests(channel: Channel) -> None:
    if channel.name == "shopify":
        pytest.skip("Shopify returns are asked for by buyers; Clerk's refunds are no Return")
    target = channel.store.order(channel.store.return_requests()[1].order_id)
    sku = target.lines[0].sku
    external = str(target.id) if channel.name == "woocommerce" else str(channel.app.render(target)["entity_id"])
    if channel.name == "magento":
        target.lifecycle = target.lifecycle.OPEN  # Magento credits an order that is not closed
    channel.client.refund(external, {sku: 1}, Decimal("1.00"), "damaged", "refund:rma-77")
    found = channel.client.return_requests(None, page_size=channel.page_size)
    assert len(found) == 6


def test_orders_carry_their_payment(channel: Channel) -> None:
    payloads = channel.client.changed_orders(None, None, 40).payloads
    payments = {}
    for payload in payloads:
        parsed = channel.client.parse_order(payload)
        if parsed.payment is not None:
            payments[parsed.external_id] = parsed.payment
    assert payments
    assert {p.gateway for p in payments.values()} == {"stripe", "paypal"} or \
        {p.gateway for p in payments.values()} == {"stripe"}
    stripe = [p for p in payments.values() if p.gateway == "stripe" and p.reference]
    assert stripe and all(p.reference.startswith("pi_") for p in stripe)


def test_an_order_paid_with_paypal_reads_as_paypal(channel: Channel) -> None:
    paypal = next(o for o in channel.store.orders if payment_gateway(o.id) == "paypal")
    if channel.name == "shopify":
        payload = channel.client.changed_orders(None, None, 400).payloads
        payload = next(p for p in payload if p["id"] == gid("Order", paypal.id))
    elif channel.name == "woocommerce":
        payload = channel.client.order(paypal.id)
    else:
        payload = channel.client.order(str(channel.app.render(paypal)["entity_id"]))
    payment = channel.client.parse_order(payload).payment
    assert payment is not None and payment.gateway == "paypal" and not (payment.reference or "").startswith("pi_")
