"""A local server speaking Magento 2's admin REST protocol over the seeded store.

`/rest/{store}/V1/...` (and `/rest/V1/...`, the default store view) serves orders,
shipments, credit memos, order comments, products, source items and store configs, with
Bearer-token auth, `searchCriteria` in both spellings, Magento's error shape, and its
quirk of answering a page past the end with the last page again. An unknown store code
is read as part of the route, as Magento does, so it answers "Request does not match any
route." Control endpoints under `/sandbox/` (never faulted, no auth) let tests and the
demo inspect it, change faults, lose the response of the next writes, and edit or add
orders between runs.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from integrations.sandbox.control import SandboxControl
from integrations.sandbox.faults import FaultInjector, Faults
from integrations.sandbox.magento.documents import Documents
from integrations.sandbox.magento.render import (
    Renderer,
    entity_id,
    pricing,
    state_and_status,
    store_order_id,
)
from integrations.sandbox.magento.search import (
    Column,
    Criteria,
    Refusal,
    check_fields,
    dict_columns,
    matches,
    page_bounds,
    parse_criteria,
    search,
    sort_rows,
)
from integrations.sandbox.store import ORDER_ID_BASE, Order, Store

DEFAULT_TOKEN = "magento_sandbox_token"
DEFAULT_STORE_CODE = "default"
NO_ROUTE = "Request does not match any route."
NOT_AUTHORIZED = "The consumer isn't authorized to access %resources."
NO_ENTITY = "The entity that was requested doesn't exist. Verify the entity and try again."
_LOSE = "clerk.sandbox.lose_response"

Handler = Callable[[Request, list[str]], Awaitable[Any]]


def _error(message: str, parameters: dict[str, str] | None = None, status: int = 400) -> JSONResponse:
    body: dict[str, Any] = {"message": message}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=status)


class MagentoSandbox(SandboxControl):
    """The Magento sandbox: an ASGI app with handles on its store, documents and faults."""

    def __init__(self, store: Store, token: str = DEFAULT_TOKEN, store_code: str = DEFAULT_STORE_CODE,
                 faults: Faults | None = None):
        self.store = store
        self.token = token
        self.store_code = store_code
        self.faults = faults or Faults()
        self.renderer = Renderer(store)
        self.documents = Documents(store, self.renderer)
        self.lost_responses = 0  # writes whose response will be lost after they are applied
        self._counts: Counter[str] = Counter()
        # (method, route under /V1, handler, ACL resource named in a 401, is a write)
        self._routes: list[tuple[str, re.Pattern[str], Handler, str, bool]] = [
            (method, re.compile(pattern), handler, resource, method == "POST")
            for method, pattern, handler, resource in (
                ("GET", r"/orders", self._orders, "Magento_Sales::actions_view"),
                ("GET", r"/orders/(\d+)", self._order, "Magento_Sales::actions_view"),
                ("GET", r"/orders/(\d+)/comments", self._comments, "Magento_Sales::actions_view"),
                ("POST", r"/orders/(\d+)/comments", self._add_comment, "Magento_Sales::comment"),
                ("POST", r"/order/(\d+)/ship", self._ship, "Magento_Sales::ship"),
                ("POST", r"/order/(\d+)/refund", self._refund, "Magento_Sales::creditmemo"),
                ("GET", r"/shipments", self._shipments, "Magento_Sales::shipment"),
                ("GET", r"/creditmemos", self._creditmemos, "Magento_Sales::sales_creditmemo"),
                ("GET", r"/products", self._products, "Magento_Catalog::products"),
                ("GET", r"/inventory/source-items", self._source_items, "Magento_InventoryApi::source"),
                ("POST", r"/inventory/source-items", self._save_source_items, "Magento_InventoryApi::source_edit"),
                ("GET", r"/store/storeConfigs", self._store_configs, "Magento_Backend::store"),
                ("GET", r"/store/storeViews", self._store_views, "Magento_Backend::store"),
            )
        ]
        self._order_columns: dict[str, Column] = {
            "entity_id": entity_id,
            "increment_id": lambda o: f"{o.number:09d}",
            "created_at": lambda o: o.created_at,
            "updated_at": lambda o: o.updated_at,
            "state": lambda o: state_and_status(o)[0],
            "status": lambda o: state_and_status(o)[1],
            "customer_email": lambda o: o.email,
            "customer_id": lambda o: o.customer.id if o.customer else None,
            "order_currency_code": lambda o: pricing(o, store.currency).currency,
        }
        routes = [
            Route("/rest/{path:path}", self._rest, methods=["GET", "POST", "PUT", "DELETE"]),
            *self.control_routes(with_csv=True),
            Route("/sandbox/writes", lambda _r: JSONResponse(self.writes), methods=["GET"]),
        ]
        self.app = Starlette(routes=routes)
        self._asgi = FaultInjector(self.app, self.faults, self._throttled)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/sandbox/"):
            await self._asgi(scope, receive, send)
            return
        self._counts["requests"] += 1

        async def maybe_lose(message: Message) -> None:
            if scope.get(_LOSE) and message["type"] == "http.response.start":
                # The write is applied; the client hears half an answer and a closed socket.
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")]})
                await send({"type": "http.response.body", "body": b"1", "more_body": True})
                raise ConnectionAbortedError("sandbox lost the response on purpose")
            await send(message)

        await self._asgi(scope, receive, maybe_lose)

    # -- the Python face of the control endpoints -------------------------------------------

    @property
    def stats(self) -> dict[str, Any]:
        """Requests seen (control endpoints aside), reads and writes applied, faults injected."""
        return {
            "requests": self._counts["requests"], "reads": self._counts["reads"],
            "writes": self._counts["writes"], "lost_responses": self._counts["lost"],
            "faults": dict(self.faults.injected), "orders": len(self.store.orders),
            "shipments": len(self.documents.shipments), "creditmemos": len(self.documents.creditmemos),
        }

    @property
    def writes(self) -> list[dict[str, Any]]:
        """Every write applied, in order: `kind` (shipment, creditmemo, comment, stock) and what it did."""
        return self.documents.writes

    def fault_rates(self) -> dict[str, float]:
        return super().fault_rates() | {"lose_write_responses": self.lost_responses}

    def set_faults(self, **rates: float) -> dict[str, float]:
        """Changes fault rates (`error_rate=1.0`, ...; `seed` reseeds; `lose_write_responses=N`
        loses the response of the next N writes after applying them); returns them all."""
        if "lose_write_responses" in rates:
            self.lose_write_responses(int(rates.pop("lose_write_responses")))
        return super().set_faults(**rates)

    def lose_write_responses(self, count: int = 1) -> None:
        """Applies the next `count` writes but drops their responses mid-body."""
        self.lost_responses = count

    def _wire_id(self, order_id: int) -> str:
        return str(order_id - ORDER_ID_BASE)  # the order's entity_id

    def _store_id(self, wire_id: str) -> int | None:
        return store_order_id(int(wire_id))

    def render(self, order: Order) -> dict[str, Any]:
        """An order as `GET /V1/orders/{id}` answers it."""
        return self.renderer.order(order, self.documents.moved, self.documents.history(order))

    # -- REST -------------------------------------------------------------------------------------

    @staticmethod
    async def _throttled(_request: Request) -> Response:
        """What a rate-limiting proxy in front of Magento answers (Magento itself has no limit)."""
        return JSONResponse({"message": "Too Many Requests"}, status_code=429, headers={"Retry-After": "1"})

    def _route(self, path: str) -> str | None:
        """The route under `/V1` for `/rest/{path}`, or None when the store code is unknown."""
        head, _, rest = path.partition("/")
        if head == "V1":
            return "/" + rest
        if head in (self.store_code, "all") and rest.startswith("V1/"):
            return rest[2:]
        return None  # Magento reads an unknown code as the route's first part: no route

    async def _rest(self, request: Request) -> Response:
        route = self._route(request.path_params["path"])
        found = None
        if route is not None:
            found = next(((handler, match.groups(), resource, write)
                          for method, pattern, handler, resource, write in self._routes
                          if method == request.method and (match := pattern.fullmatch(route))), None)
        if found is None:
            return _error(NO_ROUTE, status=404)
        handler, groups, resource, write = found
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(NOT_AUTHORIZED, {"resources": resource}, status=401)
        try:
            answer = await handler(request, list(groups))
        except Refusal as refusal:
            return _error(refusal.message, refusal.parameters, refusal.status)
        self._counts["writes" if write else "reads"] += 1
        if write and self.lost_responses > 0:
            self.lost_responses -= 1
            self._counts["lost"] += 1
            request.scope[_LOSE] = True
        return JSONResponse(answer)

    async def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise Refusal("Decoding error: \nSyntax error") from None
        if not isinstance(body, dict):
            raise Refusal("Decoding error: \nSyntax error")
        return body

    def _find(self, entity: str) -> Order:
        order = self.store.order(store_order_id(int(entity)))
        if order is None:
            raise Refusal(NO_ENTITY, status=404)
        return order

    async def _orders(self, request: Request, _: list[str]) -> Any:
        criteria = parse_criteria(request.query_params.multi_items())
        with self.store.lock:  # a page is rendered from one consistent state of the store
            page, total = self._find_orders(criteria)
            items = [self.render(order) for order in page]
        return {"items": items, "search_criteria": criteria.echo(), "total_count": total}

    def _find_orders(self, criteria: Criteria) -> tuple[list[Order], int]:
        """Orders matching, as Magento's SQL would find them: a lower bound on `updated_at`
        narrows the scan through the store's index, as an index on the column would."""
        check_fields(criteria, self._order_columns)
        keys = self.store.sorted_keys("updated_at")
        start = 0
        for group in criteria.groups:
            if len(group) != 1 or group[0].field != "updated_at" or group[0].kind not in ("gt", "gteq"):
                continue
            try:
                moment = datetime.strptime(group[0].value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            except ValueError:
                continue
            bound = bisect_left(keys, (moment,)) if group[0].kind == "gteq" else bisect_right(keys, (moment, 1 << 62))
            start = max(start, bound)
        orders = [self.store.order(order_id) for _, order_id in keys[start:]]
        found = [o for o in orders if o is not None and matches(o, criteria.groups, self._order_columns)]
        if criteria.sort not in ((("updated_at", "ASC"), ("entity_id", "ASC")), (("updated_at", "ASC"),)):
            # Already in index order otherwise; with no sort given, Magento's is by entity_id.
            sort_rows(found, criteria.sort or (("entity_id", "ASC"),), self._order_columns)
        first, end = page_bounds(len(found), criteria)
        return found[first:end], len(found)

    async def _order(self, _request: Request, groups: list[str]) -> Any:
        with self.store.lock:
            return self.render(self._find(groups[0]))

    async def _comments(self, _request: Request, groups: list[str]) -> Any:
        with self.store.lock:
            history = self.documents.history(self._find(groups[0]))
        return {"items": history, "search_criteria": {"filter_groups": []}, "total_count": len(history)}

    async def _add_comment(self, request: Request, groups: list[str]) -> Any:
        body = await self._body(request)
        with self.store.lock:
            return self.documents.add_comment(self._find(groups[0]), body)

    async def _ship(self, request: Request, groups: list[str]) -> Any:
        body = await self._body(request)
        with self.store.lock:
            return self.documents.ship(self._find(groups[0]), body)

    async def _refund(self, request: Request, groups: list[str]) -> Any:
        body = await self._body(request)
        with self.store.lock:
            return self.documents.refund(self._find(groups[0]), body)

    @staticmethod
    def _search(request: Request, rows: list[dict[str, Any]], columns: dict[str, Column]) -> Any:
        criteria = parse_criteria(request.query_params.multi_items())
        page, total = search(rows, criteria, columns)
        return {"items": page, "search_criteria": criteria.echo(), "total_count": total}

    async def _shipments(self, request: Request, _: list[str]) -> Any:
        columns = dict_columns(("entity_id", "increment_id", "order_id", "store_id", "total_qty"),
                               ("created_at", "updated_at"))
        return self._search(request, self.documents.shipments, columns)

    async def _creditmemos(self, request: Request, _: list[str]) -> Any:
        columns = dict_columns(("entity_id", "increment_id", "order_id", "state", "grand_total"),
                               ("created_at", "updated_at"))
        return self._search(request, self.documents.creditmemos, columns)

    async def _products(self, request: Request, _: list[str]) -> Any:
        columns = dict_columns(("sku", "name", "price", "status", "visibility", "type_id", "attribute_set_id"),
                               ("created_at", "updated_at"))
        columns["entity_id"] = lambda row: row["id"]
        return self._search(request, self.renderer.products_rows(), columns)

    async def _source_items(self, request: Request, _: list[str]) -> Any:
        columns = dict_columns(("sku", "source_code", "quantity", "status"))
        return self._search(request, list(self.documents.source_items.values()), columns)

    async def _save_source_items(self, request: Request, _: list[str]) -> Any:
        return self.documents.save_source_items(await self._body(request))

    async def _store_configs(self, request: Request, _: list[str]) -> Any:
        base = str(request.base_url)
        return [{
            "id": 1, "code": self.store_code, "website_id": 1, "locale": "en_US",
            "base_currency_code": self.store.currency, "default_display_currency_code": self.store.currency,
            "timezone": "UTC", "weight_unit": "kgs", "base_url": base, "base_link_url": base,
            "base_static_url": f"{base}static/", "base_media_url": f"{base}media/", "secure_base_url": base,
            "secure_base_link_url": base, "secure_base_static_url": f"{base}static/",
            "secure_base_media_url": f"{base}media/",
        }]

    async def _store_views(self, _request: Request, _: list[str]) -> Any:
        return [{"id": 0, "code": "admin", "name": "Admin", "website_id": 0, "store_group_id": 0, "is_active": 1},
                {"id": 1, "code": self.store_code, "name": "Default Store View", "website_id": 1,
                 "store_group_id": 1, "is_active": 1}]


def create_magento_app(store: Store, token: str = DEFAULT_TOKEN, store_code: str = DEFAULT_STORE_CODE,
                       faults: Faults | None = None) -> MagentoSandbox:
    """A Magento sandbox over `store`, wrapped in fault injection; serve it with `serve_in_thread`."""
    return MagentoSandbox(store, token, store_code, faults)
