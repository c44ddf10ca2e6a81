"""The one write-back port (`OrderWriter`) against each channel's sandbox: every write lands
exactly once though its answer is lost and the call repeated, and SKUs a channel does not
sell come back from `set_stock` rather than failing it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from domain.orders import Lifecycle
from integrations.magento import MagentoClient
from integrations.protocols import OrderWriter, StockLevel, Tracking
from integrations.sandbox.magento import create_magento_app
from integrations.sandbox.server import serve_in_thread
from integrations.sandbox.shopify import DEFAULT_TOKEN, create_shopify_app
from integrations.sandbox.shopify.render import gid
from integrations.sandbox.store import Order, Store, StoreSpec, generate_store
from integrations.sandbox.woocommerce import DEFAULT_KEY, DEFAULT_SECRET, create_woocommerce_app
from integrations.shopify import ShopifyClient
from integrations.woocommerce import WooCommerceClient

CHANNELS = ("shopify", "woocommerce", "magento")
MAGENTO_TOKEN = "order_writers_test"


@dataclass
class Channel:
    """One sandbox and a client of it, seen through what the tests need to count."""

    name: str
    store: Store
    app: Any
    client: Any
    lose: Callable[[int], None]
    writes: Callable[[str], int]  # writes of a kind: stock | note | fulfillment | refund
    external_id: Callable[[Order], str]
    pending_losses: Callable[[], int]  # answers the sandbox has still to lose

    def an_order(self) -> tuple[str, str, int]:
        """An open order of one shippable line of 2+ units: its external id, SKU and units."""
        for order in self.store.orders:
            if order.lifecycle is not Lifecycle.OPEN or order.reason or len(order.lines) != 1:
                continue
            line = order.lines[0]
            if not line.sku or line.quantity < 2 or not line.requires_shipping or not order.requires_shipping:
                continue
            if self.name == "magento" and self.app.render(order)["state"] != "processing":
                continue
            return self.external_id(order), line.sku, line.quantity
        raise AssertionError("no open single-line order to write to")


def _woo_kind(method: str, path: str) -> str:
    if path.endswith("/notes"):
        return "note"
    if path.endswith("/refunds"):
        return "refund"
    if "/products/" in path:
        return "stock"
    return "status" if method == "PUT" else "other"


@pytest.fixture(params=CHANNELS)
def channel(request: pytest.FixtureRequest) -> Iterator[Channel]:
    name = request.param
    store = generate_store(StoreSpec(seed=41, orders=150, tricky_share=0, days=10))
    with ExitStack() as stack:
        if name == "shopify":
            app = create_shopify_app(store, restore_rate=50_000)
            stack.callback(app.close)
            url = stack.enter_context(serve_in_thread(app)).url
            client = stack.enter_context(ShopifyClient(url, DEFAULT_TOKEN, sleep=lambda _: None))
            kinds = {"stock": "stock", "note": "note", "fulfillment": "fulfillment", "refund": "refund"}
            yield Channel(name, store, app, client, app.write_backs.lose_write_responses,
                          lambda kind: sum(w["kind"] == kinds[kind] for w in app.write_backs.writes),
                          lambda order: gid("Order", order.id), lambda: app.write_backs._lose)
        elif name == "woocommerce":
            app = create_woocommerce_app(store)
            url = stack.enter_context(serve_in_thread(app)).url
            client = stack.enter_context(WooCommerceClient(url, DEFAULT_KEY, DEFAULT_SECRET, timeout=5,
                                                           sleep=lambda _: None))
            yield Channel(name, store, app, client, app.drop_next_writes,
                          lambda kind: sum(_woo_kind(m, p) == {"fulfillment": "status"}.get(kind, kind)
                                           for m, p, _ in app.writes),
                          lambda order: str(order.id), lambda: app._drop_writes)
        else:
            app = create_magento_app(store, token=MAGENTO_TOKEN)
            url = stack.enter_context(serve_in_thread(app)).url
            client = stack.enter_context(MagentoClient(url, MAGENTO_TOKEN, sleep=lambda _: None))
            kinds = {"stock": "stock", "note": "comment", "fulfillment": "shipment", "refund": "creditmemo"}
            yield Channel(name, store, app, client, app.lose_write_responses,
                          lambda kind: sum(w["kind"] == kinds[kind] for w in app.writes),
                          lambda order: str(app.render(order)["entity_id"]), lambda: app.lost_responses)


def test_every_channel_client_is_an_order_writer(channel: Channel) -> None:
    assert isinstance(channel.client, OrderWriter) and channel.client.channel == channel.name


def test_stock_is_set_once_and_unknown_skus_are_returned(channel: Channel) -> None:
    skus = [v.sku for v in channel.store.variants[:2]]
    levels = [StockLevel(skus[0], 7), StockLevel("NO-SUCH-SKU", 3), StockLevel(skus[1], 0)]
    channel.lose(1)
    assert channel.client.set_stock(levels, "stock:1") == ["NO-SUCH-SKU"]
    assert channel.pending_losses() == 0, "an answer was lost"
    writes = channel.writes("stock")
    assert channel.client.set_stock(levels, "stock:1") == ["NO-SUCH-SKU"]
    assert channel.writes("stock") == writes, "a repeat writes nothing"
    # One write per SKU where the channel sets stock one product at a time, else one in all.
    assert writes == (2 if channel.name == "woocommerce" else 1)


def test_a_note_is_written_once_across_a_lost_answer(channel: Channel) -> None:
    order_id, _, _ = channel.an_order()
    channel.lose(1)
    reference = channel.client.add_order_note(order_id, "Held for a person: address", "note:1")
    assert channel.pending_losses() == 0, "an answer was lost"
    assert channel.client.add_order_note(order_id, "Held for a person: address", "note:1") == reference
    assert channel.writes("note") == 1


def test_a_fulfilment_is_written_once_across_a_lost_answer(channel: Channel) -> None:
    order_id, sku, units = channel.an_order()
    tracking = Tracking("1Z999AA10123456784", "UPS", "https://www.ups.com/track?tracknum=1Z999AA10123456784")
    channel.lose(1)
    reference = channel.client.fulfill(order_id, {sku: units}, tracking, "ship:1")
    assert channel.pending_losses() == 0, "an answer was lost"
    assert channel.client.fulfill(order_id, {sku: units}, tracking, "ship:1") == reference
    assert channel.writes("fulfillment") == 1
    if channel.name == "woocommerce":  # the note records the shipment there
        assert channel.writes("note") == 1
        assert "1Z999AA10123456784" in channel.app.notes[int(order_id)][0]["note"]


def test_a_refund_is_written_once_across_a_lost_answer(channel: Channel) -> None:
    order_id, sku, _ = channel.an_order()
    channel.lose(1)
    reference = channel.client.refund(order_id, {sku: 1}, Decimal("1.50"), "damaged", "refund:1")
    assert channel.pending_losses() == 0, "an answer was lost"
    assert channel.client.refund(order_id, {sku: 1}, Decimal("1.50"), "damaged", "refund:1") == reference
    assert channel.writes("refund") == 1


def test_units_not_on_the_order_are_refused_before_writing(channel: Channel) -> None:
    order_id, _, _ = channel.an_order()
    with pytest.raises(ValueError):
        channel.client.refund(order_id, {"NO-SUCH-SKU": 1}, Decimal("1.00"), "x", "refund:x")
    with pytest.raises(ValueError):
        channel.client.fulfill(order_id, {"NO-SUCH-SKU": 1}, None, "ship:x")
    assert channel.writes("refund") == channel.writes("fulfillment") == 0
