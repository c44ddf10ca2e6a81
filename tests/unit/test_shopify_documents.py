"""Every GraphQL document the Shopify client sends is valid against the real 2026-10 schema
and stays under Shopify's 1,000-point ceiling for one query."""

from __future__ import annotations

import gzip
import json
from functools import cache

import graphql
import pytest

from integrations.shopify import queries
from integrations.shopify.mapping import requested_cost
from tests.shared_specs import shared_file

SCHEMA_FILE = shared_file("specs", "shopify", "admin_2026-10.json.gz")

# The variables the client sends with each document's page size.
PAGE_VARIABLES = {
    "OrdersPage": {"first": queries.ORDERS_PER_PAGE},
    "VariantsPage": {"first": queries.VARIANTS_PER_PAGE},
}


@cache
def schema() -> graphql.GraphQLSchema:
    if not SCHEMA_FILE.exists():
        pytest.skip(f"Shopify schema not found at {SCHEMA_FILE}")
    with gzip.open(SCHEMA_FILE, "rt") as handle:
        built = graphql.build_client_schema(json.load(handle)["data"])
    # Shopify's schema trips graphql-core's strict check on deprecated arguments.
    built._validation_errors = []
    return built


@pytest.mark.parametrize("name", sorted(queries.ALL_DOCUMENTS))
def test_document_is_valid_against_the_admin_schema(name: str) -> None:
    errors = graphql.validate(schema(), graphql.parse(queries.ALL_DOCUMENTS[name]))
    assert [error.message for error in errors] == []


def _is_operation(text: str) -> bool:
    try:
        return any(isinstance(d, graphql.OperationDefinitionNode) for d in graphql.parse(text).definitions)
    except graphql.GraphQLError:
        return False


def test_every_document_constant_is_listed() -> None:
    documents = {
        value
        for key, value in vars(queries).items()
        if key.isupper() and not key.startswith("_") and isinstance(value, str) and _is_operation(value)
    }
    assert documents == set(queries.ALL_DOCUMENTS.values())


def test_bulk_run_sends_the_bulk_query_ungrouped() -> None:
    mutation = graphql.parse(queries.BULK_RUN)
    assert not graphql.validate(schema(), mutation)
    arguments = {a.name.value: a.value for a in mutation.definitions[0].selection_set.selections[0].arguments}
    assert graphql.print_ast(arguments["groupObjects"]) == "false"
    # The query string the client passes as $query must itself be a valid query.
    assert not graphql.validate(schema(), graphql.parse(queries.BULK_ORDERS_QUERY))


def test_bulk_query_pages_without_first() -> None:
    # Bulk queries reject connection sizes; every connection must come whole.
    sizes = []

    class Sizes(graphql.Visitor):
        def enter_argument(self, node: graphql.ArgumentNode, *_: object) -> None:
            if node.name.value in ("first", "last"):
                sizes.append(node)

    graphql.visit(graphql.parse(queries.BULK_ORDERS_QUERY), Sizes())
    assert sizes == []
    graphql.visit(graphql.parse(queries.ORDERS_PAGE), Sizes())
    assert sizes, "the visitor finds page sizes where there are some"


@pytest.mark.parametrize("name", sorted(set(queries.ALL_DOCUMENTS) - {"BulkOrdersQuery"}))
def test_requested_cost_is_under_the_single_query_ceiling(name: str) -> None:
    cost = requested_cost(queries.ALL_DOCUMENTS[name], PAGE_VARIABLES.get(name, {}))
    assert 0 < cost <= 1000


def test_requested_cost_counts_connections_objects_and_mutations() -> None:
    # 2 + 10 x (node 1 + money set 1 + shopMoney 1) + pageInfo 1
    document = "{ orders(first: 10) { pageInfo { hasNextPage } nodes { id totalPriceSet { shopMoney { amount } } } } }"
    assert requested_cost(document) == 33
    assert requested_cost("query Q($n: Int!) { orders(first: $n) { edges { cursor node { id } } } }", {"n": 5}) == 7
    # Nested connections multiply.
    assert requested_cost("{ orders(first: 2) { nodes { lineItems(first: 3) { nodes { id } } } } }") == 2 + 2 * (1 + 2 + 3)
    assert requested_cost("mutation { tagsAdd(id: \"x\", tags: []) { userErrors { message } } }") == 11
    assert requested_cost(queries.ORDERS_PAGE, {"first": 10}) == 953


@pytest.mark.parametrize("name", ["SetStock", "CreateRefund"])
def test_writes_shopify_dedupes_carry_its_idempotency_directive(name: str) -> None:
    # Required on these mutations since 2026-04; the key comes from Clerk's side-effect ledger.
    document = graphql.parse(queries.ALL_DOCUMENTS[name])
    (field,) = document.definitions[0].selection_set.selections
    (directive,) = field.directives
    assert directive.name.value == "idempotent"
    assert graphql.print_ast(directive.arguments[0].value) == "$key"
    assert not graphql.validate(schema(), document)


def test_stock_is_set_without_the_retired_compare_flag() -> None:
    # 2026-10 dropped `ignoreCompareQuantity`: `changeFromQuantity: null` (sent by the client) skips the check.
    fields = schema().type_map["InventorySetQuantitiesInput"].fields
    assert "ignoreCompareQuantity" not in fields
    assert "changeFromQuantity" in schema().type_map["InventoryQuantityInput"].fields
