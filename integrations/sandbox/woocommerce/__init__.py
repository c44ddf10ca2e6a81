"""A local server speaking WooCommerce's REST API v3 over the seeded store.

Serves orders (filtered, sorted and paged with `X-WP-Total`, `X-WP-TotalPages` and a
`Link` header), order notes and refunds, products and variations (their stock counts
updated one at a time or up to a hundred to a `batch`), with WooCommerce's
consumer key auth (HTTP Basic or query string) and its JSON error shape. Writes are
kept beside the store (statuses, notes, refunds, stock counts) and recorded in
`writes`; `drop_next_writes` cuts the connection after applying a write, as a lost
answer would. Control endpoints under `/sandbox/` (never faulted, no auth) let tests
and the demo inspect it, change fault rates, and edit or add orders between runs.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from dataclasses import dataclass
from itertools import count
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from integrations.sandbox.control import SandboxControl
from integrations.sandbox.faults import FaultInjector, Faults
from integrations.sandbox.store import Order, Product, SeededReturn, Store, Variant
from integrations.sandbox.woocommerce.render import SITE_OFFSET, Renderer, gmt, is_variable, local, order_status

DEFAULT_KEY = "ck_sandbox"
DEFAULT_SECRET = "cs_sandbox"
API = "/wp-json/wc/v3"
MAX_PER_PAGE = 100
ORDER_STATUSES = ("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed", "trash",
                  "checkout-draft")
# orderby values WooCommerce accepts, and the store index each is served from.
ORDER_SORTS = {"date": "created_at", "modified": "updated_at", "id": "id", "include": "id", "title": "created_at",
               "slug": "id"}
PRODUCT_SORTS = ("date", "id", "include", "title", "slug", "price", "popularity", "rating", "modified")

Handler = Callable[[Request], Awaitable[Response]]
SEEDED_REFUND_BASE = 900_000  # ids of refunds made in the shop's admin, apart from the API's
# What a shop manager types as the refund reason for each of Clerk's codes.
WOO_REASONS = {"damaged": "Item arrived damaged", "defective": "Defective - stopped working",
               "wrong_item": "Customer received the wrong item", "not_as_described": "Not as described",
               "changed_mind": "Customer changed their mind", "late_delivery": "Late delivery",
               "other": "Goodwill"}
T = TypeVar("T")


class Problem(Exception):
    """A request WooCommerce would refuse: answered in its JSON error shape."""

    def __init__(self, status: int, code: str, message: str, params: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.params = status, code, message, params

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        data: dict[str, Any] = {"status": self.status}
        if self.params:
            data["params"] = self.params
        return JSONResponse({"code": self.code, "message": self.message, "data": data}, self.status, headers)


def _invalid(name: str, reason: str) -> Problem:
    return Problem(400, "rest_invalid_param", f"Invalid parameter(s): {name}", {name: reason})


class DroppedAnswer(Response):
    """Promises a body, sends part of it, then cuts the connection: the write stands, its answer is lost."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'{"id": ', "more_body": True})
        raise ConnectionAbortedError("sandbox dropped the answer to a write it applied")


def _int_param(request: Request, name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid(name, f"{name} is not of type integer.") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} (inclusive) and {high} (inclusive)" if high else f"greater than or equal to {low}"
        raise _invalid(name, f"{name} must be {bounds}")
    return value


@dataclass(frozen=True, slots=True)
class _Paging:
    """`page` and `per_page` of a collection request, checked as WordPress checks them."""

    page: int
    per_page: int

    @classmethod
    def of(cls, request: Request) -> _Paging:
        per_page = _int_param(request, "per_page", 10, 1, MAX_PER_PAGE)
        return cls(_int_param(request, "page", 1, 1), per_page)

    def cut(self, items: list[T]) -> list[T]:
        """The items on this page."""
        return items[(self.page - 1) * self.per_page: self.page * self.per_page]


def _choice(request: Request, name: str, default: str, allowed: tuple[str, ...] | dict[str, str]) -> str:
    value = request.query_params.get(name, default)
    if value not in allowed:
        raise _invalid(name, f"{name} is not one of {', '.join(allowed)}.")
    return value


def _date(request: Request, name: str) -> datetime | None:
    """A date filter; without an offset it is GMT only when `dates_are_gmt` says so, else site time."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise _invalid(name, "Invalid date.") from None
    if moment.tzinfo is None:
        in_gmt = request.query_params.get("dates_are_gmt", "false").lower() in ("1", "true")
        moment = (moment if in_gmt else moment - SITE_OFFSET).replace(tzinfo=UTC)
    return moment.astimezone(UTC)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json() if await request.body() else {}
    except ValueError:
        raise Problem(400, "rest_invalid_json", "Invalid JSON body passed.") from None
    if not isinstance(body, dict):
        raise Problem(400, "rest_invalid_json", "Invalid JSON body passed.")
    return body


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class WooCommerceSandbox(SandboxControl):
    """The WooCommerce sandbox: an ASGI app with handles on its store, faults and the writes it took."""

    def __init__(self, store: Store, key: str = DEFAULT_KEY, secret: str = DEFAULT_SECRET,
                 faults: Faults | None = None, retry_after: int = 1):
        self.store = store
        self.key = key
        self.secret = secret
        self.faults = faults or Faults()
        self.retry_after = retry_after
        self.renderer = Renderer(store)
        self.writes: list[tuple[str, str, Any]] = []
        self.statuses: dict[int, str] = {}
        self.notes: dict[int, list[dict[str, Any]]] = {}
        self.refunds: dict[int, list[dict[str, Any]]] = {}
        self.stock: dict[int, int] = {}  # by product or variation id, once written
        self.stock_writes: list[tuple[str, int]] = []  # (SKU, count) of every count the API set, in order
        self._products = {p.id: p for p in store.products}
        self._ids = count(1)
        self._drop_writes = 0
        self._counts: Counter[str] = Counter()
        for seeded in store.return_requests():  # refunds made in the shop's admin, not by Clerk
            self.seed_refund(seeded)
        api = [
            ("/orders", self._orders, ["GET"]),
            ("/orders/{id:int}", self._order, ["GET", "PUT"]),
            ("/orders/{id:int}/notes", self._notes, ["GET", "POST"]),
            ("/orders/{id:int}/refunds", self._refunds, ["GET", "POST"]),
            ("/products", self._list_products, ["GET"]),
            ("/products/batch", self._products_batch, ["POST"]),
            ("/products/{id:int}", self._product, ["GET", "PUT"]),
            ("/products/{id:int}/variations", self._variations, ["GET"]),
            ("/products/{id:int}/variations/batch", self._variations_batch, ["POST"]),
            ("/products/{id:int}/variations/{vid:int}", self._variation, ["GET", "PUT"]),
            ("/data/currencies/current", self._currency, ["GET"]),
        ]
        routes = [Route(API + path, self._guarded(handler), methods=methods) for path, handler, methods in api]
        routes += [
            Route("/wp-json/{rest:path}", self._no_route,
                  methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            *self.control_routes(),
            Route("/sandbox/writes", lambda _r: JSONResponse([list(w) for w in self.writes]), methods=["GET"]),
            Route("/sandbox/drop-writes", self._post_drop_writes, methods=["POST"]),
        ]
        self.app = Starlette(routes=routes)
        self._asgi = FaultInjector(self.app, self.faults, self._throttled)

    # -- the Python face of the control endpoints -------------------------------------------

    @property
    def stats(self) -> dict[str, Any]:
        """Requests seen (control endpoints aside), refusals, writes, and faults injected."""
        return {
            "requests": self._counts["requests"], "unauthorized": self._counts["unauthorized"],
            "throttled": self._counts["throttled"], "writes": len(self.writes),
            "faults": dict(self.faults.injected), "orders": len(self.store.orders),
        }

    def drop_next_writes(self, count: int = 1) -> None:
        """Applies the next `count` writes, then cuts each one's connection before its answer."""
        self._drop_writes = count

    def _stock_holder(self, sku: str) -> int:
        """The id a SKU's stock count is kept under: its variation's, or its simple product's."""
        variant = next(v for v in self.store.variants if v.sku == sku)
        product = self._products[variant.product_id]
        return variant.id if is_variable(product) else product.id

    def shown_stock(self, sku: str) -> int:
        """The stock count WooCommerce shows for a SKU: as written, else the store's on hand."""
        return self.stock.get(self._stock_holder(sku), self.store.on_hand.get(sku, 0))

    def edit_stock(self, sku: str, count: int) -> None:
        """Sets a count as a shop manager does in WordPress (not one of the API's writes)."""
        self.stock[self._stock_holder(sku)] = count

    def seed_refund(self, seeded: SeededReturn, **changes: Any) -> dict[str, Any]:
        """Records a refund a shop manager made in WordPress for a seeded return request: its lines'
        quantities negative, `refunded_payment` true when the store says the money went back through
        the gateway. `changes` overrides fields of the refund (a test's malformed one)."""
        order = self.store.order(seeded.order_id)
        assert order is not None, seeded
        by_id = {line.id: line for line in order.lines}
        share = Decimal(seeded.amount) / max(1, sum(units for _, units in seeded.lines))
        refund_id = SEEDED_REFUND_BASE + len(self.refunds.get(order.id, [])) * 100 + seeded.number
        items = [{"id": refund_id * 10 + n, "name": by_id[line_id].title, "product_id": 0, "variation_id": 0,
                  "quantity": -units, "subtotal": f"{-share * units:.2f}", "total": f"{-share * units:.2f}",
                  "sku": by_id[line_id].sku or "", "price": float(-share),
                  "meta_data": [{"id": refund_id * 10 + n, "key": "_refunded_item_id", "value": str(line_id)}]}
                 for n, (line_id, units) in enumerate(seeded.lines, start=1) if line_id in by_id]
        refund = {"id": refund_id, "date_created": local(seeded.requested_at),
                  "date_created_gmt": gmt(seeded.requested_at), "amount": seeded.amount,
                  "reason": WOO_REASONS.get(seeded.reason, seeded.reason), "refunded_by": 1,
                  "refunded_payment": seeded.refunded, "meta_data": [], "line_items": items,
                  "shipping_lines": [], "tax_lines": [], "fee_lines": []} | changes
        self.refunds.setdefault(order.id, []).append(refund)
        return refund

    def _wire_id(self, order_id: int) -> str:
        return str(order_id)

    def _store_id(self, wire_id: str) -> int | None:
        return int(wire_id)

    def status(self, order: Order) -> str:
        """The order's status: the last one written, else its lifecycle's."""
        return self.statuses.get(order.id) or order_status(order)

    def render_order(self, order: Order) -> dict[str, Any]:
        return self.renderer.order(order, self.status(order), self.refunds.get(order.id, []))

    # -- control HTTP ---------------------------------------------------------------------------

    async def _post_drop_writes(self, request: Request) -> Response:
        def drop(body: dict[str, Any]) -> dict[str, int]:
            self.drop_next_writes(int(body.get("count", 1)))
            return {"dropping": self._drop_writes}

        return await self._control(request, drop)

    # -- API plumbing ---------------------------------------------------------------------------

    def _guarded(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                self._authenticate(request)
                return await handler(request)
            except Problem as problem:
                if problem.status == 401:
                    self._counts["unauthorized"] += 1
                return problem.response()

        return endpoint

    def _authenticate(self, request: Request) -> None:
        """Consumer key and secret, as HTTP Basic auth or `consumer_key`/`consumer_secret` parameters."""
        header = request.headers.get("authorization", "")
        if header[:6].lower() == "basic ":
            try:
                key, _, secret = base64.b64decode(header[6:], validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                key, secret = "", ""
        elif "consumer_key" in request.query_params:
            key, secret = request.query_params["consumer_key"], request.query_params.get("consumer_secret", "")
        else:
            raise Problem(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
        if not hmac.compare_digest(key.encode(), self.key.encode()):
            raise Problem(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
        if not hmac.compare_digest(secret.encode(), self.secret.encode()):
            raise Problem(401, "woocommerce_rest_authentication_error", "Consumer secret is invalid.")

    async def _no_route(self, _request: Request) -> Response:
        return Problem(404, "rest_no_route", "No route was found matching the URL and request method.").response()

    async def _throttled(self, _request: Request) -> Response:
        """A 429 drawn by the fault injector, as a host's rate limiter in front of WordPress sends it."""
        self._counts["throttled"] += 1
        return Problem(429, "woocommerce_rest_too_many_requests", "Too many requests. Please wait and try again."
                       ).response({"Retry-After": str(self.retry_after)})

    @staticmethod
    def _collection(request: Request, items: list[Any], total: int, paging: _Paging) -> JSONResponse:
        """A page of a collection with WordPress's paging headers."""
        page = paging.page
        pages = math.ceil(total / paging.per_page)
        base = request.url.remove_query_params(["consumer_key", "consumer_secret"])
        links = []
        if page > 1 and pages:
            links.append(f'<{base.include_query_params(page=min(page - 1, pages))}>; rel="prev"')
        if page < pages:
            links.append(f'<{base.include_query_params(page=page + 1)}>; rel="next"')
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        if links:
            headers["Link"] = ", ".join(links)
        return JSONResponse(items, headers=headers)

    def _applied(self, request: Request, body: Any, answer: Any, status: int = 200) -> Response:
        """Records a write already applied, then answers it (or drops the answer when asked to)."""
        self.writes.append((request.method, request.url.path, body))
        if self._drop_writes > 0:
            self._drop_writes -= 1
            return DroppedAnswer()
        return JSONResponse(answer, status)

    def _find_order(self, request: Request) -> Order:
        order = self.store.order(request.path_params["id"])
        if order is None:
            raise Problem(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        return order

    # -- orders ---------------------------------------------------------------------------------

    async def _orders(self, request: Request) -> Response:
        paging = _Paging.of(request)
        orderby = _choice(request, "orderby", "date", ORDER_SORTS)
        descending = _choice(request, "order", "desc", ("asc", "desc")) == "desc"
        bounds = {name: _date(request, name) for name in ("after", "before", "modified_after", "modified_before")}
        wanted = set(request.query_params.get("status", "any").split(","))
        if not wanted <= {"any", *ORDER_STATUSES}:
            raise _invalid("status", f"status is not one of any, {', '.join(ORDER_STATUSES)}.")
        with self.store.lock:  # a page is rendered from one consistent state of the store
            found = self._matching(ORDER_SORTS[orderby], bounds, wanted)
            if descending:
                found.reverse()
            items = [self.render_order(order) for order in paging.cut(found)]
        return self._collection(request, items, len(found), paging)

    def _matching(self, index: str, bounds: dict[str, datetime | None], wanted: set[str]) -> list[Order]:
        """Orders within the date bounds (all strict, as WordPress's) and statuses, in `index` order."""
        keys = self.store.sorted_keys(index)
        start, end = 0, len(keys)
        if index == "updated_at":  # the incremental query: bisect rather than scan
            if bounds["modified_after"]:
                start = bisect_right(keys, (bounds["modified_after"], math.inf))
            if bounds["modified_before"]:
                end = bisect_left(keys, (bounds["modified_before"], -1))
        found = []
        for _, order_id in keys[start:end]:
            order = self.store.order(order_id)
            if order is None or not self._within(order, bounds):
                continue
            status = self.status(order)
            # `any` is every status but the bin and unplaced carts, as in WooCommerce.
            if status in wanted or ("any" in wanted and status not in ("trash", "checkout-draft")):
                found.append(order)
        return found

    @staticmethod
    def _within(order: Order, bounds: dict[str, datetime | None]) -> bool:
        after, before = bounds["after"], bounds["before"]
        modified_after, modified_before = bounds["modified_after"], bounds["modified_before"]
        return not ((after and order.created_at <= after) or (before and order.created_at >= before)
                    or (modified_after and order.updated_at <= modified_after)
                    or (modified_before and order.updated_at >= modified_before))

    async def _order(self, request: Request) -> Response:
        order = self._find_order(request)
        if request.method == "GET":
            return JSONResponse(self.render_order(order))
        body = await _json_body(request)
        status = body.get("status")
        if status is not None and status not in ORDER_STATUSES:
            raise _invalid("status", f"status is not one of {', '.join(ORDER_STATUSES)}.")
        with self.store.lock:
            if status is not None:
                self.statuses[order.id] = status
            return self._applied(request, body, self.render_order(order))

    async def _notes(self, request: Request) -> Response:
        order = self._find_order(request)
        notes = self.notes.setdefault(order.id, [])
        if request.method == "GET":
            return JSONResponse(notes[::-1])  # newest first, like WooCommerce
        body = await _json_body(request)
        if not isinstance(body.get("note"), str) or not body["note"]:
            raise Problem(400, "rest_missing_callback_param", "Missing parameter(s): note", {"note": "required"})
        now = _now()
        note = {"id": next(self._ids), "author": "WooCommerce", "date_created": local(now),
                "date_created_gmt": gmt(now), "note": body["note"],
                "customer_note": body.get("customer_note") is True, "added_by_user": False}
        notes.append(note)
        return self._applied(request, body, note, 201)

    async def _refunds(self, request: Request) -> Response:
        order = self._find_order(request)
        refunds = self.refunds.setdefault(order.id, [])
        if request.method == "GET":
            paging = _Paging.of(request)
            return self._collection(request, paging.cut(refunds[::-1]), len(refunds), paging)
        body = await _json_body(request)
        with self.store.lock:
            refund = self._refund(order, body, refunds)
            refunds.append(refund)
            if self._refunded(order) >= _amount(order.total, Decimal("Infinity")):
                self.statuses[order.id] = "refunded"
            return self._applied(request, body, refund, 201)

    def _refund(self, order: Order, body: dict[str, Any], earlier: list[dict[str, Any]]) -> dict[str, Any]:
        """A refund as WooCommerce creates it from `body`, checked as WooCommerce checks it."""
        lines = {line.id: line for line in order.lines}
        items = []
        for given in body.get("line_items") or []:
            line = lines.get(_whole(given.get("id"))) if isinstance(given, dict) else None
            if line is None:
                continue  # WooCommerce skips items not on the order
            total = _amount(given.get("refund_total", 0), Decimal(0))
            items.append({"id": next(self._ids), "name": line.title, "product_id": 0, "variation_id": 0,
                          "quantity": -_whole(given.get("quantity")), "subtotal": f"{-total:.2f}",
                          "total": f"{-total:.2f}", "sku": line.sku or "", "price": float(-total),
                          "meta_data": [{"id": next(self._ids), "key": "_refunded_item_id", "value": str(line.id)}]})
        given_amount = body.get("amount")
        amount = (_amount(given_amount, Decimal(-1)) if given_amount is not None
                  else -sum((Decimal(i["total"]) for i in items), Decimal(0)))
        left = _amount(order.total, Decimal("Infinity")) - self._refunded(order)
        if amount <= 0 or amount > left:
            raise Problem(400, "woocommerce_rest_cannot_create_order_refund", "Invalid refund amount.")
        now = _now()
        meta = [{"id": next(self._ids), "key": str(m.get("key")), "value": m.get("value")}
                for m in body.get("meta_data") or [] if isinstance(m, dict)]
        return {"id": next(self._ids), "date_created": local(now), "date_created_gmt": gmt(now),
                "amount": f"{amount:.2f}", "reason": str(body.get("reason") or ""), "refunded_by": 1,
                "refunded_payment": body.get("api_refund", True) is True, "meta_data": meta,
                "line_items": items, "shipping_lines": [], "tax_lines": [], "fee_lines": []}

    def _refunded(self, order: Order) -> Decimal:
        return sum((Decimal(r["amount"]) for r in self.refunds.get(order.id, [])), Decimal(0))

    # -- catalog --------------------------------------------------------------------------------

    async def _currency(self, _request: Request) -> Response:
        code = self.store.currency
        return JSONResponse({"code": code, "name": code, "symbol": code})

    def _find_product(self, request: Request) -> Product:
        product = self._products.get(request.path_params["id"])
        if product is None:
            raise Problem(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        return product

    def _find_variation(self, request: Request) -> Variant:
        product = self._find_product(request)
        variant = next((v for v in product.variants if v.id == request.path_params["vid"]), None)
        if variant is None or not is_variable(product):
            raise Problem(404, "woocommerce_rest_product_variation_invalid_id", "Invalid ID.")
        return variant

    async def _list_products(self, request: Request) -> Response:
        paging = _Paging.of(request)
        orderby = _choice(request, "orderby", "date", PRODUCT_SORTS)
        descending = _choice(request, "order", "desc", ("asc", "desc")) == "desc"
        after, before = _date(request, "modified_after"), _date(request, "modified_before")
        skus = set(filter(None, request.query_params.get("sku", "").split(",")))
        found: list[tuple[Any, dict[str, Any]]] = []
        for product in self.store.products:
            if (after and product.updated_at <= after) or (before and product.updated_at >= before):
                continue
            if not skus:
                found.append((self._sort_key(product, orderby), self.renderer.product(product, self.stock)))
            elif not is_variable(product):
                if product.variants[0].sku in skus:
                    found.append((product.id, self.renderer.product(product, self.stock)))
            else:  # WooCommerce finds variations by SKU too, listed as products
                found += [(v.id, self.renderer.variation_as_product(v, self.stock))
                          for v in product.variants if v.sku in skus]
        found.sort(key=lambda pair: pair[0], reverse=descending)
        items = [item for _, item in paging.cut(found)]
        return self._collection(request, items, len(found), paging)

    @staticmethod
    def _sort_key(product: Product, orderby: str) -> Any:
        if orderby in ("date", "modified"):
            return product.updated_at, product.id
        if orderby == "title":
            return product.title, product.id
        return product.id

    async def _product(self, request: Request) -> Response:
        product = self._find_product(request)
        if request.method == "PUT":
            body = await _json_body(request)
            self._set_stock(product.id, product.variants[0].sku, body)
            return self._applied(request, body, self.renderer.product(product, self.stock))
        return JSONResponse(self.renderer.product(product, self.stock))

    async def _products_batch(self, request: Request) -> Response:
        """`POST products/batch`: updates only (the sandbox creates and deletes no products)."""
        def update(item: dict[str, Any]) -> dict[str, Any]:
            product = self._products.get(_whole(item.get("id")))
            if product is None:
                raise Problem(400, "woocommerce_rest_product_invalid_id", "Invalid ID.")
            self._set_stock(product.id, product.variants[0].sku, item)
            return self.renderer.product(product, self.stock)

        return await self._batch(request, update)

    async def _variations_batch(self, request: Request) -> Response:
        """`POST products/<id>/variations/batch`: updates of the product's variations only."""
        product = self._find_product(request)
        variants = {v.id: v for v in product.variants} if is_variable(product) else {}

        def update(item: dict[str, Any]) -> dict[str, Any]:
            variant = variants.get(_whole(item.get("id")))
            if variant is None:
                raise Problem(400, "woocommerce_rest_product_variation_invalid_id", "Invalid ID.")
            self._set_stock(variant.id, variant.sku, item)
            return self.renderer.variation(variant, self.stock)

        return await self._batch(request, update)

    async def _batch(self, request: Request, update: Callable[[dict[str, Any]], dict[str, Any]]) -> Response:
        """A batch request's `update` items, each answered with the record or its own error, as
        WooCommerce does: one item refused leaves the others written."""
        body = await _json_body(request)
        items = body.get("update") or []
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise _invalid("update", "update is not of type array.")
        if len(items) + len(body.get("create") or []) + len(body.get("delete") or []) > MAX_PER_PAGE:
            raise Problem(413, "rest_request_entity_too_large",
                          f"Unable to accept more than {MAX_PER_PAGE} items for this request.")
        answered = []
        with self.store.lock:
            for item in items:
                try:
                    answered.append(update(item))
                except Problem as problem:
                    answered.append({"id": _whole(item.get("id")), "error": {
                        "code": problem.code, "message": problem.message, "data": {"status": problem.status}}})
            return self._applied(request, body, {"update": answered})

    async def _variations(self, request: Request) -> Response:
        product = self._find_product(request)
        paging = _Paging.of(request)
        variants = product.variants if is_variable(product) else []
        return self._collection(request, [self.renderer.variation(v, self.stock) for v in paging.cut(variants)],
                                len(variants), paging)

    async def _variation(self, request: Request) -> Response:
        variant = self._find_variation(request)
        if request.method == "PUT":
            body = await _json_body(request)
            self._set_stock(variant.id, variant.sku, body)
            return self._applied(request, body, self.renderer.variation(variant, self.stock))
        return JSONResponse(self.renderer.variation(variant, self.stock))

    def _set_stock(self, own_id: int, sku: str, body: dict[str, Any]) -> None:
        quantity = body.get("stock_quantity")
        if quantity is None:
            return
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            raise _invalid("stock_quantity", "stock_quantity is not of type integer.")
        self.stock[own_id] = quantity
        self.stock_writes.append((sku, quantity))


def _amount(value: Any, otherwise: Decimal) -> Decimal:
    """An amount from a request or the store; `otherwise` when it is not one (a malformed order's)."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return otherwise
    return amount if amount.is_finite() else otherwise


def _whole(value: Any) -> int:
    """A whole number from a request (WooCommerce takes "3" as 3); 0 when it is not one."""
    try:
        return int(str(value))
    except ValueError:
        return 0


def create_woocommerce_app(store: Store, key: str = DEFAULT_KEY, secret: str = DEFAULT_SECRET,
                           faults: Faults | None = None, retry_after: int = 1) -> WooCommerceSandbox:
    """A WooCommerce sandbox over `store`, wrapped in fault injection; serve it with `serve_in_thread`."""
    return WooCommerceSandbox(store, key, secret, faults, retry_after)
