"""The WooCommerce REST API v3 client: the only code here that talks to WooCommerce.

`_attempt` is the one transport seam; everything it sends is built, and everything it
receives is read, by the pure functions of `mapping.py`. Transient failures (5xx, 429,
timeouts, drops, garbled bodies) are retried with jitter; refusals are not.

Credentials travel as HTTP Basic auth, which WooCommerce accepts over HTTPS; loopback
is allowed too, for local servers. Plain http to any other host is refused rather than
sending the secret in the clear (WooCommerce would want OAuth 1.0a signatures there).
When a server answers Basic auth with 401 (some drop the Authorization header), the
client tries once more with the key in the query string, as WooCommerce documents.
"""

from __future__ import annotations

import ipaddress
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from domain.orders import ChannelOrder
from integrations.http import (
    HttpClient,
    TransientFailure,
    decode_json,
    raise_for_transient,
    required_settings,
    transport_settings,
    web_url,
)
from integrations.protocols import (
    CatalogItem,
    ChannelReturn,
    OrderPage,
    Payload,
    StockLevel,
    StockReport,
    Tracking,
    Unreadable,
    UpstreamError,
)
from integrations.reading import report_unreadable
from integrations.woocommerce import mapping
from integrations.woocommerce.mapping import Position
from integrations.writeback import ShownCounts, StockPush, covers_order, shipment_note

if TYPE_CHECKING:
    from integrations.settings import Settings

T = TypeVar("T")

URL = "CLERK_WOOCOMMERCE_URL"
KEY = "CLERK_WOOCOMMERCE_KEY"
SECRET = "CLERK_WOOCOMMERCE_SECRET"
WHAT = "WooCommerce"
API_PATH = "/wp-json/wc/v3/"


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses, where plain http never leaves the machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class WooCommerceClient(HttpClient):
    """Orders, the catalog and write-backs of one WooCommerce shop, over its REST API v3."""

    vendor = WHAT
    url_setting = URL

    channel = mapping.CHANNEL

    def __init__(
        self,
        url: str,
        key: str,
        secret: str,
        *,
        timeout: float = 30.0,
        max_attempts: int = 6,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        self.url = url.rstrip("/")
        self.api = web_url(self.url + API_PATH, URL, "WooCommerce")
        if self.api.scheme == "http" and not is_loopback(self.api.host):
            raise UpstreamError(
                f"WooCommerce keys would travel in the clear over http://; use https:// ({URL})", setting=URL
            )
        self._key = key
        self._secret = secret
        self._key_in_query = False
        self._connect(timeout, max_attempts, http, sleep, rng)
        self._sleep = sleep
        self._currency: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> WooCommerceClient:
        """A client from the CLERK_WOOCOMMERCE_* settings.

        Raises:
            UpstreamError: naming the variable that is missing or unusable.
        """
        url, key, secret = required_settings((settings.woocommerce_url, URL), (settings.woocommerce_key, KEY),
                                             (settings.woocommerce_secret, SECRET))
        return cls(url, key, secret, **transport_settings(settings))

    # ------------------------------------------------------------------ transport

    def _refusal(self, response: httpx.Response, method: str, path: str) -> UpstreamError:
        try:
            body = response.json()
        except ValueError:
            body = None
        code = str(body.get("code", "")) if isinstance(body, dict) else ""
        status = response.status_code
        if status == 401:
            return UpstreamError(f"WooCommerce refused the consumer key or secret ({KEY}, {SECRET})", setting=KEY)
        if status == 403:
            return UpstreamError(
                f"WooCommerce denied {method} {path}: the key needs Read/Write access ({KEY})", setting=KEY
            )
        if 300 <= status < 400:
            where = response.headers.get("location", "elsewhere")
            return UpstreamError(
                f"WooCommerce redirected the API request to {where}; set {URL} to the site's own address",
                setting=URL,
            )
        if status == 404 and (not code or code == "rest_no_route"):
            return UpstreamError(f"No WooCommerce REST API at {self.api} (HTTP 404); check {URL}", setting=URL)
        message = str(body.get("message", ""))[:200] if isinstance(body, dict) else ""
        return UpstreamError(f"WooCommerce rejected {method} {path} (HTTP {status} {code}: {message})")

    def _attempt(
        self, method: str, path: str, params: Mapping[str, Any] | None = None, body: Payload | None = None
    ) -> tuple[httpx.Headers, Any]:
        """One request, read to the end: the answer's headers and JSON body.

        Raises TransientFailure (or lets an httpx.TransportError through) for what is
        worth another attempt, UpstreamError for refusals.
        """
        query = dict(params or {})
        auth = None
        if self._key_in_query:
            query |= {"consumer_key": self._key, "consumer_secret": self._secret}
        else:
            auth = httpx.BasicAuth(self._key, self._secret)
        response = self._http.request(
            method, self.api.join(path), params=query, json=body, auth=auth, timeout=self._timeout,
            headers={"Accept": "application/json"},
        )
        if response.status_code == 401 and not self._key_in_query:
            # Some servers drop the Authorization header; WooCommerce's answer for them is the query.
            self._key_in_query = True
            return self._attempt(method, path, params, body)
        raise_for_transient(response)
        if response.status_code >= 300:
            raise self._refusal(response, method, path)
        return response.headers, decode_json(response)

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> tuple[httpx.Headers, Any]:
        return self._retrying(lambda: self._attempt("GET", path, params))

    def _attempt_list(self, path: str, params: Mapping[str, Any]) -> tuple[httpx.Headers, list[Any]]:
        """One request for a list; anything else in a 200 is worth another attempt."""
        headers, body = self._attempt("GET", path, params)
        if not isinstance(body, list):
            raise TransientFailure(f"{path} answered with something other than a list")
        return headers, body

    def _list(self, path: str, params: Mapping[str, Any]) -> tuple[httpx.Headers, list[Any]]:
        return self._retrying(lambda: self._attempt_list(path, params))

    def _every(self, path: str) -> Iterator[Any]:
        """Every record of a list, page after page; single attempts, for a caller that retries."""
        page: int | None = 1
        while page is not None:
            headers, records = self._attempt_list(path, mapping.build_page_params(page))
            yield from records
            page = mapping.next_page(headers, page)

    # ------------------------------------------------------------------ orders

    def changed_orders(self, since: datetime | None, cursor: str | None, limit: int) -> OrderPage:
        """Orders changed at or after `since`, oldest change first, about `limit` of them.

        The cursor is a `mapping.Position`: it holds the newest change delivered, so
        orders edited meanwhile come again later and none is skipped.
        """
        position = Position.decode(cursor) if cursor else Position.start(since)
        per_page = max(1, min(mapping.MAX_PER_PAGE, limit))
        payloads: list[Payload] = []
        more = True
        while more and len(payloads) < limit:
            params = mapping.build_orders_params(position.after, position.page, per_page)
            headers, page = self._list("orders", params)
            more = mapping.next_page(headers, position.page) is not None
            fresh, position = position.advance(page)
            payloads += fresh
        return OrderPage(payloads, position.encode() if more else None, mapping.newest_update(payloads))

    def parse_order(self, payload: Payload) -> ChannelOrder:
        return mapping.parse_order(payload, self.channel)

    def order(self, order_id: str | int) -> Payload:
        """One order as `GET orders/<id>` gives it."""
        return self._get(f"orders/{order_id}")[1]

    # ------------------------------------------------------------------ catalog

    def _shop_currency(self) -> str:
        if self._currency is None:
            _, body = self._get("data/currencies/current")
            try:
                self._currency = mapping.parse_currency(body)
            except ValueError as exc:
                raise UpstreamError(f"WooCommerce did not say its currency ({exc})") from exc
        return self._currency

    def catalog_pages(self, since: datetime | None = None) -> Iterator[list[CatalogItem]]:
        """Products and variations with a SKU, from products changed at or after `since`.

        A variable product's SKUs are its variations'; they are read with it.
        """
        currency = self._shop_currency()
        page: int | None = 1
        while page is not None:
            headers, products = self._list("products", mapping.build_products_params(since, page))
            items: list[CatalogItem] = []
            for product in products:
                if mapping.is_variable(product):
                    variations = self._retrying(lambda p=product: list(self._every(f"products/{p['id']}/variations")))
                    found = [mapping.parse_variation(v, product, currency) for v in variations]
                else:
                    found = [mapping.parse_product(product, currency)]
                items += [item for item in found if item is not None]
            if items:
                yield items
            page = mapping.next_page(headers, page)

    # ------------------------------------------------------------------ write-backs

    def set_order_status(self, order_id: str | int, status: str) -> Payload:
        """Moves an order to a WooCommerce status (`completed` once shipped, ...).

        Setting a status twice is harmless, so a retry needs no look first.
        """
        body = mapping.build_status_update(status)
        return self._retrying(lambda: self._attempt("PUT", f"orders/{order_id}", body=body)[1])

    def add_order_note(self, external_id: str | int, note: str, key: str) -> str:
        """Adds a private note once (a note already carrying `key` is kept); returns the note's id."""
        return str(self.note(external_id, note, key)["id"])

    def note(self, order_id: str | int, note: str, key: str) -> Payload:
        """Adds a private note once: a note already carrying `key` is returned instead."""
        path = f"orders/{order_id}/notes"
        return self._write_once(
            lambda: mapping.find_note(self._every(path), key),
            lambda: self._attempt("POST", path, body=mapping.build_note(note, key))[1],
        )

    def fulfill(self, external_id: str | int, lines: Mapping[str, int], tracking: Tracking | None, key: str) -> str:
        """Records a shipment once; returns the id of the staff note that records it.

        WooCommerce core has no shipments: the order moves to `completed` when `lines`
        (empty: everything) cover every line of the order, and a private note carries the
        units, the tracking and `key`. The note is looked for first, so a repeat writes nothing.
        """
        path = f"orders/{external_id}/notes"
        found = self._retrying(lambda: mapping.find_note(self._every(path), key))
        if found is not None:
            return str(found["id"])
        order = self.order(external_id)
        items = order.get("line_items") if isinstance(order, dict) else None
        ordered = {i["sku"]: i["quantity"] for i in items or [] if isinstance(i, dict) and i.get("sku")
                   and isinstance(i.get("quantity"), int)}
        unknown = sorted(set(lines) - set(ordered))
        if unknown:
            raise ValueError(f"SKU {unknown[0]!r} is not on the order")
        if covers_order(lines, ordered) and order.get("status") != "completed":
            body = mapping.build_status_update("completed")
            self._write_once(  # looked for first, so a lost answer is not written twice
                lambda: now if (now := self._attempt("GET", f"orders/{external_id}")[1]).get("status") == "completed"
                else None,
                lambda: self._attempt("PUT", f"orders/{external_id}", body=body)[1])
        return str(self.note(external_id, shipment_note(lines, tracking), key)["id"])

    def set_stock(self, levels: Sequence[StockLevel], key: str = "") -> StockReport:
        """Sets the stock count of each SKU (product or variation), compared first with the count
        shown (see `OrderWriter.set_stock`).

        WooCommerce has no compare-and-set: counts are read a hundred SKUs to a request
        (`products?sku=a,b,...`) just before the changed ones are written, a hundred to a
        `products/batch` (a variation: its product's `variations/batch`). Counts are absolute,
        so `key` needs no record: a write whose answer was lost is read back as written.
        """
        places: dict[str, tuple[str, int]] = {}  # SKU -> (batch endpoint, id), as last read

        def read(skus: list[str]) -> ShownCounts:
            shown: dict[str, int | None] = {}
            for start in range(0, len(skus), mapping.MAX_PER_PAGE):
                wanted = skus[start:start + mapping.MAX_PER_PAGE]
                page: int | None = 1
                while page is not None:
                    headers, found = self._attempt_list("products", mapping.build_sku_params(wanted, page))
                    for product in found:
                        place = mapping.stock_place(product) if isinstance(product, dict) else None
                        if place is not None and product.get("sku") in wanted:
                            places[product["sku"]], shown[product["sku"]] = place, mapping.shown_stock(product)
                    page = mapping.next_page(headers, page)
            return shown

        def write(pairs: list[tuple[StockLevel, int | None]]) -> None:
            by_endpoint: dict[str, list[tuple[int, int]]] = {}
            for level, _ in pairs:
                path, own = places[level.sku]
                by_endpoint.setdefault(path, []).append((own, level.available))
            for path, counts in by_endpoint.items():
                for start in range(0, len(counts), mapping.MAX_PER_PAGE):
                    body = mapping.build_stock_batch(counts[start:start + mapping.MAX_PER_PAGE])
                    refused = mapping.stock_batch_errors(self._attempt("POST", path, body=body)[1])
                    if refused is None:
                        raise TransientFailure(f"{path} answered with something other than a batch")
                    if refused:
                        raise UpstreamError(f"WooCommerce refused stock counts ({'; '.join(refused[:3])})")

        # A write that timed out may still be running upstream: give it as long again before reading.
        push = StockPush(levels, read, write, wait=lambda: self._sleep(self._timeout))
        return self._retrying(push.attempt)

    def refund(
        self, external_id: str | int, lines: Mapping[str, int], amount: Decimal, reason: str, key: str,
        api_refund: bool = False,
    ) -> str:
        """Records a refund once (a refund already carrying `key` is kept); returns the refund's id.

        Args:
            lines: SKU to units coming back (may be empty: money only).
            key: Clerk's idempotency key, kept in the refund's meta data.
            api_refund: let WooCommerce's gateway move the money (see `mapping.build_refund`).

        Raises:
            ValueError: when a line is not on the order.
        """
        items = mapping.refund_line_items(self.order(external_id), lines) if lines else []
        body = mapping.build_refund(amount, reason, items, key, api_refund)
        path = f"orders/{external_id}/refunds"
        return str(self._write_once(
            lambda: mapping.find_refund(self._every(path), key),
            lambda: self._attempt("POST", path, body=body)[1],
        )["id"])

    # ------------------------------------------------------------------ return requests

    def return_requests(self, since: datetime | None, unreadable: list[Unreadable] | None = None,
                        page_size: int = mapping.MAX_PER_PAGE) -> list[ChannelReturn]:
        """Refunds made in WooCommerce (not by Clerk) at or after `since`, oldest first.

        Orders changed since then are paged through (a refund saves its order); those listing
        refunds have their refunds read (`orders/<id>/refunds`). A refund that cannot be read is
        left out and reported (see `ReturnSource`).
        """
        found: dict[str, ChannelReturn] = {}
        problems: list[Unreadable] = []
        page: int | None = 1
        while page is not None:
            headers, orders = self._list("orders", mapping.build_refunded_orders_params(since, page, page_size))
            for order in filter(mapping.has_refunds, orders):
                refunds = self._retrying(lambda o=order: list(self._every(f"orders/{o['id']}/refunds")))
                for refund in refunds:
                    try:
                        parsed = mapping.parse_refund(order, refund, since, self.channel)
                    except Unreadable as exc:
                        problems.append(exc)
                        continue
                    if parsed is not None:
                        found.setdefault(parsed.external_id, parsed)
            page = mapping.next_page(headers, page)
        report_unreadable(problems, unreadable, self.channel)
        return sorted(found.values(), key=lambda r: (r.requested_at, int(r.external_id)))
