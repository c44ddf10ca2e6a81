"""Stripe's own OpenAPI spec (API version 2023-08-16) as the judge of both sides.

The client is driven against the sandbox over loopback (payments read, refunds made, listed
page by page, followed to success and failure) and Stripe's refusals are provoked by hand;
every answer must match the spec's response schema for its operation (`200`, else the
`default` error schema), and every request the client sends must name a path, query
parameters and form fields the spec has. A small OpenAPI 3.0 validator does the judging:
`$ref`, `anyOf`/`oneOf`, `nullable`, `enum`, `maxLength`, required properties, types, and
(stricter than the spec) no property the schema does not name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from domain.orders import Lifecycle
from integrations.protocols import RefundRefused, RefundState
from integrations.sandbox.faults import Faults
from integrations.sandbox.server import serve_in_thread
from integrations.sandbox.store import StoreSpec, generate_store, payment_gateway
from integrations.sandbox.stripe import StripeSandbox, create_stripe_app, payment_intent_id
from integrations.stripe import StripeClient, mapping
from tests.shared_specs import shared_file

SPEC = shared_file("specs", "stripe", "spec3-2023-09-12.json")
pytestmark = pytest.mark.skipif(not SPEC.exists(), reason=f"Stripe's spec is not at {SPEC}")

KEY = "sk_test_schema"
CH = "ch_3NirD82eZvKYlo2C0bAreCh9"
_INDEX = re.compile(r"\[[^\]]*\]$")


class OpenApi:
    """Operations and component schemas of an OpenAPI 3.0 document, and a validator for them."""

    def __init__(self, document: dict[str, Any]):
        self.schemas: dict[str, Any] = document["components"]["schemas"]
        self.operations: list[tuple[re.Pattern[str], str, dict[str, Any]]] = []
        for template, methods in document["paths"].items():
            pattern = re.compile(re.sub(r"\\\{\w+\\\}", r"[^/]+", re.escape(template)))
            for method, operation in methods.items():
                self.operations.append((pattern, method.upper(), operation))

    def operation(self, method: str, path: str) -> dict[str, Any]:
        found = next((op for pattern, verb, op in self.operations if verb == method and pattern.fullmatch(path)), None)
        assert found is not None, f"the spec has no {method} {path}"
        return found

    def response_schema(self, operation: dict[str, Any], status: int) -> dict[str, Any]:
        answer = operation["responses"].get(str(status)) or operation["responses"]["default"]
        return answer["content"]["application/json"]["schema"]

    def violations(self, schema: dict[str, Any], value: Any, where: str = "$") -> list[str]:
        if "$ref" in schema:
            schema = self.schemas[schema["$ref"].rsplit("/", 1)[-1]]
        if value is None:
            return [] if schema.get("nullable") else [f"{where}: null though not nullable"]
        for combined in ("anyOf", "oneOf"):
            if combined in schema:
                if any(not self.violations(option, value, where) for option in schema[combined]):
                    return []
                return [f"{where}: matches none of its {combined}"]
        if "enum" in schema and value not in schema["enum"]:
            return [f"{where}: {value!r} is not one of {schema['enum']}"]
        kind = schema.get("type", "object" if "properties" in schema else None)
        if kind == "object":
            if not isinstance(value, dict):
                return [f"{where}: expected an object"]
            properties, extra = schema.get("properties", {}), schema.get("additionalProperties")
            found = [f"{where}.{name}: required" for name in schema.get("required", []) if name not in value]
            for name, item in value.items():
                if name in properties:
                    found += self.violations(properties[name], item, f"{where}.{name}")
                elif isinstance(extra, dict):
                    found += self.violations(extra, item, f"{where}.{name}")
                else:
                    found.append(f"{where}.{name}: not in the schema")
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
        if kind == "string" and len(value) > schema.get("maxLength", len(value)):
            return [f"{where}: longer than {schema['maxLength']}"]
        return []


@pytest.fixture(scope="module")
def spec() -> OpenApi:
    return OpenApi(json.loads(SPEC.read_bytes()))


@dataclass
class Exchange:
    request: httpx.Request
    response: httpx.Response


@dataclass
class Recorded:
    sandbox: StripeSandbox
    exchanges: list[Exchange]
    refused: list[str]  # the RefundRefused codes the client raised


def recording(exchanges: list[Exchange]) -> httpx.Client:
    """A connection that keeps every request and its whole answer."""

    def keep(response: httpx.Response) -> None:
        response.read()
        exchanges.append(Exchange(response.request, response))

    return httpx.Client(event_hooks={"response": [keep]})


@pytest.fixture(scope="module")
def recorded() -> Iterator[Recorded]:
    """Everything the client does, once, and the refusals Stripe gives, asked by hand."""
    store = generate_store(StoreSpec(seed=5, orders=30, tricky_share=0.0))
    sandbox = create_stripe_app(store, api_key=KEY, faults=Faults(seed=1))
    sandbox.add_payment(CH, Decimal("5000"), "JPY")
    pi = next(iter(sandbox.payment_intents))
    sandbox.fail_refunds(CH)
    exchanges: list[Exchange] = []
    refused: list[str] = []
    with serve_in_thread(sandbox) as server, recording(exchanges) as http:
        url = server.url
        client = StripeClient(KEY, url, http=http, sleep=lambda _s: None)
        client.payment(pi)
        client.payment(CH)
        made = [client.refund(pi, Decimal("1.00"), "USD", f"refund:{n}", "requested_by_customer") for n in range(3)]
        failing = client.refund(CH, Decimal("100"), "JPY", "refund:yen", "damaged")
        client.find_refund(pi, "refund:0")
        for refund in (made[0], failing):
            while client.refund_status(refund.reference).state is RefundState.PENDING:
                pass
        for code_wanted, call in [
            ("idempotency_error", lambda: client.refund(CH, Decimal("1"), "JPY", "refund:0")),
            ("charge_disputed", lambda: (sandbox.dispute(CH), client.refund(CH, Decimal("1"), "JPY", "refund:x"))),
        ]:
            with pytest.raises(RefundRefused) as caught:
                call()
            refused.append(caught.value.code)
            assert caught.value.code == code_wanted
        auth = {"Authorization": f"Bearer {KEY}"}
        http.get(f"{url}/v1/payment_intents/{pi}", headers=auth)  # latest_charge as an id
        http.get(f"{url}/v1/refunds", headers=auth, params={"limit": "2"})
        http.post(f"{url}/v1/refunds", headers=auth, data={"payment_intent": pi, "amount": "999999"})
        http.post(f"{url}/v1/refunds", headers=auth, data={"payment_intent": pi, "colour": "red"})
        http.get(f"{url}/v1/refunds/re_missing", headers=auth)
        http.get(f"{url}/v1/charges/{CH}", headers={"Authorization": "Bearer sk_test_wrong"})
        http.get(f"{url}/v1/charges/{CH}")
        sandbox.set_faults(throttle_rate=1.0)
        http.get(f"{url}/v1/charges/{CH}", headers=auth)
        sandbox.set_faults(throttle_rate=0.0)
        # A store order refunded in full, then once more: charge_already_refunded.
        paid = payment_intent_id(next(o.id for o in reversed(store.orders)
                                      if o.lifecycle is not Lifecycle.CANCELLED and payment_gateway(o.id) == "stripe"))
        http.post(f"{url}/v1/refunds", headers=auth, data={"payment_intent": paid})
        http.post(f"{url}/v1/refunds", headers=auth, data={"payment_intent": paid, "amount": "1"})
    yield Recorded(sandbox, exchanges, refused)


def route(request: httpx.Request) -> str:
    return request.url.path


def test_every_answer_matches_the_spec(spec: OpenApi, recorded: Recorded) -> None:
    problems = []
    for exchange in recorded.exchanges:
        request, response = exchange.request, exchange.response
        schema = spec.response_schema(spec.operation(request.method, route(request)), response.status_code)
        for problem in spec.violations(schema, response.json()):
            problems.append(f"{request.method} {route(request)} -> {response.status_code}: {problem}")
    assert problems == []


def test_every_kind_of_answer_was_judged(recorded: Recorded) -> None:
    """The exchanges cover what the sandbox serves, so a missing field anywhere is caught."""
    seen = {(e.request.method, re.sub(r"/(pi|ch|re)_\w+$", r"/{id}", route(e.request)), e.response.status_code)
            for e in recorded.exchanges}
    assert seen >= {("GET", "/v1/payment_intents/{id}", 200), ("GET", "/v1/charges/{id}", 200),
                    ("POST", "/v1/refunds", 200), ("GET", "/v1/refunds", 200), ("GET", "/v1/refunds/{id}", 200),
                    ("POST", "/v1/refunds", 400), ("GET", "/v1/refunds/{id}", 404), ("GET", "/v1/charges/{id}", 401),
                    ("GET", "/v1/charges/{id}", 429)}
    bodies = [e.response.json() for e in recorded.exchanges]
    statuses = {b.get("status") for b in bodies if b.get("object") == "refund"}
    assert statuses == {"pending", "succeeded", "failed"}
    codes = {b["error"].get("code") or b["error"]["type"] for b in bodies if "error" in b}
    assert codes >= {"amount_too_large", "parameter_unknown", "resource_missing", "idempotency_error",
                     "charge_disputed", "charge_already_refunded", "rate_limit"}
    expanded = [b for b in bodies if b.get("object") == "payment_intent"]
    assert {type(b["latest_charge"]) for b in expanded} == {dict, str}


def test_every_request_the_client_sends_is_one_the_spec_has(spec: OpenApi, recorded: Recorded) -> None:
    problems = []
    for exchange in recorded.exchanges:
        request = exchange.request
        if "idempotency-key" not in request.headers and request.method == "POST":
            continue  # asked by hand, not by the client
        operation = spec.operation(request.method, route(request))
        known = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        for name, _ in parse_qsl(request.url.query.decode()):
            if _INDEX.sub("", name) not in known:
                problems.append(f"{request.method} {route(request)}: query {name} not in the spec")
        if request.method == "POST":
            body = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["properties"]
            for name, _ in parse_qsl(request.content.decode()):
                if name.partition("[")[0] not in body:
                    problems.append(f"POST {route(request)}: field {name} not in the spec")
            assert request.headers["stripe-version"] == mapping.API_VERSION
    assert problems == []


def test_the_validator_catches_a_missing_or_mistyped_field(spec: OpenApi, recorded: Recorded) -> None:
    refund = next(e.response.json() for e in recorded.exchanges if e.response.json().get("object") == "refund")
    schema = {"$ref": "#/components/schemas/refund"}
    assert spec.violations(schema, refund) == []
    assert spec.violations(schema, {k: v for k, v in refund.items() if k != "currency"}) == ["$.currency: required"]
    assert spec.violations(schema, {**refund, "amount": "1.00"}) == ["$.amount: expected integer, got str"]
    assert spec.violations(schema, {**refund, "failure_reason": None}) == ["$.failure_reason: null though not nullable"]
    assert spec.violations(schema, {**refund, "object": "charge"}) != []
    assert spec.violations(schema, {**refund, "refunded_to": "card"}) == ["$.refunded_to: not in the schema"]
    for name in ("charge", "payment_intent"):
        full = next(e.response.json() for e in recorded.exchanges if e.response.json().get("object") == name)
        required = spec.schemas[name]["required"]
        for field in required:
            assert spec.violations({"$ref": f"#/components/schemas/{name}"},
                                   {k: v for k, v in full.items() if k != field}) == [f"$.{field}: required"]
