"""A local server speaking Shopify's Admin GraphQL wire protocol over the seeded store.

`POST /admin/api/{version}/graphql.json` executes queries with graphql-core against the
shipped SDL subset, with Shopify's token auth, query costs, leaky-bucket throttling and
bulk operations. Control endpoints under `/sandbox/` (never faulted, no auth) let tests
and the demo inspect it, change fault rates, and edit or add orders between runs.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    build_schema,
    execute_sync,
    get_operation_ast,
    parse,
    validate,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from integrations.sandbox.control import SandboxControl
from integrations.sandbox.faults import FaultInjector, Faults
from integrations.sandbox.shopify.bulk import BulkRunner
from integrations.sandbox.shopify.cost import MAX_QUERY_COST, CostModel, LeakyBucket
from integrations.sandbox.shopify.render import (
    Renderer,
    check_page_size,
    connection,
    encode_cursor,
    gid,
    parse_gid,
)
from integrations.sandbox.shopify.search import find_orders, find_variants, parse_search
from integrations.sandbox.shopify.returns import ShopifyReturns
from integrations.sandbox.shopify.writes import ShopifyWrites
from integrations.sandbox.store import Store

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "shopify_schema.graphql"
DEFAULT_TOKEN = "shpat_sandbox"
DEFAULT_API_VERSION = "2026-10"
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
RATE_LIMITS_DOC = "https://shopify.dev/docs/api/usage/limits#rate-limits"
_MAX_COST_MESSAGE = (
    "Query cost is {cost}, which exceeds the single query max cost limit ({limit}).\n\n"
    "See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\n"
    "cost of a query is calculated.\n\n"
    "To query larger amounts of data with fewer limits, bulk operations should be used instead.\n"
    "See https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n"
)
_PREPARED_LIMIT = 256


@cache
def load_schema() -> GraphQLSchema:
    """The sandbox's SDL subset of Shopify's Admin API, shipped beside this package."""
    return build_schema(SCHEMA_PATH.read_text(encoding="utf-8"))


class ShopifySandbox(SandboxControl):
    """The Shopify sandbox: an ASGI app with handles on its store, faults, bucket and bulk runs."""

    _control_errors = (ValueError, TypeError, GraphQLError)  # GraphQLError: an edit's id is no gid

    def __init__(self, store: Store, token: str = DEFAULT_TOKEN, api_version: str = DEFAULT_API_VERSION,
                 faults: Faults | None = None, restore_rate: float = 100.0, max_available: float = 2000.0):
        self.store = store
        self.token = token
        self.api_version = api_version
        self.faults = faults or Faults()
        self.schema = load_schema()
        if store.currency not in self.schema.type_map["CurrencyCode"].values:
            raise ValueError(f"the sandbox's CurrencyCode enum lacks the store currency {store.currency}")
        self.bucket = LeakyBucket(max_available, restore_rate)
        self.renderer = Renderer(store)
        self.files = Path(tempfile.mkdtemp(prefix="clerk-shopify-sandbox-"))
        # Exports can be hundreds of MB: removed on close(), or at exit if close() never came.
        self._remove_files = weakref.finalize(self, shutil.rmtree, self.files, ignore_errors=True)
        self.bulk = BulkRunner(self.schema, store, self.renderer, self.files)
        self._counts: Counter[str] = Counter()
        self._prepared: dict[str, tuple[DocumentNode | None, list[GraphQLError]]] = {}
        self._root = {
            "orders": self._orders, "order": self._order, "productVariants": self._variants,
            "shop": lambda _info: self.renderer.shop, "bulkOperation": self._bulk_operation,
            "currentBulkOperation": self._current_bulk_operation,
            "bulkOperationRunQuery": self._bulk_run,
        }
        self.write_backs = ShopifyWrites(store, self.renderer)  # see writes.py
        self.returns = ShopifyReturns(store, self.renderer)  # see returns.py
        self._root |= self.write_backs.resolvers()
        routes = [
            Route("/admin/api/{version}/graphql.json", self._graphql, methods=["POST"]),
            Route("/sandbox-files/bulk/{number:int}.jsonl", self._bulk_file, methods=["GET"]),
            *self.control_routes(with_csv=True),
        ]
        self.app = Starlette(routes=routes)
        self._asgi = self.write_backs.losing(FaultInjector(self.app, self.faults, self._throttled_by_fault))

    # -- the Python face of the control endpoints -------------------------------------------

    @property
    def stats(self) -> dict[str, Any]:
        """Requests seen (control endpoints aside), what they cost us, and faults injected."""
        return {
            "requests": self._counts["requests"], "graphql": self._counts["graphql"],
            "throttled": self._counts["throttled"], "max_cost_exceeded": self._counts["max_cost_exceeded"],
            "faults": dict(self.faults.injected), "bulk_operations": len(self.bulk.operations),
            "orders": len(self.store.orders),
        }

    def _wire_id(self, order_id: int) -> str:
        return gid("Order", order_id)

    def _store_id(self, wire_id: str) -> int | None:
        return parse_gid(wire_id, "Order")

    def close(self) -> None:
        """Waits for a running bulk export and removes the exported files."""
        self.bulk.wait(timeout=30)
        self._remove_files()

    # -- HTTP ---------------------------------------------------------------------------------

    async def _bulk_file(self, request: Request) -> Response:
        operation = self.bulk.operations.get(request.path_params["number"])
        if operation is None or operation.status not in ("COMPLETED", "FAILED") or not operation.path.exists():
            return PlainTextResponse("Not Found", status_code=404)
        return FileResponse(operation.path, media_type="application/jsonl")

    def _prepare(self, query: str) -> tuple[DocumentNode | None, list[GraphQLError]]:
        """Parses and validates a document once; clients send the same few again and again."""
        prepared = self._prepared.get(query)
        if prepared is None:
            try:
                document = parse(query)
                prepared = document, validate(self.schema, document)
            except GraphQLError as exc:
                prepared = None, [exc]
            if len(self._prepared) >= _PREPARED_LIMIT:
                self._prepared.clear()
            self._prepared[query] = prepared
        return prepared

    def _throttled(self, requested: int | None) -> JSONResponse:
        self._counts["throttled"] += 1
        return JSONResponse({
            "errors": [{"message": "Throttled",
                        "extensions": {"code": "THROTTLED", "documentation": RATE_LIMITS_DOC}}],
            "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": None,
                                    "throttleStatus": self.bucket.status()}},
        })

    async def _throttled_by_fault(self, request: Request) -> Response:
        """A THROTTLED answer drawn by the fault injector, shaped like a real one."""
        requested = None
        try:
            body = await request.json()
            document, errors = self._prepare(body["query"])
            operation = get_operation_ast(document, body.get("operationName")) if document else None
            if operation is not None and not errors:
                requested = self._cost_model(document, body.get("variables") or {}).requested(operation)
        except (ValueError, KeyError, TypeError, GraphQLError):
            requested = None  # an unreadable body still gets a well-formed THROTTLED answer
        return self._throttled(requested)

    def _cost_model(self, document: DocumentNode, variables: dict[str, Any]) -> CostModel:
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        return CostModel(self.schema, fragments, variables)

    async def _graphql(self, request: Request) -> Response:
        if request.path_params["version"] != self.api_version:
            return JSONResponse({"errors": "Not Found"}, status_code=404)
        if request.headers.get("x-shopify-access-token") != self.token:
            return JSONResponse({"errors": INVALID_TOKEN}, status_code=401)
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("query"), str) \
                or not isinstance(body.get("variables") or {}, dict):
            return JSONResponse({"errors": {"query": "Required parameter missing or invalid"}}, status_code=400)
        self._counts["graphql"] += 1
        document, errors = self._prepare(body["query"])
        if errors:
            return JSONResponse({"errors": [e.formatted for e in errors]})
        variables = body.get("variables") or {}
        operation = get_operation_ast(document, body.get("operationName"))
        if operation is None:
            return JSONResponse({"errors": [{"message": "An operation name is required"}]})
        costs = self._cost_model(document, variables)
        try:
            requested = costs.requested(operation)
        except GraphQLError as exc:
            return JSONResponse({"errors": [exc.formatted]})
        if requested > MAX_QUERY_COST:
            self._counts["max_cost_exceeded"] += 1
            return JSONResponse({"errors": [{
                "message": _MAX_COST_MESSAGE.format(cost=requested, limit=MAX_QUERY_COST),
                "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST,
                               "documentation": RATE_LIMITS_DOC}}]})
        if not self.bucket.take(requested):
            return self._throttled(requested)
        context = {"base_url": str(request.base_url).rstrip("/"), "search": []}
        with self.store.lock:  # a page is rendered from one consistent state of the store
            result = execute_sync(self.schema, document, root_value=self._root, context_value=context,
                                  variable_values=variables, operation_name=body.get("operationName"))
        actual = costs.actual(operation, result.data)
        self.bucket.give_back(requested - actual)
        answer: dict[str, Any] = {}
        if result.errors:
            answer["errors"] = [e.formatted for e in result.errors]
        answer["data"] = result.data
        extensions: dict[str, Any] = {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                                               "throttleStatus": self.bucket.status()}}
        if context["search"]:
            extensions["search"] = context["search"]
        answer["extensions"] = extensions
        return JSONResponse(answer)

    # -- resolvers ----------------------------------------------------------------------------

    @staticmethod
    def _warn(info: Any, query: str | None, warnings: list[dict[str, str]]) -> None:
        if warnings:
            info.context["search"].append({"path": list(info.path.as_list()), "query": query,
                                           "warnings": warnings})

    def _orders(self, info: Any, first: int | None = None, after: str | None = None, query: str | None = None,
                sortKey: str | None = None, reverse: bool | None = False) -> dict[str, Any]:
        size = check_page_size(first)
        search = parse_search(query)
        found, cursors, more = find_orders(self.store, search, sortKey or "ID", bool(reverse), after, size,
                                           self.returns.search_fields())
        self._warn(info, query, search.warnings)
        return connection([self.renderer.order(o) for o in found], cursors, more, after is not None)

    def _order(self, _info: Any, id: str) -> Any:
        number = parse_gid(id, "Order")
        order = self.store.order(number) if number is not None else None
        return self.renderer.order(order) if order else None

    def _variants(self, info: Any, first: int | None = None, after: str | None = None, query: str | None = None,
                  sortKey: str | None = None, reverse: bool | None = False) -> dict[str, Any]:
        size = check_page_size(first)
        search = parse_search(query)
        sort = sortKey or "ID"
        found, more = find_variants(self.store.variants, search, sort, bool(reverse), after, size)
        self._warn(info, query, search.warnings)
        cursors = [encode_cursor(v.id if sort == "ID" else v.sku, v.id) for v in found]
        return connection([self.renderer.variant(v) for v in found], cursors, more, after is not None)

    def _bulk_operation(self, info: Any, id: str) -> dict[str, Any] | None:
        number = parse_gid(id, "BulkOperation")
        operation = self.bulk.operations.get(number) if number is not None else None
        return operation.view(info.context["base_url"]) if operation else None

    def _current_bulk_operation(self, info: Any, type: str | None = None) -> dict[str, Any] | None:
        operation = self.bulk.current()
        return operation.view(info.context["base_url"]) if operation else None

    def _bulk_run(self, info: Any, query: str, groupObjects: bool) -> dict[str, Any]:
        created, user_errors = self.bulk.start(query, groupObjects, info.context["base_url"])
        return {"bulkOperation": created, "userErrors": user_errors}


def create_shopify_app(store: Store, token: str = DEFAULT_TOKEN, api_version: str = DEFAULT_API_VERSION,
                       faults: Faults | None = None, restore_rate: float = 100.0,
                       max_available: float = 2000.0) -> ShopifySandbox:
    """A Shopify sandbox over `store`, wrapped in fault injection; serve it with `serve_in_thread`."""
    return ShopifySandbox(store, token, api_version, faults, restore_rate, max_available)
