"""The one write-back port (`OrderWriter`) against each channel's sandbox: every write lands
exactly once though its answer is lost and the call repeated, and SKUs a channel does not
sell come back from `set_stock` rather than failing it. Then Shopify's own cases: orders with
more fulfillment orders, lines and shipments than a page holds, shipments from several
locations, and refunds in the buyer's currency."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from domain.orders import Lifecycle
from integrations.magento import MagentoClient
from integrations.protocols import OrderWriter, StockLevel, Tracking, UpstreamError
from integrations.sandbox.magento import create_magento_app
from integrations.sandbox.server import serve_in_thread
from integrations.sandbox.shopify import DEFAULT_TOKEN, ShopifySandbox, create_shopify_app
from integrations.sandbox.shopify.render import gid
from integrations.sandbox.store import Line, Order, Store, StoreSpec, generate_store
from integrations.sandbox.woocommerce import DEFAULT_KEY, DEFAULT_SECRET, create_woocommerce_app
from integrations.shopify import ShopifyClient, mapping, queries
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


def _a_store() -> Store:
    return generate_store(StoreSpec(seed=41, orders=150, tricky_share=0, days=10))


def _serve_shopify(stack: ExitStack, store: Store) -> tuple[ShopifySandbox, ShopifyClient]:
    app = create_shopify_app(store, restore_rate=50_000)
    stack.callback(app.close)
    url = stack.enter_context(serve_in_thread(app)).url
    return app, stack.enter_context(ShopifyClient(url, DEFAULT_TOKEN, sleep=lambda _: None))


@pytest.fixture(params=CHANNELS)
def channel(request: pytest.FixtureRequest) -> Iterator[Channel]:
    name = request.param
    store = _a_store()
    with ExitStack() as stack:
        if name == "shopify":
            app, client = _serve_shopify(stack, store)
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
    first, second = channel.store.variants[:2]
    assert first.product_id == second.product_id, "one product's variations: one batch on WooCommerce too"
    levels = [StockLevel(first.sku, 7), StockLevel("NO-SUCH-SKU", 3), StockLevel(second.sku, 0)]
    channel.lose(1)
    report = channel.client.set_stock(levels, "stock:1")
    assert (report.written, report.unknown, report.conflicts) == ([first.sku, second.sku], ["NO-SUCH-SKU"], {})
    assert channel.pending_losses() == 0, "an answer was lost"
    assert channel.writes("stock") == 1, "both SKUs in one write, not repeated after the lost answer"
    again = channel.client.set_stock(levels, "stock:1")
    assert (again.written, again.already, again.unknown) == ([], [first.sku, second.sku], ["NO-SUCH-SKU"])
    assert channel.writes("stock") == 1, "a repeat writes nothing"


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


# ---------------------------------------------------------------------- Shopify's own cases


@pytest.fixture
def shopify() -> Iterator[tuple[ShopifySandbox, ShopifyClient]]:
    with ExitStack() as stack:
        yield _serve_shopify(stack, _a_store())


def _order_of(store: Store, count: int) -> Order:
    """An open order given `count` fresh lines of 2 units (SKUs repeat past the catalog's size)."""
    order = next(o for o in store.orders if o.lifecycle is Lifecycle.OPEN and o.requires_shipping)
    variants = [v for v in store.variants if v.requires_shipping]
    chosen = [variants[n % len(variants)] for n in range(count)]
    first_id = max(line.id for o in store.orders for line in o.lines) + 1
    order.lines = [Line(first_id + n, v.id, v.sku, v.product_title, v.title, 2, str(v.price), "0.00", True)
                   for n, v in enumerate(chosen)]
    return order


def _units(order: Order) -> dict[str, int]:
    """The order's units by SKU, a repeated SKU's added up."""
    units: dict[str, int] = {}
    for line in order.lines:
        units[str(line.sku)] = units.get(str(line.sku), 0) + line.quantity
    return units


def _fulfillments(app: ShopifySandbox) -> list[dict[str, Any]]:
    return [w for w in app.write_backs.writes if w["kind"] == "fulfillment"]


def test_a_shipment_reads_every_fulfillment_order_and_line(shopify: tuple[ShopifySandbox, ShopifyClient]) -> None:
    app, client = shopify
    order = _order_of(app.store, 120)
    sizes = [60, 30, 10, 8, 5, 4, 3]
    assert len(sizes) > queries.FULFILLMENT_ORDERS_PER_PAGE and max(sizes) > queries.LINES_PER_FULFILLMENT_ORDER
    assert sum(sizes) > queries.LINES_PER_FOLLOW_UP, "the fulfillment's lines take two pages to read back"
    line_ids = iter(line.id for line in order.lines)
    app.write_backs.split_fulfillment_orders(order.id, [(1, [next(line_ids) for _ in range(n)]) for n in sizes])
    reference = client.fulfill(gid("Order", order.id), _units(order), None, "ship:all")
    assert all(app.write_backs.fulfilled[line.id] == line.quantity for line in order.lines)
    # Untracked, the shipment is recognised by all 120 of its lines' units.
    assert client.fulfill(gid("Order", order.id), _units(order), None, "ship:all") == reference
    assert [gid("Fulfillment", w["id"]) for w in _fulfillments(app)] == [reference]


def test_a_shipment_is_found_among_more_than_a_page_of_them(shopify: tuple[ShopifySandbox, ShopifyClient]) -> None:
    app, client = shopify
    order = _order_of(app.store, queries.FULFILLMENTS_PER_FULFILLMENT_ORDER + 2)
    references = [client.fulfill(gid("Order", order.id), {line.sku: 2}, Tracking(f"1Z{n}", "UPS"), f"ship:{n}")
                  for n, line in enumerate(order.lines)]
    last = len(order.lines) - 1
    again = client.fulfill(gid("Order", order.id), {order.lines[last].sku: 2}, Tracking(f"1Z{last}", "UPS"),
                           f"ship:{last}")
    assert again == references[last] and len(_fulfillments(app)) == len(order.lines)


@pytest.mark.parametrize("tracking", [Tracking("1Z999AA10123456784", "UPS"), None], ids=["tracked", "untracked"])
def test_a_shipment_from_several_locations_is_one_fulfillment_at_each_once(
        shopify: tuple[ShopifySandbox, ShopifyClient], tracking: Tracking | None) -> None:
    app, client = shopify
    order = _order_of(app.store, 6)
    ids = [line.id for line in order.lines]
    placed = app.write_backs.split_fulfillment_orders(order.id, [(3, ids[:2]), (1, ids[2:4]), (2, ids[4:5]),
                                                                 (3, ids[5:])])
    whole = {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo} for fo in placed]}
    with pytest.raises(UpstreamError, match="single location"):
        client._query("CreateFulfillment", queries.CREATE_FULFILLMENT, {"fulfillment": whole},
                      mapping.parse_create_fulfillment)
    app.write_backs.lose_write_responses(2)  # the first two answers are lost: two attempts stop halfway
    reference = client.fulfill(gid("Order", order.id), _units(order), tracking, "ship:3")
    assert app.write_backs._lose == 0, "the answers were lost"
    made = _fulfillments(app)
    assert [w["location"] for w in made] == [1, 2, 3]
    assert reference == ",".join(gid("Fulfillment", w["id"]) for w in made)
    assert made[2]["lines"] == {order.lines[n].sku: 2 for n in (0, 1, 5)}, "both of location 3's, together"
    assert client.fulfill(gid("Order", order.id), _units(order), tracking, "ship:3") == reference
    assert len(_fulfillments(app)) == 3


def test_a_refund_is_made_in_the_buyers_currency(shopify: tuple[ShopifySandbox, ShopifyClient]) -> None:
    app, client = shopify
    order = _order_of(app.store, 1)
    app.write_backs.present_in(order.id, "EUR", Decimal("0.5"))
    paid = (Decimal(order.total) / 2).quantize(Decimal("0.01"))
    with pytest.raises(ValueError, match="payments total"):  # read in euros, the shop's dollars would do
        client.refund(gid("Order", order.id), {}, paid + Decimal("0.01"), "goodwill", "refund:eur:over")
    reference = client.refund(gid("Order", order.id), {order.lines[0].sku: 1}, paid, "damaged", "refund:eur")
    [refund] = [w for w in app.write_backs.writes if w["kind"] == "refund"]
    assert reference == gid("Refund", refund["id"])
    assert (refund["currency"], refund["amount"]) == ("EUR", paid)
