"""The Magento 2 REST client: the only code here that talks to Magento.

`_send` is the one transport seam: one attempt of one request, read to the end.
Everything it sends is built, and everything it receives is read, by the pure functions
of `mapping.py`. Reads are retried on 5xx, 429 (after Retry-After), timeouts, drops and
garbled bodies. Magento has no idempotency header, so a write is retried only as a whole
"look, then write" step: each attempt first asks whether the last one landed after all.
"""

from __future__ import annotations

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
    call_with_retry,
    decode_json,
    raise_for_transient,
    required_settings,
    transport_settings,
    web_url,
)
from integrations.magento import mapping
from integrations.magento.mapping import SearchResult, ShapeError, Track
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
from integrations.writeback import ShownCounts, StockPush

if TYPE_CHECKING:
    from integrations.settings import Settings

T = TypeVar("T")

URL = "CLERK_MAGENTO_URL"
STORE = "CLERK_MAGENTO_STORE"
TOKEN = "CLERK_MAGENTO_TOKEN"

# What Magento answers when no REST route matches: a wrong store code lands here too,
# since Magento then reads the code as the first part of the route.
NO_ROUTE = "Request does not match any route."
_STOCK_BATCH = 200


def _as_is(body: Any) -> Any:
    return body


def _entity_id(body: Any) -> int:
    """The id a create call answers with."""
    if isinstance(body, bool) or not isinstance(body, int):
        raise ShapeError("expected the new document's id")
    return body


def _accepted(body: Any) -> bool:
    if body is not True:
        raise ShapeError("expected true")
    return True


# Tracking carriers Magento knows by code; any other carrier is "custom", titled by its name.
_CARRIER_CODES = {"ups": "ups", "usps": "usps", "fedex": "fedex", "dhl": "dhl"}


def as_track(tracking: Tracking) -> Track:
    """A tracking as Magento records it on a shipment (Magento keeps no tracking URL)."""
    code = _CARRIER_CODES.get(tracking.carrier.strip().lower().replace(" ", ""), "custom")
    return Track(tracking.number, code, tracking.carrier)


def _comment_id(comments: Sequence[Any], key: str) -> int | None:
    """The id of the status-history entry carrying `key`, if one does."""
    mark = mapping.key_mark(key)
    for comment in comments:
        if isinstance(comment, dict) and mark in str(comment.get("comment", "")) \
                and isinstance(comment.get("entity_id"), int):
            return comment["entity_id"]
    return None


def _order_id(order_id: str) -> int:
    """Clerk's external id of a Magento order (its `entity_id`) as the API wants it."""
    if not order_id.isdigit():
        raise ValueError(f"not a Magento order id: {order_id!r}")
    return int(order_id)


class MagentoClient(HttpClient):
    """Orders, catalog and write-backs of one Magento 2 store view, over the REST API."""

    channel = mapping.CHANNEL

    def __init__(
        self,
        base_url: str,
        token: str,
        store: str = "default",
        *,
        source_code: str = "default",
        timeout: float = 30.0,
        max_attempts: int = 6,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        web_url(self.base_url, URL, "Magento")
        if not store or "/" in store:
            raise UpstreamError(f"{STORE} must be a store view code such as 'default'", setting=STORE)
        self.store = store
        self.source_code = source_code
        self._token = token
        self._connect(timeout, max_attempts, http, sleep, rng)
        self._currency: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MagentoClient:
        """A client from the CLERK_MAGENTO_* settings.

        Raises:
            UpstreamError: naming the variable that is missing.
        """
        url, token = required_settings((settings.magento_url, URL), (settings.magento_token, TOKEN))
        return cls(url, token, settings.magento_store, **transport_settings(settings))

    # ------------------------------------------------------------------ transport

    def _url(self, path: str, scoped: bool = True) -> str:
        return f"{self.base_url}/rest/{self.store}/V1{path}" if scoped else f"{self.base_url}/rest/V1{path}"

    def _send(
        self,
        method: str,
        path: str,
        read: Callable[[Any], T],
        *,
        params: Mapping[str, str] | None = None,
        body: Payload | None = None,
        strict: bool = False,
    ) -> T:
        """One attempt of one request.

        Raises TransientFailure (or lets an httpx.TransportError through) for what is
        worth another attempt, UpstreamError for refusals. With `strict`, an unreachable
        host is a refusal too: that is a wrong URL, not a passing fault.
        """
        try:
            response = self._http.request(
                method, self._url(path), params=params, json=body, timeout=self._timeout,
                headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
            )
        except httpx.ConnectError as exc:
            if strict:
                raise UpstreamError(f"Cannot reach Magento at {self.base_url} ({URL})", setting=URL) from exc
            raise
        raise_for_transient(response)
        if response.status_code >= 300:
            raise self._refusal(method, path, response)
        try:
            return read(decode_json(response))
        except ShapeError as exc:
            raise TransientFailure(f"{method} {path} answer is incomplete ({exc})") from exc

    def _call(self, method: str, path: str, read: Callable[[Any], T], **options: Any) -> T:
        return call_with_retry(lambda: self._send(method, path, read, **options), self._policy, "Magento")

    def _search(self, path: str, params: Mapping[str, str]) -> SearchResult:
        return self._call("GET", path, mapping.parse_search_result, params=params)

    def _refusal(self, method: str, path: str, response: httpx.Response) -> UpstreamError:
        try:
            message = mapping.error_message(response.json())
        except ValueError:
            message = ""
        if response.status_code == 401:
            detail = f": {message}" if message else ""
            return UpstreamError(f"Magento refused the token ({TOKEN}){detail}", setting=TOKEN)
        if 300 <= response.status_code < 400:
            return UpstreamError(
                f"Magento redirected the API request (HTTP {response.status_code}); check {URL}", setting=URL)
        if response.status_code == 404 and (not message or message == NO_ROUTE):
            return self._misaddressed(method, path)
        return UpstreamError(f"Magento rejected {method} {path} (HTTP {response.status_code}): {message[:200]}")

    def _misaddressed(self, method: str, path: str) -> UpstreamError:
        """Why a route was not found: the store code, the URL, or a module Magento lacks.

        Asks the store-less scope (`/rest/V1`, the default store view) for the store
        views; only a Magento answers that, and its answer names the valid codes.
        """
        try:
            response = self._http.get(
                self._url("/store/storeConfigs", scoped=False), timeout=self._timeout,
                headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
            )
            views = mapping.parse_store_views(response.json()) if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            views = None
        if views is None:
            return UpstreamError(f"No Magento REST API at {self.base_url}/rest ({URL})", setting=URL)
        codes = sorted(view.code for view in views)
        if self.store not in codes:
            return UpstreamError(
                f"Magento has no store view '{self.store}' ({STORE}); it has: {', '.join(codes)}", setting=STORE)
        return UpstreamError(f"Magento has no route {method} /V1{path} (is its module enabled?)")

    # ------------------------------------------------------------------ store

    def ping(self) -> None:
        """Checks URL, store code and token with one cheap call; caches the base currency.

        Raises:
            UpstreamError: one line naming the CLERK_MAGENTO_* variable to fix.
        """
        views = self._send("GET", "/store/storeConfigs", mapping.parse_store_views, strict=True)
        self._currency = self._pick_currency(views)

    def _pick_currency(self, views: list[mapping.StoreView]) -> str:
        chosen = next((v for v in views if v.code == self.store), views[0] if views else None)
        if chosen is None or not chosen.base_currency:
            raise UpstreamError("Magento listed no base currency for its store views")
        return chosen.base_currency

    def _base_currency(self) -> str:
        if self._currency is None:
            self._currency = self._pick_currency(
                self._call("GET", "/store/storeConfigs", mapping.parse_store_views))
        return self._currency

    # ------------------------------------------------------------------ orders

    def changed_orders(self, since: datetime | None, cursor: str | None, limit: int) -> OrderPage:
        """Orders updated at or after `since`, oldest change first, about `limit` of them.

        The cursor is the change key of the last order handed out (see
        `mapping.build_orders_search`); the walk ends when `total_count` says the page
        held every order left, never on an empty page: Magento answers a page past the
        end with the last page again.
        """
        after = mapping.decode_cursor(cursor) if cursor else None
        payloads: list[Payload] = []
        more = True
        while more and len(payloads) < limit:
            size = min(mapping.ORDERS_PER_PAGE, limit - len(payloads))
            result = self._search("/orders", mapping.build_orders_search(since, after, size))
            keys = [key for key in map(mapping.change_key, result.items) if key is not None]
            if result.items and not keys:
                raise UpstreamError("Magento sent a page of orders without readable updated_at and entity_id")
            if keys and after is not None and max(keys) <= after:
                raise UpstreamError("Magento ignored the orders' search criteria (the same page came again)")
            payloads.extend(result.items)
            more = result.total_count > len(result.items) and bool(keys)
            after = max(keys) if keys else after
        cursor_out = mapping.encode_cursor(*after) if more and after is not None else None
        return OrderPage(payloads, cursor_out, mapping.newest_update(payloads))

    def parse_order(self, payload: Payload) -> ChannelOrder:
        """Pure mapping of one payload (see `mapping.parse_order`)."""
        return mapping.parse_order(payload, self.channel)

    def order(self, order_id: str) -> Payload:
        """One order's payload by its external id (`entity_id`)."""
        return self._call("GET", f"/orders/{_order_id(order_id)}", _as_is)

    # ------------------------------------------------------------------ catalog

    def catalog_pages(self, since: datetime | None = None) -> Iterator[list[CatalogItem]]:
        """Sellable products changed at or after `since` (all when None), priced in the base currency.

        Products are paged by number: the catalog changes rarely during a sync, and a
        product seen twice is only upserted twice. Paging stops by `total_count`.
        """
        currency = self._base_currency()
        page = 1
        while True:
            result = self._search("/products", mapping.build_products_search(since, page))
            items = [item for item in (mapping.parse_product(n, currency) for n in result.items) if item]
            if items:
                yield items
            if not result.items or page * mapping.PRODUCTS_PER_PAGE >= result.total_count:
                return
            page += 1

    # ------------------------------------------------------------------ write-backs

    def _look_then_write(self, look: Callable[[], T | None], write: Callable[[], T]) -> T:
        """Retries a write as a whole: each attempt first looks whether an earlier one landed.

        A response lost after Magento applied the write (a drop, a timeout, a 502 from a
        proxy) therefore never applies it twice.
        """
        def attempt() -> T:
            found = look()
            return found if found is not None else write()

        return call_with_retry(attempt, self._policy, "Magento")

    def ship(self, order_id: str, items: Mapping[str, int], tracks: Sequence[Track], key: str) -> str:
        """Creates a shipment with its tracking numbers once; returns its id.

        Args:
            order_id: the order's external id (`entity_id`).
            items: SKU -> units shipped; empty ships everything not shipped yet.
            tracks: tracking numbers of the parcels.
            key: Clerk's idempotency key, left in the shipment's comment.
        """
        entity = _order_id(order_id)
        lines = mapping.resolve_items(self.order(order_id), items) if items else []
        body = mapping.build_shipment(lines, tracks, key)
        numbers = [track.number for track in tracks]

        def look() -> int | None:
            found = self._send("GET", "/shipments", mapping.parse_search_result,
                               params=mapping.build_order_documents_search(entity))
            marked = mapping.find_document(found.items, key)
            return marked if marked is not None else mapping.find_tracked_shipment(found.items, numbers)

        return str(self._look_then_write(
            look, lambda: self._send("POST", f"/order/{entity}/ship", _entity_id, body=body)))

    def fulfill(self, external_id: str, lines: Mapping[str, int], tracking: Tracking | None, key: str) -> str:
        """`OrderWriter.fulfill`: a shipment of `lines` (empty: all left), tracked when there is tracking."""
        return self.ship(external_id, lines, [as_track(tracking)] if tracking else [], key)

    def refund(self, order_id: str, items: Mapping[str, int], amount: Decimal | None, reason: str, key: str) -> str:
        """Creates an offline credit memo once; returns its id.

        Args:
            order_id: the order's external id (`entity_id`).
            items: SKU -> units refunded (and returned to stock by the merchant, not here).
            amount: what the credit memo must total, in the order's currency; None refunds
                the items at what was paid for them. With no items, `amount` alone is
                refunded; with neither, the whole order's items.
            key: Clerk's idempotency key, left in the credit memo's comment.
        """
        entity = _order_id(order_id)
        order = self.order(order_id)
        if items:
            lines = mapping.resolve_items(order, items)
        else:
            lines = mapping.every_item(order, 0 if amount is not None else None)
        adjustment = Decimal(0) if amount is None else amount - mapping.refund_value(order, lines)
        body = mapping.build_refund(lines, adjustment, key)
        if reason:  # the merchant sees why, beside Clerk's key
            body["comment"]["comment"] = f"Refunded by Clerk: {reason} {mapping.key_mark(key)}"

        def look() -> int | None:
            found = self._send("GET", "/creditmemos", mapping.parse_search_result,
                               params=mapping.build_order_documents_search(entity))
            return mapping.find_document(found.items, key)

        return str(self._look_then_write(
            look, lambda: self._send("POST", f"/order/{entity}/refund", _entity_id, body=body)))

    def add_comment(self, order_id: str, text: str, key: str) -> str:
        """Adds a note for the merchant to the order's history once (never shown to the customer);
        returns the history entry's id."""
        entity = _order_id(order_id)
        path = f"/orders/{entity}/comments"

        def look() -> int | None:
            return _comment_id(self._send("GET", path, mapping.parse_search_result).items, key)

        def write() -> int:
            self._send("POST", path, _accepted, body=mapping.build_comment(entity, text, key))
            written = look()  # Magento answers `true`: the id is read back
            if written is None:
                raise TransientFailure("the comment Magento accepted is not in the order's history")
            return written

        return str(self._look_then_write(look, write))

    add_order_note = add_comment

    def set_stock(self, levels: Sequence[StockLevel], key: str = "") -> StockReport:
        """Sets absolute quantities at Clerk's source, compared first with the quantities there
        (see `OrderWriter.set_stock`).

        Magento has no compare-and-set: products and their source items are read 200 SKUs to a
        search (`sku in ...`) just before the changed ones are saved in one `source-items` call.
        Magento refuses a whole save for one unknown SKU, hence the products are read too.
        Quantities are absolute, so `key` needs no record: a save whose answer was lost is read
        back as saved.
        """
        def read(skus: list[str]) -> ShownCounts:
            shown: dict[str, int | None] = {}
            for start in range(0, len(skus), _STOCK_BATCH):
                batch = skus[start:start + _STOCK_BATCH]
                in_batch = [mapping.Filter("sku", ",".join(batch), "in")]
                at_source = [mapping.Filter("source_code", self.source_code)]
                products = self._send("GET", "/products", mapping.parse_search_result,
                                      params=mapping.build_search([in_batch], [("entity_id", "ASC")], len(batch)))
                shown |= dict.fromkeys(mapping.skus_of(products.items, batch))
                items = self._send("GET", "/inventory/source-items", mapping.parse_search_result,
                                   params=mapping.build_search([in_batch, at_source], [("sku", "ASC")], len(batch)))
                shown |= {sku: units for sku, units in mapping.source_quantities(items.items).items() if sku in shown}
            return shown

        def write(pairs: list[tuple[StockLevel, int | None]]) -> None:
            counts = {level.sku: level.available for level, _ in pairs}
            self._send("POST", "/inventory/source-items", _as_is, body=mapping.build_stock(counts, self.source_code))

        # A save that timed out may still be running upstream: give it as long again before reading.
        push = StockPush(levels, read, write, wait=lambda: self._policy.sleep(self._timeout))
        return call_with_retry(push.attempt, self._policy, "Magento")

    # ------------------------------------------------------------------ return requests

    def return_requests(self, since: datetime | None, unreadable: list[Unreadable] | None = None,
                        page_size: int = mapping.CREDITMEMOS_PER_PAGE) -> list[ChannelReturn]:
        """Credit memos made in Magento (not by Clerk) at or after `since`, oldest first.

        Walked by `(created_at, entity_id)`; each page's orders are read in one search for their
        numbers. A credit memo that cannot be read is left out and reported (see `ReturnSource`).
        """
        found: list[ChannelReturn] = []
        problems: list[Unreadable] = []
        after: tuple[datetime, int] | None = None
        while True:
            result = self._search("/creditmemos", mapping.build_creditmemos_search(since, after, page_size))
            keys = [key for key in map(mapping.creation_key, result.items) if key is not None]
            if result.items and not keys:
                raise UpstreamError("Magento sent a page of credit memos without readable created_at and entity_id")
            if keys and after is not None and max(keys) <= after:
                raise UpstreamError("Magento ignored the credit memos' search criteria (the same page came again)")
            wanted = {mapping.memo_order_id(m) for m in result.items if not mapping.is_clerks(m)} - {None}
            numbers: dict[int, str] = {}
            if wanted:
                orders = self._search("/orders", mapping.build_orders_by_id_search(wanted))  # type: ignore[arg-type]
                numbers = {o["entity_id"]: str(o.get("increment_id")) for o in orders.items
                           if isinstance(o, dict) and isinstance(o.get("entity_id"), int) and o.get("increment_id")}
            for memo in result.items:
                try:
                    parsed = mapping.parse_creditmemo(memo, numbers, self.channel)
                except Unreadable as exc:
                    problems.append(exc)
                    continue
                if parsed is not None:
                    found.append(parsed)
            if not keys or result.total_count <= len(result.items):
                break
            after = max(keys)
        report_unreadable(problems, unreadable, self.channel)
        return found
