"""`set_stock` against each channel's sandbox: a count changed on the channel since Clerk's last
push is reported as a conflict and left as it is, and counts are read and written in batches.
Then Shopify's compare-and-set: a count that moves between the read and the write is refused
with the whole mutation and judged again, and a mutation retried after a lost answer keeps its
idempotency key."""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from graphql import GraphQLError

from integrations.protocols import StockLevel
from integrations.sandbox.server import serve_in_thread
from integrations.sandbox.shopify import DEFAULT_TOKEN, create_shopify_app
from integrations.sandbox.shopify.search import find_orders, find_variants, parse_search
from integrations.sandbox.woocommerce.render import is_variable
from integrations.shopify import ShopifyClient
from tests.integration.test_order_writers import Channel, _a_store, channel  # noqa: F401 - the fixture
from tests.stock_shelf import shelf


def test_a_count_changed_on_the_channel_is_a_conflict_left_as_it_is(channel: Channel) -> None:
    stock = shelf(channel.name, channel.app)
    a, b, c = (v.sku for v in channel.store.variants[:3])
    first = channel.client.set_stock([StockLevel(a, 7), StockLevel(b, 4), StockLevel(c, 2)], "stock:1")
    assert first.written == [a, b, c], "never pushed: whatever the channel showed is taken over"
    stock.edit(a, 9)  # a merchant recounts A in the channel's admin

    second = channel.client.set_stock([StockLevel(a, 5, 7), StockLevel(b, 3, 4), StockLevel(c, 2, 2)], "stock:2")
    assert (second.conflicts, second.written, second.already) == ({a: 9}, [b], [c])
    assert stock.shown(a) == 9, "not overwritten"

    stock.edit(a, 5)  # a person puts the channel right: the two sides agree again
    third = channel.client.set_stock([StockLevel(a, 5, 7)], "stock:3")
    assert (third.conflicts, third.already, third.written) == ({}, [a], [])
    assert (stock.written(a), stock.written(b), stock.written(c)) == ([7], [4, 3], [2])


def test_counts_are_read_and_written_in_batches(channel: Channel) -> None:
    stock = shelf(channel.name, channel.app)
    variants = channel.store.variants
    levels = [StockLevel(v.sku, 1000 + n) for n, v in enumerate(variants)] + [StockLevel("NO-SUCH-SKU", 1)]
    before = channel.app.stats["requests"]
    report = channel.client.set_stock(levels, "stock:all")
    requests = channel.app.stats["requests"] - before
    assert (len(report.written), report.unknown) == (len(variants), ["NO-SUCH-SKU"])
    assert sorted(stock.writes()) == sorted((level.sku, level.available) for level in levels[:-1])
    if channel.name == "shopify":  # the location, 50 SKUs to a search, one mutation (up to 250)
        assert requests == 1 + -(-len(levels) // 50) + 1
    elif channel.name == "woocommerce":  # 100 SKUs to a search and to a batch; variations batched per product
        variable = sum(1 for p in channel.store.products if is_variable(p))
        simple = len(channel.store.products) - variable
        assert requests == -(-len(levels) // 100) + variable + -(-simple // 100)
    else:  # products and source items, 200 SKUs to a search; one save
        assert requests == 2 * -(-len(levels) // 200) + 1


def _stock_mutations(seen: list[httpx.Request]) -> list[dict[str, Any]]:
    """The variables of every inventorySetQuantities among the requests."""
    bodies = [json.loads(request.content) for request in seen]
    return [body["variables"] for body in bodies if "inventorySetQuantities" in body["query"]]


def test_shopify_refuses_a_count_moved_since_it_was_read_and_it_is_judged_again() -> None:
    store = _a_store()
    a, b = (v.sku for v in store.variants[:2])
    seen: list[httpx.Request] = []
    with ExitStack() as stack:
        app = create_shopify_app(store, restore_rate=50_000)
        stack.callback(app.close)
        url = stack.enter_context(serve_in_thread(app)).url

        def meanwhile(request: httpx.Request) -> None:
            seen.append(request)
            if _stock_mutations([request]) and len(_stock_mutations(seen)) == 1:
                # A merchant adds a unit on Shopify between Clerk's read and its first write.
                app.write_backs.edit_stock(a, app.write_backs.stock(a) + 1)

        http = stack.enter_context(httpx.Client(event_hooks={"request": [meanwhile]}))
        client = ShopifyClient(url, DEFAULT_TOKEN, http=http, sleep=lambda _: None)
        shown_a = app.write_backs.stock(a)
        report = client.set_stock([StockLevel(a, 500, shown_a), StockLevel(b, 600)], "sync:1")

    assert (report.conflicts, report.written) == ({a: shown_a + 1}, [b])
    refused, applied = _stock_mutations(seen)
    assert [q["changeFromQuantity"] for q in refused["input"]["quantities"]] == [shown_a, store.on_hand[b]]
    assert len(applied["input"]["quantities"]) == 1 and applied["key"] != refused["key"]
    assert app.write_backs.stock_writes == [(b, 600)], "the refused mutation wrote nothing, B was written once"


def test_shopify_retries_a_stock_mutation_whose_answer_was_lost_with_the_same_key() -> None:
    store = _a_store()
    skus = [v.sku for v in store.variants[:3]]
    seen: list[httpx.Request] = []
    with ExitStack() as stack:
        app = create_shopify_app(store, restore_rate=50_000)
        stack.callback(app.close)
        url = stack.enter_context(serve_in_thread(app)).url
        http = stack.enter_context(httpx.Client(event_hooks={"request": [seen.append]}))
        client = ShopifyClient(url, DEFAULT_TOKEN, http=http, sleep=lambda _: None)
        app.write_backs.lose_write_responses(1)
        report = client.set_stock([StockLevel(sku, 30) for sku in skus], "sync:2")

    assert report.written == skus and app.write_backs.lost_responses == 1
    sent, retried = _stock_mutations(seen)
    assert sent == retried and sent["key"].startswith("sync:2:")
    assert app.write_backs.stock_writes == [(sku, 30) for sku in skus], "applied once"


def test_the_shopify_sandbox_searches_skus_joined_by_or_and_refuses_what_it_does_not_implement() -> None:
    store = _a_store()
    a, b, c = (v.sku for v in store.variants[:3])
    search = parse_search(f'sku:"{a}" OR sku:{b} AND sku:{c} OR sku:NONE')
    found, more = find_variants(store.variants, search, "ID", False, None, 10)
    assert [v.sku for v in found] == [] and not more, "(a OR b) AND (c OR NONE): no variant has two SKUs"
    found, _ = find_variants(store.variants, parse_search(f"sku:{a} OR sku:{c}"), "ID", False, None, 10)
    assert sorted(v.sku for v in found) == sorted([a, c])
    for broken in ("sku:A OR", "OR sku:A", "sku:A OR OR sku:B", "sku:A NOT"):
        with pytest.raises(GraphQLError):
            parse_search(broken)
    with pytest.raises(GraphQLError, match="order search"):
        find_orders(store, parse_search("id:1 OR id:2"), "ID", False, None, 10)
