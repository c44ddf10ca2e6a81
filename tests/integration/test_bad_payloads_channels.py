"""Generated broken WooCommerce and Magento orders: none crashes a batch, none is lost, each is
held or quarantined with a contract reason code (or taken, when it is in fact a valid order).

Every payload starts as an order the sandboxes really render, then one mutation breaks it
(wrong types, missing keys, bad money, NaN/Infinity, huge numbers, bad quantities and
timestamps, NUL bytes, unknown statuses, junk and deep nesting) or touches it harmlessly.
Batches of 500 go through the flow's own path, as `flows.order_intake._process` runs it:
`check_orders` -> `load_intake_context` -> `decide_batch` -> `store_orders`, into a real
database. 3,000 payloads per channel on SQLite; 2,000 on PostgreSQL, to keep the file quick
(the shapes are the same; what PostgreSQL adds is refusing what SQLite lets through).
Shopify's twin, decisions only, is `test_bad_payloads.py`.
"""

from __future__ import annotations

import copy
import itertools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from domain.intake import decide_batch
from domain.money import ISO_4217
from domain.orders import NO_POSTAL_CODE, PriceTolerance, Status
from domain.reasons import Hold, Quarantine

CHANNELS = ("woocommerce", "magento")
BATCH = 500
BATCHES = {"sqlite": 6, "postgresql": 4}  # 3,000 / 2,000 payloads per channel
QUARANTINE_CODES = frozenset(r.value for r in Quarantine)
HOLD_CODES = frozenset(r.value for r in Hold)
_ids = itertools.count(1)  # fresh external ids across examples: every payload is a new order


# ------------------------------------------------------------------ real orders to break


@dataclass(frozen=True)
class Base:
    payload: dict[str, Any]
    currency: str


@cache
def _store() -> Any:
    from integrations.sandbox.store import StoreSpec, generate_store

    return generate_store(StoreSpec(seed=41, orders=300, tricky_share=0, huge_orders=0, days=5,
                                    channels=CHANNELS))


@cache
def bases(channel: str) -> tuple[Base, ...]:
    """Open, shippable orders in the store's currency, to a country with postal codes, rendered
    by the channel's sandbox: each is a valid order Clerk must accept as it stands."""
    from integrations.sandbox.magento import create_magento_app
    from integrations.sandbox.store import Lifecycle
    from integrations.sandbox.woocommerce import create_woocommerce_app

    store = _store()
    view = store.channel(channel)
    if channel == "woocommerce":
        render = create_woocommerce_app(view).render_order
    else:
        render = create_magento_app(view).render
    chosen = []
    for order in view.orders:
        if (order.lifecycle is Lifecycle.OPEN and order.ship_to is not None and len(order.lines) >= 2
                and order.ship_to.country not in NO_POSTAL_CODE and all(line.requires_shipping for line in order.lines)
                and order.risk.value == "none"):
            payload = render(order)
            currency = payload["currency"] if channel == "woocommerce" else payload["order_currency_code"]
            if currency == store.currency:
                chosen.append(Base(payload, currency))
    assert len(chosen) >= 10, (channel, len(chosen))
    return tuple(chosen[:40])


def _with_id(channel: str, payload: dict[str, Any], n: int) -> dict[str, Any]:
    fresh = copy.deepcopy(payload)
    if channel == "woocommerce":
        fresh["id"], fresh["number"] = 9_000_000_000 + n, f"B{n}"
    else:
        fresh["entity_id"], fresh["increment_id"] = 9_000_000 + n, f"B{n:09d}"
    return fresh


# ------------------------------------------------------------------ mutations


@dataclass(frozen=True)
class Mutation:
    """One way to break (or harmlessly touch) an order, and the outcomes that are right for it.

    `expect` holds any of: a quarantine code (quarantined with it), a hold code (held with it
    among the reasons), "held" or "quarantined" (any code), "accepted", "fulfilled",
    "cancelled" (stored with that status: the order is in fact valid).
    """

    name: str
    expect: frozenset[str]
    apply: Callable[[dict[str, Any]], Any]

    def __repr__(self) -> str:
        return f"<{self.name}>"


def _m(name: str, expect: str | set[str], apply: Callable[[dict[str, Any]], Any]) -> Mutation:
    return Mutation(name, frozenset({expect} if isinstance(expect, str) else expect), apply)


def _set(*path: Any, value: Any) -> Callable[[dict[str, Any]], Any]:
    def apply(order: dict[str, Any]) -> Any:
        node = order
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return order
    return apply


def _drop(*path: Any) -> Callable[[dict[str, Any]], Any]:
    def apply(order: dict[str, Any]) -> Any:
        node = order
        for key in path[:-1]:
            node = node[key]
        node.pop(path[-1], None)
        return order
    return apply


def _nested(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


# Hypothesis caps what one example may draw (about 8 KB of choices) and gives the whole example
# up when a filter rejects three draws in a row: a batch is 500 of these, so each draws little,
# long strings are short draws repeated, and no strategy below filters.
_no_nul = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
_visible = st.characters(blacklist_categories=("Cs", "Cc", "Z"))  # nothing str.strip() removes
_number = st.integers() | st.floats(allow_nan=True)
scalar = st.none() | st.booleans() | _number | st.text(max_size=6)
_small_list = st.lists(scalar, max_size=2)
_small_dict = st.dictionaries(st.text(max_size=3), scalar, max_size=2)
junk = scalar | _small_list | _small_dict
not_a_dict = st.booleans() | _number | st.text(max_size=6) | _small_list  # and not None
not_a_list = st.booleans() | _number | st.text(max_size=6) | _small_dict  # and not None
not_text = st.booleans() | _number | _small_list | _small_dict  # and not None
not_int = st.text(min_size=1, max_size=6) | st.floats(allow_nan=True) | st.booleans() | st.lists(st.integers(), min_size=1, max_size=2)


def long_text(low: int, high: int) -> Any:
    """Text of `low` to `high` characters, no NUL, nothing to strip at either end."""
    return st.tuples(st.text(_visible, min_size=1, max_size=3), st.integers(low, high)).map(
        lambda tn: (tn[0] * high)[:tn[1]])


def _not_in(values: set[str] | frozenset[str], text: Any) -> Any:
    """Text that is none of `values` (a value drawn from them gets a suffix instead of a retry)."""
    return text.map(lambda t: t if t not in values else f"{t}!")


bad_money = (st.sampled_from(["", " ", "abc", "1,00", "NaN", "nan", "Infinity", "-Infinity", "inf", "1e999", "1e14",
                              "-1e20", "12.5.1", "0x10", "12\x00.50", "$12.00", "--1", "12 50"])
             | st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e300, -1e15, 10**14, -(10**30), True, False])
             | st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=3), st.integers(), max_size=1))
fraction = st.tuples(st.integers(-100, 99), st.sampled_from([0.5, 0.25, 0.1, 0.999, 0.3333, 1e-7])).map(sum)
bad_quantity = (st.integers(max_value=0) | st.integers(min_value=10**9, max_value=10**30) | fraction
                | st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e-300, 3e-7, None, True, False,
                                   "2", "1.0", "", [1], {"qty": 1}]))
not_a_timestamp = (st.sampled_from(["", " ", "yesterday", "2026-13-01T00:00:00", "2026-02-30T10:00:00", "10:00",
                                    "2026-11-01 10:00:00 PM", "\x00", "NaN"])
                   | st.text(max_size=5).map(lambda t: f"T{t}"))  # no ISO 8601 time starts with a letter
not_iso = _not_in(ISO_4217, st.text(max_size=5))
unknown_sku = st.text(_no_nul, min_size=1, max_size=10)  # the catalog's SKUs are longer
free_text = st.text(_no_nul, min_size=1, max_size=5)
deep = st.integers(min_value=20, max_value=200).map(_nested)
amount_delta = st.decimals(min_value=Decimal("0.05"), max_value=Decimal("500"), places=2)
scale = st.decimals(min_value=Decimal("1.10"), max_value=Decimal("3"), places=2)
junk_payload = (not_a_dict | st.none()).map(lambda j: _m("not an object", "malformed", lambda _order: j))
line = st.integers(min_value=0, max_value=5)


# -- WooCommerce


def _woo_line(index: int, key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def apply(order: dict[str, Any]) -> Any:
        lines = order["line_items"]
        lines[index % len(lines)][key] = value
        return order
    return apply


def _woo_line_replaced(index: int, value: Any) -> Callable[[dict[str, Any]], Any]:
    def apply(order: dict[str, Any]) -> Any:
        lines = order["line_items"]
        lines[index % len(lines)] = value
        return order
    return apply


def _woo_drop_line_key(index: int, key: str) -> Callable[[dict[str, Any]], Any]:
    def apply(order: dict[str, Any]) -> Any:
        lines = order["line_items"]
        lines[index % len(lines)].pop(key, None)
        return order
    return apply


def _woo_reprice(index: int, factor: Decimal) -> Callable[[dict[str, Any]], Any]:
    """Charges more for one line than the catalog asks (the order's total left as it was)."""
    def apply(order: dict[str, Any]) -> Any:
        lines = order["line_items"]
        item = lines[index % len(lines)]
        for key in ("subtotal", "total", "subtotal_tax", "total_tax"):
            item[key] = f"{Decimal(item[key]) * factor:.2f}"
        return order
    return apply


def _woo_total(delta: Decimal) -> Callable[[dict[str, Any]], Any]:
    def apply(order: dict[str, Any]) -> Any:
        order["total"] = f"{Decimal(order['total']) + delta:.2f}"
        return order
    return apply


def _woo_meta(key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def apply(order: dict[str, Any]) -> Any:
        order["meta_data"].append({"id": 1, "key": key, "value": value})
        return order
    return apply


def _woo_blank_name(order: dict[str, Any]) -> Any:
    order["shipping"]["first_name"] = order["shipping"]["last_name"] = ""
    return order


def _woo_nul_in_city(text: str) -> Callable[[dict[str, Any]], Any]:
    def apply(order: dict[str, Any]) -> Any:
        order["shipping"]["city"] = f"{order['shipping']['city']}\x00{text}"
        return order
    return apply


WOO_REQUIRED = ["id", "number", "date_created_gmt", "status", "total"]
WOO_MONEY = ["total", "shipping_total", "total_tax", "discount_total"]
WOO_STATUSES = {"pending", "processing", "on-hold", "completed", "refunded", "cancelled", "failed", "trash",
                "checkout-draft"}

WOO_BREAKING = [
    # quarantine: the payload cannot be read as an order, or fails the quality suite
    junk_payload,
    st.sampled_from(WOO_REQUIRED).map(lambda k: _m(f"drop {k}", "malformed", _drop(k))),
    line.map(lambda i: _m("drop line subtotal", "malformed", _woo_drop_line_key(i, "subtotal"))),
    (st.text(max_size=6) | st.floats(allow_nan=True) | st.integers(max_value=0) | st.booleans()
     | st.lists(st.integers(), max_size=1)).map(lambda v: _m("bad id", "malformed", _set("id", value=v))),
    (st.floats(allow_nan=True) | st.booleans() | _small_list | _small_dict | st.sampled_from(["", "  "])).map(
        lambda v: _m("bad number", "malformed", _set("number", value=v))),
    long_text(101, 140).map(lambda v: _m("long number", "malformed", _set("number", value=v))),
    free_text.map(lambda t: _m("NUL in number", "malformed", _set("number", value=f"{t}\x00"))),
    st.tuples(st.sampled_from(["date_created_gmt", "date_modified_gmt"]), not_a_timestamp | not_text).map(
        lambda kv: _m(f"bad {kv[0]}", "malformed", _set(kv[0], value=kv[1]))),
    (st.sampled_from(["shipped", "wc-processing", "Processing", "PENDING", "", "processing\x00", "draft", "paid"])
     | _not_in(WOO_STATUSES, st.text(max_size=6)) | not_text).map(
        lambda s: _m("unknown status", "malformed", _set("status", value=s))),
    st.tuples(st.sampled_from(WOO_MONEY), bad_money).map(
        lambda kv: _m(f"bad money {kv[0]}", "malformed", _set(kv[0], value=kv[1]))),
    st.tuples(line, st.sampled_from(["subtotal", "total"]), bad_money).map(
        lambda ikv: _m(f"bad line {ikv[1]}", "malformed", _woo_line(*ikv))),
    st.tuples(st.sampled_from(["line_items", "meta_data", "shipping_lines"]), not_a_list).map(
        lambda kv: _m(f"{kv[0]} not a list", "malformed", _set(kv[0], value=kv[1]))),
    st.tuples(st.sampled_from(["shipping", "billing"]), not_a_dict).map(
        lambda kv: _m(f"{kv[0]} not an object", "malformed", _set(kv[0], value=kv[1]))),
    st.tuples(line, not_a_dict | st.none()).map(lambda iv: _m("line not an object", "malformed", _woo_line_replaced(*iv))),
    st.tuples(line, deep).map(lambda iv: _m("deeply nested line", "malformed", _woo_line_replaced(iv[0], [iv[1]]))),
    st.sampled_from(["yes", "true", 1, 0, [], "no"]).map(
        lambda v: _m("flag not a boolean", "malformed", _set("prices_include_tax", value=v))),
    not_int.map(lambda v: _m("customer_id not an integer", "malformed", _set("customer_id", value=v))),
    st.tuples(line, not_text).map(lambda iv: _m("sku not text", "malformed", _woo_line(iv[0], "sku", iv[1]))),
    st.tuples(line, free_text).map(lambda it: _m("NUL in sku", "malformed", _woo_line(it[0], "sku", f"{it[1]}\x00"))),
    st.tuples(line, long_text(201, 240)).map(lambda it: _m("sku too long", "malformed", _woo_line(it[0], "sku", it[1]))),
    st.tuples(line, bad_quantity).map(lambda iq: _m("bad quantity", "invalid_quantity", _woo_line(iq[0], "quantity", iq[1]))),
    line.map(lambda i: _m("no quantity", "invalid_quantity", _woo_drop_line_key(i, "quantity"))),
    st.sampled_from([_set("line_items", value=[]), _drop("line_items")]).map(lambda f: _m("no lines", "no_line_items", f)),
    not_iso.map(lambda c: _m("unknown currency", "unknown_currency", _set("currency", value=c))),
    # hold: readable, but needs a person
    st.tuples(line, unknown_sku).map(lambda it: _m("unknown sku", "unknown_sku", _woo_line(it[0], "sku", it[1]))),
    st.tuples(line, scale).map(lambda ik: _m("price above the catalog's", "price_mismatch", _woo_reprice(*ik))),
    st.sampled_from(["address_1", "city", "postcode", "country"]).map(
        lambda k: _m(f"no {k}", "incomplete_address", _set("shipping", k, value=""))),
    st.just(_m("no name", "incomplete_address", _woo_blank_name)),
    st.just(_m("no shipping address", "incomplete_address", _drop("shipping"))),
    st.tuples(amount_delta, st.booleans()).map(
        lambda db: _m("total off", "total_mismatch", _woo_total(db[0] if db[1] else -db[0]))),
    st.sampled_from(["high", "HIGH", " High "]).map(lambda v: _m("high risk", "high_risk", _woo_meta("_clerk_risk", v))),
    # Amounts just inside the limit whose sums and differences are not: see
    # test_amounts_just_inside_the_limit_never_crash_a_batch (they crash it on PostgreSQL).
]
WOO_HARMLESS = [
    st.tuples(st.text(min_size=1, max_size=4), junk | deep).map(
        lambda kv: _m("unknown key", "accepted", _set(f"x_{kv[0]}", value=kv[1]))),
    st.tuples(line, st.sampled_from([float("nan"), float("inf"), -1e308, "12,50", None])).map(
        lambda iv: _m("junk in the ignored line price", "accepted", _woo_line(iv[0], "price", iv[1]))),
    (junk | deep).map(lambda v: _m("another plugin's meta", "accepted", _woo_meta("_other_plugin", v))),
    st.sampled_from(["low", "none", "medium", "banana", ""]).map(
        lambda v: _m("risk not high", "accepted", _woo_meta("_clerk_risk", v))),
    st.tuples(line, free_text).map(lambda it: _m("NUL in title", "accepted", _woo_line(it[0], "name", f"{it[1]}\x00{it[1]}"))),
    st.tuples(line, long_text(600, 700)).map(lambda it: _m("long title", "accepted", _woo_line(it[0], "name", it[1]))),
    free_text.map(lambda t: _m("NUL in city", "accepted", _woo_nul_in_city(t))),
    st.integers(min_value=1, max_value=10**12).map(lambda n: _m("number as an integer", "accepted", _set("number", value=n))),
    st.sampled_from(["pending", "on-hold", "processing"]).map(lambda s: _m("open status", "accepted", _set("status", value=s))),
    st.sampled_from(["completed", "refunded"]).map(lambda s: _m("history", "fulfilled", _set("status", value=s))),
    st.sampled_from(["cancelled", "failed", "trash", "checkout-draft"]).map(
        lambda s: _m("cancelled", "cancelled", _set("status", value=s))),
]


# -- Magento


def _mag_items(order: dict[str, Any], index: int) -> list[dict[str, Any]]:
    """A top-level item and its children (a configurable product's one child carries the SKU)."""
    top = [item for item in order["items"] if item.get("parent_item_id") is None]
    parent = top[index % len(top)]
    return [parent] + [item for item in order["items"] if item.get("parent_item_id") == parent["item_id"]]


def _mag_item(index: int, key: str, value: Any, children: bool = True) -> Callable[[dict[str, Any]], Any]:
    def apply(order: dict[str, Any]) -> Any:
        items = _mag_items(order, index)
        for item in items if children else items[:1]:
            item[key] = value
        return order
    return apply


def _mag_item_replaced(index: int, value: Any) -> Callable[[dict[str, Any]], Any]:
    def apply(order: dict[str, Any]) -> Any:
        order["items"][index % len(order["items"])] = value
        return order
    return apply


def _mag_reprice(index: int, factor: Decimal) -> Callable[[dict[str, Any]], Any]:
    def apply(order: dict[str, Any]) -> Any:
        parent = _mag_items(order, index)[0]
        for key in ("price", "price_incl_tax", "original_price", "row_total", "row_total_incl_tax", "tax_amount"):
            if isinstance(parent.get(key), int | float):
                parent[key] = float(round(Decimal(repr(parent[key])) * factor, 2))
        return order
    return apply


def _mag_drop_price(index: int) -> Callable[[dict[str, Any]], Any]:
    def apply(order: dict[str, Any]) -> Any:
        parent = _mag_items(order, index)[0]
        for key in ("price", "price_incl_tax"):
            parent.pop(key, None)
        return order
    return apply


def _mag_bad_prices(index: int, value: Any) -> Callable[[dict[str, Any]], Any]:
    def apply(order: dict[str, Any]) -> Any:
        parent = _mag_items(order, index)[0]
        parent["price"] = parent["price_incl_tax"] = value
        return order
    return apply


def _mag_total(delta: Decimal) -> Callable[[dict[str, Any]], Any]:
    def apply(order: dict[str, Any]) -> Any:
        order["grand_total"] = float(round(Decimal(repr(order["grand_total"])) + delta, 2))
        return order
    return apply


def _mag_address(key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def apply(order: dict[str, Any]) -> Any:
        order["extension_attributes"]["shipping_assignments"][0]["shipping"]["address"][key] = value
        return order
    return apply


def _mag_blank_name(order: dict[str, Any]) -> Any:
    address = order["extension_attributes"]["shipping_assignments"][0]["shipping"]["address"]
    address["firstname"] = address["lastname"] = None
    return order


def _mag_drop_address(order: dict[str, Any]) -> Any:
    order["extension_attributes"]["shipping_assignments"] = []
    return order


def _mag_state(state: Any, status: Any) -> Callable[[dict[str, Any]], Any]:
    def apply(order: dict[str, Any]) -> Any:
        order["state"], order["status"] = state, status
        return order
    return apply


MAG_REQUIRED = ["entity_id", "state", "increment_id", "created_at", "updated_at", "grand_total"]
MAG_MONEY = ["grand_total", "tax_amount", "discount_amount"]  # read whatever the order's tax mode
MAG_STATES = frozenset({"new", "pending_payment", "processing", "payment_review", "holded", "complete", "closed",
                        "canceled"})

MAG_BREAKING = [
    # quarantine
    junk_payload,
    st.sampled_from(MAG_REQUIRED).map(lambda k: _m(f"drop {k}", "malformed", _drop(k))),
    line.map(lambda i: _m("drop item price", "malformed", _mag_drop_price(i))),
    (st.text(max_size=6) | st.floats(allow_nan=True) | st.booleans() | st.lists(st.integers(), max_size=1)).map(
        lambda v: _m("bad entity_id", "malformed", _set("entity_id", value=v))),
    (not_text | st.sampled_from(["", "   "])).map(lambda v: _m("bad increment_id", "malformed", _set("increment_id", value=v))),
    long_text(101, 140).map(lambda v: _m("long increment_id", "malformed", _set("increment_id", value=v))),
    free_text.map(lambda t: _m("NUL in increment_id", "malformed", _set("increment_id", value=f"{t}\x00"))),
    st.tuples(st.sampled_from(["created_at", "updated_at"]),
              not_a_timestamp | not_text | st.sampled_from(["2026-11-01T05:25:06Z", "2026-11-01", "2026-11-01 05:25"])).map(
        lambda kv: _m(f"bad {kv[0]}", "malformed", _set(kv[0], value=kv[1]))),
    (_not_in(MAG_STATES, st.text(max_size=6)) | not_text | st.sampled_from(["", "processing\x00", "Processing", "cancelled"])).map(
        lambda s: _m("unknown state", "malformed", _set("state", value=s))),
    st.tuples(st.sampled_from(MAG_MONEY), bad_money).map(
        lambda kv: _m(f"bad money {kv[0]}", "malformed", _set(kv[0], value=kv[1]))),
    # Clerk reads one of price and price_incl_tax (by the order's tax mode): both go bad.
    st.tuples(line, bad_money).map(lambda iv: _m("bad item price", "malformed", _mag_bad_prices(*iv))),
    st.tuples(line, bad_money).map(
        lambda iv: _m("bad item discount", "malformed", _mag_item(iv[0], "discount_amount", iv[1], children=False))),
    not_a_list.map(lambda v: _m("items not a list", "malformed", _set("items", value=v))),
    st.tuples(line, not_a_dict).map(lambda iv: _m("item not an object", "malformed", _mag_item_replaced(*iv))),
    st.tuples(line, deep).map(lambda iv: _m("deeply nested item", "malformed", _mag_item_replaced(iv[0], [iv[1]]))),
    st.tuples(st.sampled_from(["extension_attributes", "billing_address"]), not_a_dict).map(
        lambda kv: _m(f"{kv[0]} not an object", "malformed", _set(kv[0], value=kv[1]))),
    (st.text(max_size=5) | st.integers()).map(lambda v: _m("street not a list", "malformed", _mag_address("street", v))),
    st.lists(st.integers() | st.none(), min_size=1, max_size=2).map(
        lambda v: _m("street of numbers", "malformed", _mag_address("street", v))),
    st.tuples(st.sampled_from(["is_virtual", "customer_is_guest"]), st.sampled_from(["0", "1", 0.0, [], "yes"])).map(
        lambda kv: _m(f"{kv[0]} not an integer", "malformed", _set(kv[0], value=kv[1]))),
    st.tuples(line, st.sampled_from(["124", 1.5, [1], "x"])).map(
        lambda iv: _m("parent_item_id not an integer", "malformed", _mag_item(iv[0], "parent_item_id", iv[1], children=False))),
    st.tuples(line, st.sampled_from(["0", 1.5, [1], "x"])).map(
        lambda iv: _m("item is_virtual not an integer", "malformed", _mag_item(iv[0], "is_virtual", iv[1]))),
    st.tuples(line, not_text).map(lambda iv: _m("sku not text", "malformed", _mag_item(iv[0], "sku", iv[1]))),
    st.tuples(line, free_text).map(lambda it: _m("NUL in sku", "malformed", _mag_item(it[0], "sku", f"{it[1]}\x00"))),
    st.tuples(line, bad_quantity).map(lambda iq: _m("bad quantity", "invalid_quantity", _mag_item(iq[0], "qty_ordered", iq[1]))),
    st.sampled_from([_set("items", value=[]), _drop("items")]).map(lambda f: _m("no items", "no_line_items", f)),
    not_iso.map(lambda c: _m("unknown currency", "unknown_currency", _set("order_currency_code", value=c))),
    # hold
    st.tuples(line, unknown_sku).map(lambda it: _m("unknown sku", "unknown_sku", _mag_item(it[0], "sku", it[1]))),
    st.tuples(line, scale).map(lambda ik: _m("price above the catalog's", "price_mismatch", _mag_reprice(*ik))),
    st.sampled_from([("street", []), ("street", [""]), ("city", None), ("postcode", None), ("country_id", None),
                     ("city", "  ")]).map(lambda kv: _m(f"no {kv[0]}", "incomplete_address", _mag_address(*kv))),
    st.just(_m("no name", "incomplete_address", _mag_blank_name)),
    st.just(_m("no shipping assignment", "incomplete_address", _mag_drop_address)),
    st.tuples(amount_delta, st.booleans()).map(
        lambda db: _m("total off", "total_mismatch", _mag_total(db[0] if db[1] else -db[0]))),
    st.sampled_from([("payment_review", "payment_review"), ("payment_review", None), ("processing", "fraud")]).map(
        lambda ss: _m("high risk", "high_risk", _mag_state(*ss))),
    st.sampled_from([99999999999999.99, -99999999999999.99]).map(
        lambda v: _m("amount at the limit", "held", _set("discount_amount", value=v))),
]
MAG_HARMLESS = [
    st.tuples(st.text(min_size=1, max_size=4), junk | deep).map(
        lambda kv: _m("unknown key", "accepted", _set(f"x_{kv[0]}", value=kv[1]))),
    st.tuples(st.sampled_from(["base_grand_total", "base_subtotal", "total_qty_ordered", "base_to_order_rate"]),
              st.sampled_from([float("nan"), float("inf"), "n/a", None, [], 1e308])).map(
        lambda kv: _m(f"junk in {kv[0]}", "accepted", _set(kv[0], value=kv[1]))),
    st.tuples(line, free_text).map(lambda it: _m("NUL in item name", "accepted", _mag_item(it[0], "name", f"{it[1]}\x00"))),
    st.tuples(line, long_text(600, 700)).map(
        lambda it: _m("long item name", "accepted", _mag_item(it[0], "name", it[1], children=False))),
    st.tuples(st.sampled_from(["customer_firstname", "customer_lastname"]), free_text).map(
        lambda kv: _m("NUL in a name", "accepted", _set(kv[0], value=f"{kv[1]}\x00"))),
    _not_in({"fraud"}, st.text(min_size=1, max_size=6)).map(
        lambda s: _m("merchant's own status label", "accepted", _mag_state("processing", s))),
    st.sampled_from(["new", "pending_payment", "holded"]).map(lambda s: _m("open state", "accepted", _mag_state(s, s))),
    st.sampled_from(["complete", "closed"]).map(lambda s: _m("history", "fulfilled", _mag_state(s, s))),
    st.just(_m("cancelled", "cancelled", _mag_state("canceled", "canceled"))),
]

BREAKING = {"woocommerce": WOO_BREAKING, "magento": MAG_BREAKING}
HARMLESS = {"woocommerce": WOO_HARMLESS, "magento": MAG_HARMLESS}


def _both(pair: tuple[Mutation, Mutation]) -> Mutation:
    """Two breaking mutations on one payload: held or quarantined, never taken."""
    first, second = pair

    def apply(order: dict[str, Any]) -> Any:
        broken = first.apply(order)
        try:
            return second.apply(broken)
        except (LookupError, TypeError, AttributeError, ArithmeticError, ValueError):
            return broken  # the first break took away what the second would touch

    return _m(f"{first.name} + {second.name}", {"held", "quarantined"}, apply)


def mutations_of(channel: str) -> Any:
    """One payload's mutation: mostly one breaking change, some harmless ones, some two at once."""
    breaking, harmless = st.one_of(*BREAKING[channel]), st.one_of(*HARMLESS[channel])
    return st.one_of(breaking, breaking, breaking, breaking, breaking, breaking, harmless, harmless,
                     st.tuples(breaking, breaking).map(_both))


def payloads_of(channel: str) -> Any:
    """A batch: (mutation, which base order) per payload."""
    return st.lists(st.tuples(mutations_of(channel), st.integers(min_value=0, max_value=39)),
                    min_size=BATCH, max_size=BATCH)


# ------------------------------------------------------------------ the path under test


@pytest.fixture
def clerk_db(database_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Clerk pointed at `database_url` (catalog imported, stock plenty) and at both channels' parsers."""
    from domain.catalog import parse_catalog_row
    from integrations import wiring
    from models.catalog_store import MASTER, upsert_variants
    from models.db import unit_of_work
    from models.stock_store import set_on_hand

    for name, value in {
        "CLERK_DATABASE_URL": database_url,
        "CLERK_WOOCOMMERCE_URL": "http://127.0.0.1:9", "CLERK_WOOCOMMERCE_KEY": "ck", "CLERK_WOOCOMMERCE_SECRET": "cs",
        "CLERK_MAGENTO_URL": "http://127.0.0.1:9", "CLERK_MAGENTO_TOKEN": "unused",
    }.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    store = _store()
    rows = [parse_catalog_row({k: str(v) for k, v in row.items()}) for row in store.catalog_rows()]
    with unit_of_work(database_url) as session:
        upsert_variants(session, rows, MASTER)
        set_on_hand(session, [(row["sku"], "main", 10**7) for row in rows], "adjustment", "test seed")
    yield database_url
    wiring.reset()


def intake_batch(channel: str, payloads: list[Any]) -> tuple[Any, list[Any]]:
    """One batch exactly as the flow's `process_batch` runs it (tasks called as plain functions)."""
    from tasks.orders import load_intake_context, store_orders
    from tasks.quality import check_orders

    checked = check_orders.fn(channel, payloads)
    context = load_intake_context.fn(channel, checked.orders)
    known = {external_id: stored for external_id, (_, stored) in context.known.items()}
    decisions = decide_batch(checked.orders, known, context.catalog, context.available, PriceTolerance())
    store_orders.fn(channel, decisions, checked.rejections, context.known, None, {})
    return checked, decisions


def stored(database_url: str, channel: str, external_ids: list[str], digests: list[str]) -> tuple[dict[str, tuple[str, set[str]]], set[str]]:
    """Status and hold reasons of these orders, and which of these quarantine digests are kept."""
    from models import Order, OrderHold, QuarantinedPayload
    from models.db import unit_of_work

    orders: dict[str, tuple[str, set[str]]] = {}
    kept: set[str] = set()
    with unit_of_work(database_url) as session:
        for start in range(0, len(external_ids), 400):
            chunk = external_ids[start:start + 400]
            rows = session.execute(select(Order.id, Order.external_id, Order.status)
                                   .where(Order.channel == channel, Order.external_id.in_(chunk))).all()
            reasons: dict[int, set[str]] = defaultdict(set)
            for order_id, reason in session.execute(select(OrderHold.order_id, OrderHold.reason)
                                                    .where(OrderHold.order_id.in_([r[0] for r in rows]))):
                reasons[order_id].add(reason)
            orders.update({external_id: (status, reasons[order_id]) for order_id, external_id, status in rows})
        for start in range(0, len(digests), 400):
            kept.update(session.scalars(select(QuarantinedPayload.payload_hash).where(
                QuarantinedPayload.channel == channel, QuarantinedPayload.payload_hash.in_(digests[start:start + 400]))))
    return orders, kept


def _satisfies(outcome: tuple[str, frozenset[str]], expect: frozenset[str]) -> bool:
    kind, codes = outcome
    for token in expect:
        if token in ("accepted", "fulfilled", "cancelled") and kind == token:
            return True
        if token == kind and codes:  # "held" or "quarantined", with any code
            return True
        if token in codes and kind in ("held", "quarantined"):
            return True
    return False


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_untouched_orders_are_accepted(channel: str, clerk_db: str) -> None:
    payloads = [_with_id(channel, base.payload, n) for n, base in enumerate(bases(channel))]
    checked, decisions = intake_batch(channel, payloads)
    assert checked.rejections == []
    assert [(d.order.external_id, d.status, d.reasons) for d in decisions if d.status != Status.ACCEPTED] == []
    assert len(decisions) == len(payloads)


@pytest.mark.parametrize("channel", CHANNELS)
def test_bad_payloads_are_held_or_quarantined_with_a_contract_reason(channel: str, clerk_db: str) -> None:
    from models.intake import payload_digest

    kind = "postgresql" if clerk_db.startswith("postgresql") else "sqlite"
    seen = {"payloads": 0, "batches": 0, "outcomes": defaultdict(int)}

    # No shrinking: each step reruns a 500-payload batch; the failure names the wrong payloads itself.
    @settings(max_examples=BATCHES[kind], deadline=None, derandomize=True, database=None,
              phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
    @given(payloads_of(channel))
    def batch(chosen: list[tuple[Mutation, int]]) -> None:
        good = bases(channel)
        payloads, expectations = [], []
        for mutation, base in chosen:
            fresh = _with_id(channel, good[base % len(good)].payload, next(_ids))
            payloads.append(mutation.apply(fresh))
            expectations.append(mutation)

        checked, decisions = intake_batch(channel, payloads)  # must not raise

        # Every payload comes out once: as a rejection (matched by identity) or a decided order.
        by_identity: dict[int, list[int]] = defaultdict(list)
        for index, payload in enumerate(payloads):
            by_identity[id(payload)].append(index)
        outcome: dict[int, tuple[str, frozenset[str]]] = {}
        for rejection in checked.rejections:
            assert rejection.reason in QUARANTINE_CODES, rejection
            index = by_identity[id(rejection.payload)].pop(0)
            outcome[index] = ("quarantined", frozenset({rejection.reason}))
        by_external = {d.order.external_id: d for d in decisions}
        for index, payload in enumerate(payloads):
            if index in outcome:
                continue
            key = str(payload["id"] if channel == "woocommerce" else payload["entity_id"])
            decision = by_external[key]
            outcome[index] = (decision.status.value, frozenset(decision.reasons))
        assert len(checked.rejections) + len(checked.orders) == len(payloads)
        assert len(decisions) == len(checked.orders), "an order folded into another"

        # ... and is stored as decided: orders with their holds, rejections kept raw.
        digests = [payload_digest(r.payload) for r in checked.rejections]
        orders, kept = stored(clerk_db, channel, list(by_external), digests)
        assert set(digests) <= kept, "a quarantined payload was not kept"
        for external_id, decision in by_external.items():
            status, holds = orders[external_id]
            assert status == decision.status.value, (external_id, status, decision.status)
            assert holds == (set(decision.reasons) if decision.status == Status.HELD else set()), (external_id, holds)

        wrong = []
        for index, mutation in enumerate(expectations):
            kind_, codes = outcome[index]
            if kind_ == "held":
                assert codes and codes <= HOLD_CODES, (mutation, codes)
            if not _satisfies(outcome[index], mutation.expect):
                wrong.append((mutation, outcome[index]))
            seen["outcomes"][kind_] += 1
        assert wrong == [], wrong[:10]
        seen["payloads"] += len(payloads)
        seen["batches"] += 1

    batch()
    assert seen["payloads"] >= BATCH * BATCHES[kind], seen
    # Every kind of outcome was exercised, not just the first mutation hypothesis liked.
    assert {"quarantined", "held", "accepted", "fulfilled", "cancelled"} <= set(seen["outcomes"]), seen


# ------------------------------------------------------------------ amounts and depth at the edges


def test_amounts_just_inside_the_limit_never_crash_a_batch(clerk_db: str) -> None:
    """Amounts each within the limit that the mapping sums past it (NUMERIC(18, 4) on PostgreSQL)."""
    good = bases("woocommerce")
    exclusive = next(b.payload for b in good if not b.payload["prices_include_tax"])
    inclusive = next(b.payload for b in good if b.payload["prices_include_tax"]
                     and Decimal(b.payload["line_items"][0]["subtotal_tax"]) > 0)
    discount_overflow = _woo_line(0, "subtotal", "-99999999999999.99")(_with_id("woocommerce", exclusive, 1))
    unit_price_overflow = _woo_line(0, "subtotal", "99999999999999.99")(_with_id("woocommerce", inclusive, 2))
    untouched = _with_id("woocommerce", exclusive, 3)
    checked, decisions = intake_batch("woocommerce", [discount_overflow, unit_price_overflow, untouched])
    outcome = {d.order.external_id: d.status for d in decisions} | {r.external_id: "quarantined" for r in checked.rejections}
    assert outcome[str(discount_overflow["id"])] == "quarantined"
    assert outcome[str(unit_price_overflow["id"])] == "quarantined"
    assert outcome[str(untouched["id"])] == Status.ACCEPTED


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_deeply_nested_payload_is_quarantined_without_crashing_the_batch(channel: str, clerk_db: str) -> None:
    import json

    lines = "line_items" if channel == "woocommerce" else "items"
    text = json.dumps(_with_id(channel, bases(channel)[0].payload, 1))
    text = text.replace(f'"{lines}": [', f'"{lines}": [' + "[" * 600 + "]" * 600 + ", ", 1)
    payload = json.loads(text)  # what a client's decode_json hands over
    checked, decisions = intake_batch(channel, [payload, _with_id(channel, bases(channel)[1].payload, 2)])
    assert [r.reason for r in checked.rejections] == ["malformed"]
    assert [d.status for d in decisions] == [Status.ACCEPTED]


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_payload_that_trips_the_mapping_itself_costs_one_payload(channel: str, clerk_db: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from integrations import wiring

    bad, good = (_with_id(channel, bases(channel)[n].payload, n + 1) for n in (0, 1))
    source = wiring.order_source(channel)
    parse = source.parse_order

    def tripping(payload):  # type: ignore[no-untyped-def]
        if payload is bad:
            raise TypeError("unhashable type: 'list'")
        return parse(payload)

    monkeypatch.setattr(source, "parse_order", tripping)
    checked, decisions = intake_batch(channel, [bad, good])
    assert [(r.reason, r.detail) for r in checked.rejections] == [("malformed", "could not be read (TypeError)")]
    assert [d.status for d in decisions] == [Status.ACCEPTED]
