"""Magento's own admin REST schema (2.4.9, Swagger 2.0) as the judge of both sides.

Every request the client sends must name a path and method the schema has, with query
parameters and a body it knows; every answer the sandbox gives must match the schema's
response definition. A small Swagger-2.0 validator does the judging, with one rule taken
from Magento's serializer rather than the schema: a required property may be null
(Magento prints an unset required getter as null, and omits unset optional ones).

Known, deliberate deviations, each checked to be exactly that:
- a `malformed` order's bad amount is a string where the schema says number (the point
  of the tricky order);
- error `parameters` for named placeholders are an object (`{"resources": "..."}`), as
  Magento sends them, where the schema says a list of objects;
- `POST /V1/inventory/source-items` documents no 200 answer; Magento answers `[]`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from domain.orders import Lifecycle
from integrations.magento import MagentoClient, Track
from integrations.protocols import StockLevel, UpstreamError
from integrations.sandbox.magento import MagentoSandbox, create_magento_app
from integrations.sandbox.server import serve_in_thread
from integrations.sandbox.store import StoreSpec, generate_store
from tests.shared_specs import shared_file

yaml = pytest.importorskip("yaml")
SPEC = shared_file("specs", "magento", "admin-schema-2.4.9.yaml")
pytestmark = pytest.mark.skipif(not SPEC.exists(), reason=f"Magento's schema is not at {SPEC}")

TOKEN = "magento_schema_test"
_INDEX = re.compile(r"\[\d+\]")


class Swagger:
    """Operations and definitions of a Swagger 2.0 document, and a validator for its schemas."""

    def __init__(self, document: dict[str, Any]):
        self.definitions: dict[str, Any] = document["definitions"]
        self.operations: list[tuple[re.Pattern[str], str, dict[str, Any]]] = []
        for template, methods in document["paths"].items():
            pattern = re.compile(re.sub(r"\\\{\w+\\\}", r"[^/]+", re.escape(template)))
            for method, operation in methods.items():
                self.operations.append((pattern, method.upper(), operation))

    def operation(self, method: str, url: httpx.URL) -> dict[str, Any] | None:
        """The operation for a request to `/rest/{store}/V1/...` or `/rest/V1/...`."""
        route = re.sub(r"^/rest/(?:[^/]+/)?(?=V1/)", "/", url.path)
        return next((op for pattern, verb, op in self.operations if verb == method and pattern.fullmatch(route)),
                    None)

    def violations(self, schema: dict[str, Any], value: Any, where: str = "$") -> list[str]:
        if "$ref" in schema:
            schema = self.definitions[schema["$ref"].rsplit("/", 1)[-1]]
        kind = schema.get("type", "object" if "properties" in schema else None)
        if kind == "object":
            if not isinstance(value, dict):
                return [f"{where}: expected an object"]
            properties, required = schema.get("properties", {}), schema.get("required", [])
            found = [f"{where}.{name}: required" for name in required if name not in value]
            for name, item in value.items():
                if name not in properties:
                    found.append(f"{where}.{name}: not in the schema")
                elif item is None:
                    if name not in required:
                        found.append(f"{where}.{name}: null though optional")
                else:
                    found += self.violations(properties[name], item, f"{where}.{name}")
            return found
        if kind == "array":
            if not isinstance(value, list):
                return [f"{where}: expected a list"]
            return [v for i, item in enumerate(value) for v in self.violations(schema["items"], item, f"{where}[{i}]")]
        checks = {"string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
                  "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
                  "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool)}
        if kind in checks and not checks[kind](value):
            return [f"{where}: expected {kind}, got {type(value).__name__}"]
        return []


@pytest.fixture(scope="module")
def spec() -> Swagger:
    with SPEC.open("rb") as handle:
        return Swagger(yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))


@dataclass
class Exchange:
    """One request and its answer; `response` is None when the answer was lost on the way."""

    request: httpx.Request
    response: httpx.Response | None = None

    def answered(self) -> bool:
        """True when a whole answer arrived (the client, not the hook, reads it)."""
        if self.response is None:
            return False
        try:
            self.response.content
        except httpx.ResponseNotRead:
            return False
        return True


@dataclass
class Recorded:
    sandbox: MagentoSandbox
    exchanges: list[Exchange]


def recording_client(url: str, exchanges: list[Exchange], **options: Any) -> MagentoClient:
    def note(request: httpx.Request) -> None:
        exchanges.append(Exchange(request))

    def keep(response: httpx.Response) -> None:
        next(e for e in reversed(exchanges) if e.request is response.request).response = response

    http = httpx.Client(event_hooks={"request": [note], "response": [keep]})
    return MagentoClient(url, options.pop("token", TOKEN), http=http, sleep=lambda _: None, **options)


@pytest.fixture(scope="module")
def recorded() -> Iterator[Recorded]:
    """Everything the client does, once, against a sandbox: reads, writes, a lost response, refusals."""
    store = generate_store(StoreSpec(seed=41, orders=150, tricky_share=0.2, days=15))
    sandbox = create_magento_app(store, token=TOKEN)
    exchanges: list[Exchange] = []
    with serve_in_thread(sandbox) as server, recording_client(server.url, exchanges) as client:
        client.ping()
        page = client.changed_orders(None, None, 60)
        while page.cursor:
            page = client.changed_orders(None, page.cursor, 60)
        assert page.high_water is not None
        client.changed_orders(page.high_water, None, 60)
        list(client.catalog_pages())
        list(client.catalog_pages(max(v.updated_at for v in store.variants)))
        open_orders = [o for o in store.orders if o.lifecycle is Lifecycle.OPEN and not o.reason
                       and sandbox.render(o)["state"] == "processing" and len(o.lines) >= 2]
        first, second = (str(sandbox.render(o)["entity_id"]) for o in open_orders[:2])
        sku = client.order(first)["items"][0]["sku"]
        sandbox.lose_write_responses(1)
        client.ship(first, {sku: 1}, [Track("1Z999AA10123456784", "ups", "UPS")], "label:1")
        client.refund(second, {}, Decimal("3.00"), "goodwill", "refund:1")
        client.add_comment(second, "Held for a person", "hold:1")
        client.set_stock([StockLevel(store.variants[0].sku, 4), StockLevel("NO-SUCH-SKU", 1)], "stock:1")
        for bad in ({"token": "wrong"}, {"store": "nosuch"}):
            with recording_client(server.url, exchanges, **bad) as refused, pytest.raises(UpstreamError):
                refused.ping()
    assert sum(not e.answered() for e in exchanges) == 1, "one answer was lost"
    yield Recorded(sandbox, exchanges)


# ------------------------------------------------------------------------- requests


def test_every_request_is_an_operation_of_the_schema(spec: Swagger, recorded: Recorded) -> None:
    assert len(recorded.exchanges) > 20
    for exchange in recorded.exchanges:
        request = exchange.request
        operation = spec.operation(request.method, request.url)
        assert operation is not None, f"{request.method} {request.url.path} is not in the schema"
        parameters = {p["name"]: p for p in operation.get("parameters", [])}
        for name, value in request.url.params.multi_items():
            known = parameters.get(_INDEX.sub("[0]", name))
            assert known is not None and known["in"] == "query", f"{request.url.path}: unknown parameter {name}"
            if known.get("type") == "integer":
                assert value.isdigit(), (name, value)
        body = next((p for p in parameters.values() if p["in"] == "body"), None)
        if request.method == "POST":
            assert body is not None
            assert spec.violations(body["schema"], json.loads(request.content)) == [], request.url.path
        else:
            assert not request.content


def test_the_client_uses_both_order_keys_and_pages_products_by_number(recorded: Recorded) -> None:
    searches = [e.request.url.params for e in recorded.exchanges if e.request.url.path.endswith("/V1/orders")]
    assert any("searchCriteria[filterGroups][1][filters][1][field]" in p for p in searches), "keyset pages"
    assert all(p["searchCriteria[currentPage]"] == "1" for p in searches)
    products = [e.request.url.params["searchCriteria[currentPage]"] for e in recorded.exchanges
                if e.request.url.path.endswith("/V1/products")]
    assert "2" in products


# ------------------------------------------------------------------------ responses


def _deviation(path: str, message: str, body: Any, malformed: set[int]) -> bool:
    """True for the known deviations the module docstring lists, and only those."""
    if message.endswith("expected number, got str"):
        order = body
        if path.startswith("$.items["):
            order = body["items"][int(path[len("$.items["):path.index("]")])]
        return isinstance(order, dict) and order.get("entity_id") in malformed
    return path == "$.parameters" and message == "expected a list" and isinstance(body.get("parameters"), dict)


def test_every_response_matches_the_schema(spec: Swagger, recorded: Recorded) -> None:
    malformed = {int(k) for k, v in recorded.sandbox.expected_reasons().items() if v == "malformed"}
    statuses = set()
    for exchange in recorded.exchanges:
        request, response = exchange.request, exchange.response
        if response is None or not exchange.answered():
            continue  # the lost response: nothing arrived to judge
        operation = spec.operation(request.method, request.url)
        assert operation is not None
        statuses.add(response.status_code)
        declared = operation["responses"].get(str(response.status_code)) or operation["responses"]["default"]
        body = response.json()
        if request.method == "POST" and request.url.path.endswith("/inventory/source-items") \
                and response.status_code == 200:
            assert "200" not in operation["responses"] and body == []
            continue
        found = spec.violations(declared["schema"], body)
        unexpected = [v for v in found if not _deviation(*v.split(": ", 1), body, malformed)]
        assert unexpected == [], f"{request.method} {request.url.path}: {unexpected[:5]}"
    assert {200, 401, 404} <= statuses


def test_every_order_and_document_the_sandbox_renders_matches_the_schema(spec: Swagger, recorded: Recorded) -> None:
    sandbox = recorded.sandbox
    malformed = {int(k) for k, v in sandbox.expected_reasons().items() if v == "malformed"}
    assert malformed
    order_schema = {"$ref": "#/definitions/sales-data-order-interface"}
    for order in sandbox.store.orders:
        payload = sandbox.render(order)
        found = spec.violations(order_schema, payload)
        assert all(_deviation(*v.split(": ", 1), payload, malformed) for v in found), found[:5]
        assert bool(found) == (payload["entity_id"] in malformed and any(
            isinstance(payload.get(k), str) for k in ("grand_total", "shipping_amount", "tax_amount"))
            or any(isinstance(i.get("price"), str) for i in payload["items"]))
    for name, documents in [("sales-data-shipment-interface", sandbox.documents.shipments),
                            ("sales-data-creditmemo-interface", sandbox.documents.creditmemos)]:
        assert documents
        for document in documents:
            assert spec.violations({"$ref": f"#/definitions/{name}"}, document) == []


def test_the_validator_catches_what_it_should(spec: Swagger) -> None:
    schema = {"$ref": "#/definitions/sales-data-shipment-track-creation-interface"}
    assert spec.violations(schema, {"track_number": "1", "title": "UPS", "carrier_code": "ups"}) == []
    assert spec.violations(schema, {"track_number": 1, "title": "UPS", "carrier_code": "ups", "x": 1}) == [
        "$.track_number: expected string, got int", "$.x: not in the schema"]
    assert spec.violations(schema, {"title": "UPS", "carrier_code": None}) == ["$.track_number: required"]
