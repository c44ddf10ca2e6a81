"""The Shopify sandbox's SDL is a faithful subset of the real Admin API 2026-10 schema."""

from __future__ import annotations

import gzip
import json

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    build_client_schema,
    build_schema,
    parse,
    validate,
)

from integrations.sandbox.shopify import SCHEMA_PATH, load_schema
from integrations.sandbox.store import COUNTRY_CODES, RETIRED_CURRENCIES
from integrations.shopify.queries import ALL_DOCUMENTS
from tests.shared_specs import shared_file

REAL_SCHEMA = shared_file("specs", "shopify", "admin_2026-10.json.gz")
needs_real = pytest.mark.skipif(
    not REAL_SCHEMA.exists(), reason=f"Shopify's introspection result is not at {REAL_SCHEMA}"
)


@pytest.fixture(scope="module")
def sandbox() -> GraphQLSchema:
    return load_schema()


@pytest.fixture(scope="module")
def real() -> GraphQLSchema:
    with gzip.open(REAL_SCHEMA) as fh:
        schema = build_client_schema(json.load(fh)["data"])
    # Shopify's schema trips graphql-core's strict deprecation checks; it is Shopify's own.
    schema._validation_errors = []
    return schema


def differences(ours: GraphQLSchema, real: GraphQLSchema) -> list[str]:
    """Everything in `ours` that is not in `real` exactly as declared there."""
    found: list[str] = []
    for name, ours_type in ours.type_map.items():
        if name.startswith("__"):
            continue
        theirs = real.type_map.get(name)
        if theirs is None:
            found.append(f"type {name} is not real")
            continue
        if type(ours_type) is not type(theirs):
            found.append(f"{name} is a {type(ours_type).__name__}, upstream a {type(theirs).__name__}")
            continue
        if isinstance(ours_type, GraphQLEnumType):
            found += [f"{name}.{v} is not real" for v in sorted(set(ours_type.values) - set(theirs.values))]
        if not isinstance(ours_type, GraphQLObjectType | GraphQLInterfaceType):
            continue
        real_interfaces = {i.name for i in theirs.interfaces}
        for interface in ours_type.interfaces:
            if interface.name not in real_interfaces:
                found.append(f"{name} does not implement {interface.name} upstream")
        for field_name, field in ours_type.fields.items():
            real_field = theirs.fields.get(field_name)
            if real_field is None:
                found.append(f"{name}.{field_name} is not real")
                continue
            if str(field.type) != str(real_field.type):
                found.append(f"{name}.{field_name}: {field.type}, upstream {real_field.type}")
            for arg_name, arg in field.args.items():
                real_arg = real_field.args.get(arg_name)
                if real_arg is None or str(arg.type) != str(real_arg.type):
                    found.append(f"{name}.{field_name}({arg_name}: {arg.type}) differs upstream")
    return found


def test_the_sdl_ships_inside_the_package():
    assert SCHEMA_PATH.is_file()
    assert "integrations" in SCHEMA_PATH.parts


def test_the_sandbox_schema_is_rooted_like_shopify(sandbox):
    assert sandbox.query_type.name == "QueryRoot"
    assert sandbox.mutation_type.name == "Mutation"


@needs_real
def test_the_sandbox_schema_is_a_faithful_subset(sandbox, real):
    assert differences(sandbox, real) == []
    fields = sum(len(t.fields) for t in sandbox.type_map.values() if isinstance(t, GraphQLObjectType))
    assert fields > 80


@needs_real
def test_the_faithfulness_check_catches_each_kind_of_drift(real):
    drifted = build_schema(
        """
        type QueryRoot { shop: Shop! order(id: String!): Order }
        type Shop implements Thing { id: ID! name: String! planName: String }
        type Order { closed: Boolean }
        interface Thing { id: ID! }
        enum CurrencyCode { USD XYZ }
        input MoneyV2 { amount: String }
        scalar Decimal
        schema { query: QueryRoot }
        """
    )
    found = differences(drifted, real)
    assert "Shop.planName is not real" in found
    assert "QueryRoot.order(id: String!) differs upstream" in found
    assert "Order.closed: Boolean, upstream Boolean!" in found
    assert "type Thing is not real" in found
    assert "Shop does not implement Thing upstream" in found
    assert "CurrencyCode.XYZ is not real" in found
    assert "MoneyV2 is a GraphQLInputObjectType, upstream a GraphQLObjectType" in found


@pytest.mark.parametrize("name", sorted(ALL_DOCUMENTS))
def test_every_client_document_validates_against_the_sandbox(sandbox, name):
    errors = validate(sandbox, parse(ALL_DOCUMENTS[name]))
    assert not errors, [e.message for e in errors]


@needs_real
@pytest.mark.parametrize("name", sorted(ALL_DOCUMENTS))
def test_every_client_document_validates_against_shopify(real, name):
    errors = validate(real, parse(ALL_DOCUMENTS[name]))
    assert not errors, [e.message for e in errors]


def test_every_currency_and_country_the_store_emits_is_in_the_sdl(sandbox):
    assert set(RETIRED_CURRENCIES) <= set(sandbox.type_map["CurrencyCode"].values)
    assert set(COUNTRY_CODES) <= set(sandbox.type_map["CountryCode"].values)
