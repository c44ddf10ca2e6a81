"""Shopify mapping: recorded-style payloads in, Clerk's types out; only `Unreadable` escapes."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.orders import Lifecycle, Risk
from integrations.protocols import Unreadable, UpstreamError
from integrations.shopify import mapping
from integrations.shopify.mapping import BulkRefusal, ShapeError, parse_order


def money(amount: str, currency: str = "USD") -> dict[str, Any]:
    return {"shopMoney": {"amount": amount, "currencyCode": currency}}


def line(sku: str | None = "TSHIRT-M", quantity: Any = 2, price: str = "25.00", discount: str = "0.0") -> dict:
    return {
        "id": "gid://shopify/LineItem/13751984586818",
        "sku": sku,
        "title": "Organic T-shirt",
        "quantity": quantity,
        "requiresShipping": True,
        "originalUnitPriceSet": money(price),
        "totalDiscountSet": money(discount),
    }


def order(**overrides: Any) -> dict[str, Any]:
    """An order as ORDERS_PAGE returns it once normalised (values as Shopify spells them)."""
    payload = {
        "id": "gid://shopify/Order/5524983021634",
        "name": "#1042",
        "createdAt": "2026-03-02T14:05:11Z",
        "updatedAt": "2026-03-02T15:20:45Z",
        "processedAt": "2026-03-02T14:05:09Z",
        "cancelledAt": None,
        "closed": False,
        "closedAt": None,
        "displayFulfillmentStatus": "UNFULFILLED",
        "currencyCode": "USD",
        "taxesIncluded": False,
        "requiresShipping": True,
        "totalPriceSet": money("59.48"),
        "totalShippingPriceSet": money("5.99"),
        "totalTaxSet": money("4.49"),
        "totalDiscountsSet": money("1.00"),
        "email": "order-email@example.com",
        "phone": "+15555550100",
        "customer": {
            "id": "gid://shopify/Customer/7091052740674",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "defaultEmailAddress": {"emailAddress": "ada@example.com"},
            "defaultPhoneNumber": {"phoneNumber": "+15555550199"},
        },
        "shippingAddress": {
            "name": "Ada Lovelace",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "company": None,
            "address1": "12 Analytical Way",
            "address2": "Apt 3",
            "city": "Portland",
            "province": "Oregon",
            "provinceCode": "OR",
            "zip": "97201",
            "countryCodeV2": "US",
            "phone": "+15555550199",
        },
        "risk": {"recommendation": "ACCEPT", "assessments": [{"riskLevel": "LOW"}, {"riskLevel": "NONE"}]},
        "lineItems": {"nodes": [line(), line(sku="MUG", quantity=1, price="9.00", discount="1.00")]},
    }
    payload.update(overrides)
    return payload


# ------------------------------------------------------------------------ parse_order


def test_reads_a_complete_order() -> None:
    parsed = parse_order(order())
    assert parsed.channel == "shopify"
    assert parsed.external_id == "gid://shopify/Order/5524983021634"
    assert parsed.number == "#1042"
    assert parsed.currency == "USD"
    assert parsed.placed_at == datetime(2026, 3, 2, 14, 5, 9, tzinfo=UTC)
    assert parsed.updated_at == datetime(2026, 3, 2, 15, 20, 45, tzinfo=UTC)
    assert parsed.lifecycle is Lifecycle.OPEN
    assert (parsed.total, parsed.shipping, parsed.tax, parsed.discounts) == (
        Decimal("59.48"),
        Decimal("5.99"),
        Decimal("4.49"),
        Decimal("1.00"),
    )
    assert not parsed.taxes_included and parsed.requires_shipping
    first, second = parsed.lines
    assert (first.sku, first.title, first.quantity, first.unit_price, first.discount) == (
        "TSHIRT-M",
        "Organic T-shirt",
        Decimal(2),
        Decimal("25.00"),
        Decimal("0.0"),
    )
    assert (second.sku, second.quantity, second.discount) == ("MUG", Decimal(1), Decimal("1.00"))
    assert parsed.ship_to is not None
    assert (parsed.ship_to.name, parsed.ship_to.street1, parsed.ship_to.street2) == (
        "Ada Lovelace",
        "12 Analytical Way",
        "Apt 3",
    )
    assert (parsed.ship_to.city, parsed.ship_to.province, parsed.ship_to.postal_code, parsed.ship_to.country) == (
        "Portland",
        "OR",
        "97201",
        "US",
    )
    assert parsed.customer is not None
    assert parsed.customer.external_id == "gid://shopify/Customer/7091052740674"
    assert (parsed.customer.email, parsed.customer.phone) == ("ada@example.com", "+15555550199")
    assert (parsed.customer.first_name, parsed.customer.last_name) == ("Ada", "Lovelace")
    assert parsed.risk is Risk.LOW


def test_timestamps_with_offsets_become_utc() -> None:
    parsed = parse_order(order(processedAt=None, createdAt="2026-03-02T09:05:11-05:00"))
    assert parsed.placed_at == datetime(2026, 3, 2, 14, 5, 11, tzinfo=UTC)
    assert parsed.placed_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, Lifecycle.OPEN),
        ({"closed": True}, Lifecycle.CLOSED),
        ({"displayFulfillmentStatus": "FULFILLED"}, Lifecycle.FULFILLED),
        ({"displayFulfillmentStatus": "FULFILLED", "closed": True}, Lifecycle.FULFILLED),
        ({"displayFulfillmentStatus": "PARTIALLY_FULFILLED"}, Lifecycle.OPEN),
        ({"cancelledAt": "2026-03-03T10:00:00Z", "closed": True, "displayFulfillmentStatus": "FULFILLED"},
         Lifecycle.CANCELLED),
    ],
)
def test_lifecycle(overrides: dict[str, Any], expected: Lifecycle) -> None:
    assert parse_order(order(**overrides)).lifecycle is expected


@pytest.mark.parametrize(
    ("risk", "expected"),
    [
        (None, Risk.NONE),
        ({"recommendation": "NONE", "assessments": []}, Risk.NONE),
        ({"recommendation": "ACCEPT", "assessments": [{"riskLevel": "MEDIUM"}, {"riskLevel": "LOW"}]}, Risk.MEDIUM),
        ({"recommendation": "INVESTIGATE", "assessments": [{"riskLevel": "PENDING"}]}, Risk.PENDING),
        ({"recommendation": "ACCEPT", "assessments": [{"riskLevel": "HIGH"}]}, Risk.HIGH),
        ({"recommendation": "CANCEL", "assessments": [{"riskLevel": "LOW"}]}, Risk.HIGH),
        ({"recommendation": "ACCEPT", "assessments": [{"riskLevel": "SOMETHING_NEW"}]}, Risk.NONE),
    ],
)
def test_risk(risk: dict[str, Any] | None, expected: Risk) -> None:
    assert parse_order(order(risk=risk)).risk is expected


def test_address_name_from_parts_and_province_fallback() -> None:
    address = order()["shippingAddress"] | {"name": None, "provinceCode": None, "address2": None}
    ship_to = parse_order(order(shippingAddress=address)).ship_to
    assert ship_to is not None
    assert (ship_to.name, ship_to.province, ship_to.street2) == ("Ada Lovelace", "Oregon", None)
    assert parse_order(order(shippingAddress=None)).ship_to is None


def test_customer_falls_back_to_the_orders_email_and_phone() -> None:
    customer = order()["customer"] | {"defaultEmailAddress": None, "defaultPhoneNumber": {"phoneNumber": None}}
    parsed = parse_order(order(customer=customer)).customer
    assert parsed is not None
    assert (parsed.email, parsed.phone, parsed.first_name) == ("order-email@example.com", "+15555550100", "Ada")
    guest = parse_order(order(customer=None)).customer
    assert guest is not None
    assert (guest.external_id, guest.email) == (None, "order-email@example.com")
    assert parse_order(order(customer=None, email=None, phone=None)).customer is None


def test_what_the_quality_suite_judges_is_kept_as_given() -> None:
    lines = [line(sku=""), line(quantity="two"), line(quantity=None), line(quantity=True), line(quantity=-1),
             line(quantity=1.5)]
    parsed = parse_order(order(currencyCode="ZZZ", lineItems={"nodes": lines}))
    assert parsed.currency == "ZZZ"
    assert parsed.lines[0].sku is None
    assert [x.quantity for x in parsed.lines[1:]] == [None, None, None, Decimal(-1), Decimal("1.5")]
    assert parse_order(order(lineItems={"nodes": []})).lines == ()
    assert parse_order(order(lineItems=None)).lines == ()
    assert parse_order(order(currencyCode=None)).currency == ""


def test_flags() -> None:
    parsed = parse_order(order(taxesIncluded=True, requiresShipping=False))
    assert parsed.taxes_included and not parsed.requires_shipping
    no_ship = line() | {"requiresShipping": False}
    assert parse_order(order(lineItems={"nodes": [no_ship]})).lines[0].requires_shipping is False


def test_missing_optional_amounts_are_zero() -> None:
    parsed = parse_order(order(totalShippingPriceSet=None, totalTaxSet=None, totalDiscountsSet=None))
    assert (parsed.shipping, parsed.tax, parsed.discounts) == (0, 0, 0)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"name": None}, "name is missing"),
        ({"name": "  "}, "name is empty"),
        ({"createdAt": None}, "createdAt is missing"),
        ({"updatedAt": "yesterday"}, "updatedAt is not a timestamp"),
        ({"updatedAt": "2026-03-02T15:20:45"}, "updatedAt is not a timestamp with a time zone"),
        ({"processedAt": 1700000000}, "processedAt is not a string"),
        ({"totalPriceSet": None}, "totalPriceSet is missing"),
        ({"totalPriceSet": money("12,50")}, "totalPriceSet.shopMoney.amount is not an amount"),
        ({"totalTaxSet": money("NaN")}, "totalTaxSet.shopMoney.amount is not an amount"),
        ({"totalPriceSet": {"shopMoney": 12.5}}, "totalPriceSet.shopMoney is not an object"),
        ({"totalPriceSet": [money("1")]}, "totalPriceSet is not an object"),
        ({"lineItems": [line()]}, "lineItems is not an object"),
        ({"lineItems": {"nodes": {"0": line()}}}, "lineItems.nodes is not a list"),
        ({"lineItems": {"nodes": ["TSHIRT-M"]}}, "lineItems[0] is not an object"),
        ({"lineItems": {"nodes": [line(price="free")]}}, "lineItems[0].originalUnitPriceSet.shopMoney.amount"),
        ({"lineItems": {"nodes": [line(), line(sku=7)]}}, "lineItems[1].sku is not a string"),
        ({"shippingAddress": "12 Analytical Way"}, "shippingAddress is not an object"),
        ({"shippingAddress": {"zip": 97201}}, "shippingAddress.zip is not a string"),
        ({"customer": {"defaultEmailAddress": "ada@example.com"}}, "customer.defaultEmailAddress is not an object"),
        ({"risk": {"assessments": "HIGH"}}, "risk.assessments is not a list"),
        ({"closed": "no"}, "closed is not a boolean"),
        ({"currencyCode": ["USD"]}, "currencyCode is not a string"),
    ],
)
def test_unreadable_orders_say_which_field(overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(Unreadable) as caught:
        parse_order(order(**overrides))
    assert caught.value.reason == "malformed"
    assert fragment in caught.value.detail
    assert caught.value.external_id == "gid://shopify/Order/5524983021634"


def test_unreadable_details_carry_no_personal_data() -> None:
    address = order()["shippingAddress"] | {"address1": ["12 Analytical Way"]}
    with pytest.raises(Unreadable) as caught:
        parse_order(order(shippingAddress=address))
    assert "Analytical" not in str(caught.value)


@pytest.mark.parametrize("payload", [None, [], "order", 3, {"id": None}, {"id": 5524983021634}, {"id": ""}])
def test_payloads_without_a_readable_id(payload: Any) -> None:
    with pytest.raises(Unreadable) as caught:
        parse_order(payload)
    assert caught.value.reason == "malformed"
    assert caught.value.external_id is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)
order_keys = st.sampled_from(sorted(order()))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(order_keys | st.text(max_size=8), json_values, max_size=12))
def test_random_payloads_raise_only_unreadable(payload: dict[str, Any]) -> None:
    try:
        parse_order(payload)
    except Unreadable as exc:
        assert exc.reason == "malformed"


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


ORDER_PATHS = _paths(order())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(ORDER_PATHS), json_values), min_size=1, max_size=3))
def test_damaged_real_orders_raise_only_unreadable(damage: list[tuple[tuple, Any]]) -> None:
    payload = copy.deepcopy(order())
    for path, value in damage:
        target = payload
        try:
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change already removed this path
    try:
        parsed = parse_order(payload)
    except Unreadable as exc:
        assert exc.reason == "malformed"
    else:
        assert parsed.external_id and parsed.placed_at.tzinfo is not None


# -------------------------------------------------------------------- requests & pages


def test_orders_query_uses_shopify_search_syntax() -> None:
    assert mapping.build_updated_since_query(None) == ""
    since = datetime(2026, 1, 1, 2, 30, 15, 999_000, tzinfo=timezone(timedelta(hours=2)))
    assert mapping.build_updated_since_query(since) == "updated_at:>='2026-01-01T00:30:15Z'"
    assert mapping.build_orders_variables(since, "abc", 10) == {
        "first": 10,
        "after": "abc",
        "query": "updated_at:>='2026-01-01T00:30:15Z'",
    }


def page(nodes: list[Any], has_next: bool = False, cursor: str | None = None) -> dict[str, Any]:
    return {"orders": {"pageInfo": {"hasNextPage": has_next, "endCursor": cursor}, "nodes": nodes}}


def test_orders_page_is_normalised_and_notes_unfinished_lines() -> None:
    long_order = order()
    long_order["lineItems"] = {"pageInfo": {"hasNextPage": True, "endCursor": "L1"}, "nodes": [line()]}
    short_order = order(id="gid://shopify/Order/2")
    short_order["lineItems"] = {"pageInfo": {"hasNextPage": False, "endCursor": "L9"}, "nodes": [line()]}
    parsed = mapping.parse_orders_page(page([short_order, long_order, "junk"], has_next=True, cursor="C2"))
    assert parsed.orders[0]["lineItems"] == {"nodes": [line()]}
    assert parsed.orders[2] == "junk"  # passed on for parse_order to quarantine
    assert parsed.unfinished == [(1, "L1")]
    assert (parsed.end_cursor, parsed.has_next) == ("C2", True)
    assert "pageInfo" in long_order["lineItems"], "the response itself is left alone"


@pytest.mark.parametrize(
    "data",
    [{}, {"orders": None}, {"orders": {"nodes": []}}, page([], has_next=True, cursor=None), {"orders": {"nodes": {}, "pageInfo": {}}}],
)
def test_broken_pages_are_shape_errors(data: dict[str, Any]) -> None:
    with pytest.raises(ShapeError):
        mapping.parse_orders_page(data)


def test_order_lines_page() -> None:
    data = {"order": {"id": "x", "lineItems": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": [line()]}}}
    parsed = mapping.parse_order_lines_page(data)
    assert (parsed.lines, parsed.end_cursor, parsed.has_next) == ([line()], None, False)
    assert mapping.parse_order_lines_page({"order": None}) is None, "deleted meanwhile"
    with pytest.raises(ShapeError):
        mapping.parse_order_lines_page({"order": "gid://shopify/Order/1"})
    with pytest.raises(ShapeError):
        mapping.parse_order_lines_page({"order": {"id": "x"}})


def test_newest_update_skips_unreadable_timestamps() -> None:
    payloads = [order(updatedAt="2026-03-02T15:20:45Z"), order(updatedAt="2026-03-05T01:00:00+01:00"),
                order(updatedAt="garbage"), "junk"]
    assert mapping.newest_update(payloads) == datetime(2026, 3, 5, 0, 0, tzinfo=UTC)
    assert mapping.newest_update([]) is None


# ------------------------------------------------------------------ envelope & errors


def test_query_cost_and_throttle_status() -> None:
    body = {
        "data": {},
        "extensions": {
            "cost": {
                "requestedQueryCost": 933,
                "actualQueryCost": 412,
                "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1588, "restoreRate": 100.0},
            }
        },
    }
    cost = mapping.parse_query_cost(body)
    assert cost == mapping.QueryCost(933, 412, mapping.ThrottleStatus(2000, 1588, 100))
    throttled = {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                 "extensions": {"cost": {"requestedQueryCost": 933, "actualQueryCost": None,
                                         "throttleStatus": {"maximumAvailable": 2000, "currentlyAvailable": 3,
                                                            "restoreRate": 100}}}}
    assert mapping.parse_query_cost(throttled).actual is None
    assert mapping.is_throttled(mapping.parse_errors(throttled))
    assert mapping.parse_query_cost({"data": {}}) is None
    assert mapping.parse_query_cost({"extensions": {"cost": {"throttleStatus": {"restoreRate": 0}}}}).throttle is None


def test_errors_in_every_shape_shopify_sends() -> None:
    assert mapping.parse_errors({"errors": "[API] Invalid API key or access token"}) == [
        mapping.GraphQLError("[API] Invalid API key or access token", None)
    ]
    errors = mapping.parse_errors({"errors": [{"message": "Field 'x' doesn't exist", "extensions": {"code": "undefinedField"}}, "odd"]})
    assert [(e.message, e.code) for e in errors] == [("Field 'x' doesn't exist", "undefinedField"), ("odd", None)]
    assert not mapping.is_throttled(errors)
    assert mapping.is_throttled([mapping.GraphQLError("Throttled", None)])
    assert mapping.parse_errors({"data": {}}) == []


def test_api_version_names() -> None:
    assert mapping.is_api_version("2026-10") and mapping.is_api_version("unstable")
    assert not mapping.is_api_version("2026-11") and not mapping.is_api_version("latest")


# ----------------------------------------------------------------------------- bulk


def bulk(status: str, **fields: Any) -> dict[str, Any]:
    return {"id": "gid://shopify/BulkOperation/720918", "status": status, "errorCode": None,
            "createdAt": "2026-03-02T16:00:00Z", "rootObjectCount": "0", "url": None, **fields}


@pytest.mark.parametrize(
    ("node", "state", "error"),
    [
        (bulk("CREATED"), "running", None),
        (bulk("RUNNING", rootObjectCount="5120"), "running", None),
        (bulk("COMPLETED", url="https://storage.example/export.jsonl", rootObjectCount="12000"), "completed", None),
        (bulk("FAILED", errorCode="TIMEOUT"), "failed", "TIMEOUT"),
        (bulk("CANCELED"), "failed", "canceled"),
        (bulk("EXPIRED"), "failed", "expired"),
    ],
)
def test_bulk_status(node: dict[str, Any], state: str, error: str | None) -> None:
    status = mapping.parse_bulk_status({"bulkOperation": node})
    assert (status.state, status.error, status.job_id) == (state, error, "gid://shopify/BulkOperation/720918")
    assert status.started_at == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    assert status.root_count == int(node["rootObjectCount"])
    assert status.url == node["url"]


def test_unknown_bulk_operation_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError):
        mapping.parse_bulk_status({"bulkOperation": None})


def test_bulk_run_outcomes() -> None:
    started = mapping.parse_bulk_run({"bulkOperationRunQuery": {"bulkOperation": bulk("CREATED"), "userErrors": []}})
    assert started.state == "running"
    busy = mapping.parse_bulk_run({"bulkOperationRunQuery": {"bulkOperation": None, "userErrors": [
        {"field": None, "message": "A bulk query operation for this app and shop is already in progress",
         "code": "OPERATION_IN_PROGRESS"}]}})
    assert isinstance(busy, BulkRefusal) and busy.busy
    invalid = mapping.parse_bulk_run({"bulkOperationRunQuery": {"bulkOperation": None, "userErrors": [
        {"field": ["query"], "message": "Invalid bulk query", "code": "INVALID"}]}})
    assert invalid == BulkRefusal(["Invalid bulk query"], busy=False)


def test_current_bulk_is_adopted_only_when_running_our_query() -> None:
    ours = "{ orders(sortKey: UPDATED_AT) { edges { node { id } } } }"
    running = bulk("RUNNING", query="  {\n orders(sortKey: UPDATED_AT) { edges { node { id } } } }")
    found = mapping.parse_current_bulk({"currentBulkOperation": running}, ours)
    assert found is not None and found.job_id == running["id"] and found.state == "running"
    products = bulk("RUNNING", query="{ products { edges { node { id } } } }")
    assert mapping.parse_current_bulk({"currentBulkOperation": products}, ours) is None
    finished = bulk("COMPLETED", query=ours)
    assert mapping.parse_current_bulk({"currentBulkOperation": finished}, ours) is None
    assert mapping.parse_current_bulk({"currentBulkOperation": None}, ours) is None


# -------------------------------------------------------------------------- catalog


def test_variants_page_to_catalog_items() -> None:
    nodes = [
        {"id": "gid://shopify/ProductVariant/1", "sku": "TSHIRT-M", "title": "M", "price": "25.00",
         "barcode": "0123456789012", "product": {"title": "Organic T-shirt", "productType": "Apparel"}},
        {"id": "gid://shopify/ProductVariant/2", "sku": "MUG", "title": "Default Title", "price": "9.00",
         "barcode": None, "product": {"title": "Mug", "productType": ""}},
        {"id": "gid://shopify/ProductVariant/3", "sku": None, "title": "L", "price": "25.00", "product": {}},
        {"id": "gid://shopify/ProductVariant/4", "sku": "", "title": "XL", "price": "25.00", "product": {}},
        {"id": "gid://shopify/ProductVariant/5", "sku": "BAD", "title": "S", "price": None, "product": {}},
    ]
    data = {"productVariants": {"pageInfo": {"hasNextPage": True, "endCursor": "V2"}, "nodes": nodes}}
    parsed = mapping.parse_variants_page(data, "EUR")
    assert [(i.sku, i.title, i.price, i.currency) for i in parsed.items] == [
        ("TSHIRT-M", "Organic T-shirt — M", Decimal("25.00"), "EUR"),
        ("MUG", "Mug", Decimal("9.00"), "EUR"),
    ]
    first = parsed.items[0]
    assert (first.product_title, first.barcode, first.category, first.channel_ref) == (
        "Organic T-shirt", "0123456789012", "Apparel", "gid://shopify/ProductVariant/1")
    assert parsed.items[1].category is None and parsed.items[1].barcode is None
    assert (parsed.end_cursor, parsed.has_next) == ("V2", True)


def test_shop_currency() -> None:
    assert mapping.parse_shop_currency({"shop": {"id": "gid://shopify/Shop/1", "currencyCode": "CAD"}}) == "CAD"
    with pytest.raises(ShapeError):
        mapping.parse_shop_currency({"shop": {}})
