"""The seeded store: deterministic, realistic, consistent, and tricky where it says so."""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.money import ISO_4217, MoneyError, is_known_currency, to_money
from domain.orders import (
    Address as DomainAddress,
)
from domain.orders import (
    CatalogPrice,
    ChannelOrder,
    Lifecycle,
    OrderLine,
    Risk,
    expected_total,
    hold_reasons,
)
from domain.reasons import ALL_REASONS, Hold, Quarantine
from domain.stock import Claim, allocate
from integrations.sandbox.store import (
    RETIRED_CURRENCIES,
    Order,
    Store,
    StoreSpec,
    generate_store,
)

AMOUNT = re.compile(r"-?\d+\.\d\d")
CATALOG_COLUMNS = ["sku", "title", "price", "currency", "cost", "weight_grams", "barcode", "category",
                   "supplier", "lead_time_days", "moq", "pack_size"]


@pytest.fixture(scope="module")
def store() -> Store:
    return generate_store(StoreSpec())


def digest(store: Store) -> str:
    h = hashlib.sha256()
    for o in store.orders:
        h.update(repr((o.id, o.number, o.created_at, o.updated_at, o.lifecycle, o.currency, o.total, o.tax,
                       o.ship_to, o.risk, o.reason, [(li.sku, li.quantity, li.unit_price) for li in o.lines]))
                 .encode())
    h.update(repr(store.catalog_rows()).encode())
    h.update(repr(store.stock_rows()).encode())
    return h.hexdigest()


def amounts(order: Order) -> list[str]:
    return [order.total, order.subtotal, order.shipping, order.tax, order.discounts] + [
        a for line in order.lines for a in (line.unit_price, line.discount)]


def as_domain(order: Order) -> ChannelOrder:
    """The store order as Clerk's domain sees it once the channel mapping has read it."""
    to = order.ship_to
    return ChannelOrder(
        channel="sandbox", external_id=str(order.id), number=str(order.number), currency=order.currency,
        placed_at=order.created_at, updated_at=order.updated_at, lifecycle=order.lifecycle,
        lines=tuple(OrderLine(li.sku, li.title, Decimal(li.quantity), Decimal(li.unit_price),
                              Decimal(li.discount), li.requires_shipping) for li in order.lines),
        total=Decimal(order.total), shipping=Decimal(order.shipping), tax=Decimal(order.tax),
        discounts=Decimal(order.discounts), taxes_included=order.taxes_included,
        requires_shipping=order.requires_shipping,
        ship_to=None if to is None else DomainAddress(
            name=to.name, company=to.company, street1=to.street1, street2=to.street2, city=to.city,
            province=to.province, postal_code=to.postal_code, country=to.country, phone=to.phone),
        risk=order.risk,
    )


def catalog(store: Store) -> dict[str, CatalogPrice]:
    return {row["sku"]: CatalogPrice(Decimal(row["price"]), row["currency"]) for row in store.catalog_rows()}


def quarantine_reason(order: Order) -> str | None:
    """What Clerk's quality suite should say of the payload, reduced to the store's terms."""
    try:
        for text in amounts(order):
            to_money(text)
    except MoneyError:
        return Quarantine.MALFORMED
    if not order.lines:
        return Quarantine.NO_LINE_ITEMS
    if any(line.quantity <= 0 for line in order.lines):
        return Quarantine.INVALID_QUANTITY
    if not is_known_currency(order.currency):
        return Quarantine.UNKNOWN_CURRENCY
    return None


def test_the_same_seed_gives_the_same_store_and_another_seed_does_not():
    spec = StoreSpec(seed=11, orders=400, customers=120)
    assert digest(generate_store(spec)) == digest(generate_store(spec))
    assert digest(generate_store(StoreSpec(seed=12, orders=400, customers=120))) != digest(generate_store(spec))


def test_counts_follow_the_spec(store):
    assert len(store.orders) == 2000
    assert len(store.products) == 60
    assert len(store.customers) == 800
    skus = [row["sku"] for row in store.catalog_rows()]
    assert len(skus) == len(set(skus)) == len(store.variants)
    assert {row["sku"] for row in store.stock_rows()} == set(skus)
    assert len({o.id for o in store.orders}) == len({o.number for o in store.orders}) == 2000


def test_catalog_rows_have_the_master_catalog_columns_and_decimal_prices(store):
    rows = store.catalog_rows()
    assert all(list(row) == CATALOG_COLUMNS for row in rows)
    for row in rows:
        assert AMOUNT.fullmatch(row["price"]) and AMOUNT.fullmatch(row["cost"])
        assert Decimal(row["cost"]) < Decimal(row["price"])
        assert row["currency"] == "USD"
        assert row["moq"] % row["pack_size"] == 0
        if row["barcode"]:
            digits = [int(d) for d in row["barcode"]]
            assert len(digits) == 13 and sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0


def test_money_is_two_place_decimal_strings_except_on_malformed_orders(store):
    for order in store.orders:
        texts = amounts(order)
        assert all(isinstance(t, str) for t in texts)
        if order.reason != Quarantine.MALFORMED:
            assert all(AMOUNT.fullmatch(t) for t in texts), order


def test_totals_add_up_on_every_order_that_is_not_tricky_about_them(store):
    for order in store.orders:
        if order.reason in (Quarantine.MALFORMED, Hold.TOTAL_MISMATCH):
            continue
        domain = as_domain(order)
        assert expected_total(domain) == domain.total, order.id
        gross = sum((Decimal(li.unit_price) * li.quantity for li in order.lines), Decimal(0))
        assert gross - Decimal(order.discounts) == Decimal(order.subtotal)
        assert sum((Decimal(li.discount) for li in order.lines), Decimal(0)) == Decimal(order.discounts)
    assert any(o.taxes_included for o in store.orders) and any(not o.taxes_included for o in store.orders)
    assert any(Decimal(o.discounts) > 0 for o in store.orders)


def test_every_reason_code_is_tagged_on_an_open_order(store):
    expected = store.expected_reasons()
    assert set(expected.values()) == set(ALL_REASONS)
    open_count = sum(o.lifecycle is Lifecycle.OPEN for o in store.orders)
    assert len(expected) == max(len(ALL_REASONS), round(0.1 * open_count))
    for order in store.orders:
        assert (str(order.id) in expected) == (order.reason is not None)
        if order.reason:
            assert order.lifecycle is Lifecycle.OPEN


def test_each_tricky_order_triggers_its_reason_and_nothing_else(store):
    prices = catalog(store)
    for order in store.orders:
        if order.reason is None or order.lifecycle is not Lifecycle.OPEN:
            continue
        if order.reason in set(Quarantine):
            assert quarantine_reason(order) == order.reason, order
            continue
        assert quarantine_reason(order) is None, order
        holds = hold_reasons(as_domain(order), prices)
        if order.reason == Hold.INSUFFICIENT_STOCK:
            assert holds == []
            line = order.lines[0]
            assert line.quantity > store.on_hand[line.sku]
        else:
            assert holds == [order.reason], (order.id, order.reason, holds)


def test_clean_open_orders_pass_every_check_and_stock_covers_them_all(store):
    prices = catalog(store)
    claims = []
    for order in store.orders:
        if order.lifecycle is not Lifecycle.OPEN or order.reason == Hold.INSUFFICIENT_STOCK:
            continue
        if order.reason is None:
            assert quarantine_reason(order) is None
            assert hold_reasons(as_domain(order), prices) == [], order.id
        if quarantine_reason(order) is None:
            claims.append(Claim(str(order.id), as_domain(order).demand(), {}))
    available = {row["sku"]: row["on_hand"] for row in store.stock_rows()}
    assert allocate(claims, available) == {c.key for c in claims}
    tight = [sku for sku in store.tight if available[sku] - sum(c.wanted.get(sku, 0) for c in claims) <= 3]
    assert tight and len(tight) == len(store.tight)


def test_the_retired_currencies_are_not_iso_4217():
    assert not set(RETIRED_CURRENCIES) & ISO_4217


def test_lifecycles_follow_age(store):
    now = store.spec.clock
    by = Counter(o.lifecycle for o in store.orders)
    assert by[Lifecycle.FULFILLED] > by[Lifecycle.CLOSED] > by[Lifecycle.OPEN] > by[Lifecycle.CANCELLED] > 0
    for order in store.orders:
        assert now - timedelta(days=90) <= order.created_at <= order.updated_at <= now
        assert order.created_at.microsecond == order.updated_at.microsecond == 0
        if order.lifecycle is Lifecycle.CANCELLED:
            assert order.cancelled_at and order.closed_at
        if order.lifecycle is Lifecycle.CLOSED:
            assert order.closed_at and not order.cancelled_at
        if order.lifecycle in (Lifecycle.OPEN, Lifecycle.FULFILLED):
            assert order.closed_at is None
    young = [o for o in store.orders if now - o.created_at < timedelta(days=1)]
    old = [o for o in store.orders if now - o.created_at > timedelta(days=14)]
    assert sum(o.lifecycle is Lifecycle.OPEN for o in young) > 0.8 * len(young)
    assert sum(o.lifecycle is Lifecycle.OPEN for o in old) < 0.05 * len(old)
    assert {o.risk for o in store.orders if not o.reason and o.lifecycle is not Lifecycle.CANCELLED} <= {
        Risk.NONE, Risk.LOW, Risk.MEDIUM}


def test_customers_and_addresses_are_international_and_unicode(store):
    names = " ".join(f"{c.first_name} {c.last_name}" for c in store.customers)
    assert re.search(r"[\u4e00-\u9fff]", names), "CJK"
    assert re.search(r"[éüöåñ]", names), "accents"
    assert re.search(r"[\U0001F300-\U0001FAFF]", names), "emoji"
    countries = {a.country for c in store.customers for a in c.addresses}
    assert {"US", "DE", "JP", "HK", "AE", "BR"} <= countries
    for customer in store.customers:
        assert customer.email.isascii() and "@example." in customer.email
        for address in customer.addresses:
            assert (address.postal_code is None) == (address.country in {"HK", "AE"})


def test_a_few_huge_orders_one_of_them_open(store):
    huge = [o for o in store.orders if len(o.lines) >= 40]
    assert 1 <= len(huge) <= 3
    assert any(o.lifecycle is Lifecycle.OPEN for o in huge)


def test_editing_orders_bumps_updated_at_and_keeps_the_index_sorted():
    store = generate_store(StoreSpec(orders=800, customers=100))
    before = {o.id: (o.updated_at, o.total, o.ship_to) for o in store.orders}
    newest = max(o.updated_at for o in store.orders)
    edited = store.edit_orders(5, at=newest - timedelta(days=1))
    assert len(edited) == 5
    for order in edited:
        assert order.lifecycle is Lifecycle.OPEN and order.reason is None
        assert order.updated_at > newest, "the store clock never goes back"
        assert (order.total, order.ship_to) != before[order.id][1:]
        assert expected_total(as_domain(order)) == Decimal(order.total)
    keys = store.sorted_keys("updated_at")
    assert keys == sorted((o.updated_at, o.id) for o in store.orders)
    again = store.edit_orders(1, ids={edited[0].id})
    assert again == [edited[0]] and edited[0].updated_at > order.updated_at - timedelta(seconds=1)


def test_new_orders_arrive_open_and_clean():
    store = generate_store(StoreSpec(orders=800, customers=100))
    last = store.orders[-1]
    added = store.add_orders(4)
    assert [o.number for o in added] == [last.number + i for i in range(1, 5)]
    assert all(o.lifecycle is Lifecycle.OPEN and o.reason is None for o in added)
    assert all(o.created_at == o.updated_at > last.created_at for o in added)
    assert store.order(added[0].id) is added[0]
    assert store.sorted_keys("created_at") == sorted((o.created_at, o.id) for o in store.orders)
    assert not any(line.sku in store.tight for o in added for line in o.lines)


def test_a_store_without_tricky_share_has_no_tricky_orders():
    assert generate_store(StoreSpec(orders=200, customers=50, tricky_share=0)).expected_reasons() == {}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), orders=st.integers(40, 400))
def test_any_seed_and_size_covers_every_reason_with_consistent_clean_orders(seed, orders):
    store = generate_store(StoreSpec(seed=seed, orders=orders, customers=60, products=25))
    assert set(store.expected_reasons().values()) == set(ALL_REASONS)
    prices = catalog(store)
    for order in store.orders:
        if order.reason is None:
            assert quarantine_reason(order) is None
            assert expected_total(as_domain(order)) == Decimal(order.total)
            if order.lifecycle is Lifecycle.OPEN:
                assert hold_reasons(as_domain(order), prices) == []


CHANNELS = ("shopify", "woocommerce", "magento")


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), orders=st.integers(120, 600))
def test_every_channel_of_a_shared_store_gets_every_reason(seed, orders):
    store = generate_store(StoreSpec(seed=seed, orders=orders, customers=60, products=25, channels=CHANNELS))
    views = [store.channel(name) for name in CHANNELS]
    assert sorted(o.id for view in views for o in view.orders) == sorted(o.id for o in store.orders)
    for view in views:
        assert set(view.expected_reasons().values()) == set(ALL_REASONS), view.channel_name
        assert view.variants == store.variants and view.on_hand is store.on_hand and view.lock is store.lock
    # One customer shops on several storefronts: the cross-channel customer record needs them.
    emails = [{o.email for o in view.orders} for view in views]
    assert emails[0] & emails[1] & emails[2]


def test_orders_added_to_a_channel_view_belong_to_that_channel():
    store = generate_store(StoreSpec(orders=90, customers=30, channels=CHANNELS))
    woo = store.channel("woocommerce")
    added = woo.add_orders(3)
    assert {o.channel for o in added} == {"woocommerce"}
    assert all(woo.order(o.id) is o for o in added) and not any(store.order(o.id) for o in added)
    with pytest.raises(KeyError, match="no channel 'ebay'"):
        store.channel("ebay")


def test_generating_100k_orders(capsys):
    started = time.perf_counter()
    store = generate_store(StoreSpec(orders=100_000))
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\ngenerate_store(orders=100_000): {elapsed:.2f} s")
    assert len(store.orders) == 100_000
    assert set(store.expected_reasons().values()) == set(ALL_REASONS)
