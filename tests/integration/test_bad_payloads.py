"""At least 10,000 generated bad payloads: none crashes a batch; each is held or quarantined by code."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from domain.intake import decide_batch
from domain.orders import CatalogPrice, Status
from domain.reasons import Hold, Quarantine

BATCH = 500
BATCHES = 20  # 10,000 payloads in all
CATALOG = {"SKU-1": CatalogPrice(Decimal("10.00"), "USD"), "SKU-2": CatalogPrice(Decimal("4.50"), "USD")}
STOCK = {"SKU-1": 10**6, "SKU-2": 10**6}


def money(amount: str) -> dict[str, Any]:
    return {"shopMoney": {"amount": amount, "currencyCode": "USD"}}


def good_order(n: int) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/Order/{n}", "name": f"#{n}", "createdAt": "2026-11-01T10:00:00Z",
        "updatedAt": "2026-11-01T10:05:00Z", "processedAt": "2026-11-01T10:00:00Z", "cancelledAt": None,
        "closed": False, "closedAt": None, "displayFulfillmentStatus": "UNFULFILLED", "currencyCode": "USD",
        "taxesIncluded": False, "requiresShipping": True, "totalPriceSet": money("24.00"),
        "totalShippingPriceSet": money("5.00"), "totalTaxSet": money("0.00"), "totalDiscountsSet": money("0.00"),
        "email": "ana@example.com", "phone": None,
        "customer": {"id": "gid://shopify/Customer/9", "firstName": "Ana", "lastName": "Lima",
                     "defaultEmailAddress": {"emailAddress": "ana@example.com"}, "defaultPhoneNumber": None},
        "shippingAddress": {"name": "Ana Lima", "firstName": "Ana", "lastName": "Lima", "company": None,
                            "address1": "12 Main St", "address2": None, "city": "Portland", "province": "Oregon",
                            "provinceCode": "OR", "zip": "97201", "countryCodeV2": "US", "phone": None},
        "risk": {"recommendation": "ACCEPT", "assessments": [{"riskLevel": "LOW"}]},
        "lineItems": {"nodes": [
            {"id": "gid://shopify/LineItem/1", "sku": "SKU-1", "title": "Mug", "quantity": 1, "requiresShipping": True,
             "originalUnitPriceSet": money("10.00"), "totalDiscountSet": money("0.00")},
            {"id": "gid://shopify/LineItem/2", "sku": "SKU-2", "title": "Spoon", "quantity": 2, "requiresShipping": True,
             "originalUnitPriceSet": money("4.50"), "totalDiscountSet": money("0.00")},
        ]},
    }


# No `.filter` anywhere: with 500 payloads an example, a few rejected draws spoil the whole
# example, and most would be thrown away (the count is asserted below).
scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12)
not_an_object = scalar | st.lists(scalar, max_size=3)
REQUIRED = ["id", "name", "createdAt", "updatedAt", "totalPriceSet"]
LINE_REQUIRED = ["originalUnitPriceSet"]


def _set(path: list[Any], value: Any):  # type: ignore[no-untyped-def]
    def apply(order: dict[str, Any]) -> Any:
        node = order
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return order
    return apply


def _drop(path: list[Any]):  # type: ignore[no-untyped-def]
    def apply(order: dict[str, Any]) -> Any:
        node = order
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
        return order
    return apply


not_a_string = st.integers() | st.lists(st.text(max_size=3), max_size=2) | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2) | st.booleans()
bad_amount = st.sampled_from(["", "abc", "1,00", "NaN", "Infinity", "-Infinity", "1e999", "12.5.1", " ", "0x10"]) | not_a_string
not_iso = st.text(min_size=0, max_size=5).map(lambda c: c + "9" if len(c) == 3 and c.isupper() and c.isalpha() else c)
fraction = st.tuples(st.integers(0, 99), st.sampled_from([0.5, 0.25, 0.1, 0.999, 1e-7])).map(sum)
bad_quantity = st.integers(max_value=0) | st.integers(min_value=10**9) | fraction | st.none() | st.text(max_size=4)
line_index = st.sampled_from([0, 1])

MUTATIONS = st.one_of(
    # quarantine: cannot be read, or fails the quality suite
    st.sampled_from(REQUIRED).map(lambda key: _drop([key])),
    st.tuples(st.sampled_from(REQUIRED), not_a_string).map(lambda kv: _set([kv[0]], kv[1])),
    st.tuples(st.sampled_from(["createdAt", "updatedAt"]), st.text(max_size=12)).map(lambda kv: _set([kv[0]], kv[1])),
    bad_amount.map(lambda a: _set(["totalPriceSet", "shopMoney", "amount"], a)),
    st.tuples(line_index, bad_amount).map(lambda ia: _set(["lineItems", "nodes", ia[0], "originalUnitPriceSet", "shopMoney", "amount"], ia[1])),
    st.tuples(line_index, bad_quantity).map(lambda iq: _set(["lineItems", "nodes", iq[0], "quantity"], iq[1])),
    not_iso.map(lambda c: _set(["currencyCode"], c)),
    st.just(_set(["lineItems", "nodes"], [])),
    st.tuples(line_index, not_an_object).map(lambda ij: _set(["lineItems", "nodes", ij[0]], ij[1])),
    not_an_object.map(lambda j: (lambda order: j)),
    st.text(min_size=201, max_size=260).map(lambda t: _set(["id"], t)),
    # hold: readable, but needs a person
    st.tuples(line_index, st.text(min_size=1, max_size=30).map(lambda s: "X-" + s)).map(lambda is_: _set(["lineItems", "nodes", is_[0], "sku"], is_[1])),
    st.decimals(min_value=Decimal("10.50"), max_value=Decimal("999"), places=2).map(lambda p: _set(["lineItems", "nodes", 0, "originalUnitPriceSet", "shopMoney", "amount"], str(p))),
    st.sampled_from(["address1", "city", "zip", "countryCodeV2"]).map(lambda k: _set(["shippingAddress", k], None)),
    st.just(_set(["shippingAddress"], None)),
    st.decimals(min_value=Decimal("0.02"), max_value=Decimal("500"), places=2).map(lambda d: _set(["totalPriceSet", "shopMoney", "amount"], str(Decimal("24.00") + d))),
    st.just(_set(["risk"], {"recommendation": "CANCEL", "assessments": [{"riskLevel": "HIGH"}]})),
)


@pytest.fixture
def shopify_parser(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from integrations import wiring

    monkeypatch.setenv("CLERK_SHOPIFY_SHOP_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CLERK_SHOPIFY_ACCESS_TOKEN", "unused")
    wiring.reset()
    yield
    wiring.reset()


def test_the_untouched_order_is_accepted(shopify_parser) -> None:  # type: ignore[no-untyped-def]
    from tasks.quality import check_orders

    checked = check_orders.fn("shopify", [good_order(1)])
    assert checked.rejections == []
    [decision] = decide_batch(checked.orders, {}, CATALOG, STOCK)
    assert decision.status == Status.ACCEPTED, decision.reasons


def test_bad_payloads_are_held_or_quarantined_with_a_contract_reason(shopify_parser) -> None:  # type: ignore[no-untyped-def]
    from tasks.quality import check_orders

    seen = {"payloads": 0}

    # No shrinking: each step would rerun a 500-payload batch; the assertions name the payloads.
    @settings(max_examples=BATCHES, deadline=None, derandomize=True, database=None,
              phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
    @given(st.lists(MUTATIONS, min_size=BATCH, max_size=BATCH))
    def batch(mutations) -> None:  # type: ignore[no-untyped-def]
        payloads = [mutate(copy.deepcopy(good_order(n))) for n, mutate in enumerate(mutations)]
        checked = check_orders.fn("shopify", payloads)
        decisions = decide_batch(checked.orders, {}, CATALOG, STOCK)
        quarantine_codes = {r.value for r in Quarantine}
        hold_codes = {r.value for r in Hold}
        assert all(r.reason in quarantine_codes for r in checked.rejections)
        not_held = [(d.order.external_id, d.status) for d in decisions if d.status != Status.HELD or not d.reasons]
        assert not_held == []
        assert all(set(d.reasons) <= hold_codes for d in decisions)
        # nothing lost: every payload is either an order decided or a rejection kept raw
        assert len(checked.rejections) + len(checked.orders) == len(payloads)
        seen["payloads"] += len(payloads)

    batch()
    assert seen["payloads"] >= BATCH * BATCHES, seen  # hypothesis ran every batch it was asked for
