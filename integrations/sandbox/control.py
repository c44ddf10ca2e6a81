"""The control plumbing every channel sandbox shares: `/sandbox/...` endpoints and their Python face.

A sandbox mixes in `SandboxControl`, says how its API spells an order id (`_wire_id`,
`_store_id`), keeps a `_counts` counter and wraps its app in `_asgi`, and adds
`control_routes()` to its own routes. Control endpoints are never faulted and need no
auth: tests and the demo use them to inspect a sandbox, change fault rates, and edit or
add orders between runs.
"""

from __future__ import annotations

import csv
import io
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import fields as dataclass_fields
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from integrations.sandbox.faults import Faults
from integrations.sandbox.store import Store


def rows_csv(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV with a header line (the columns of the first row)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _at(body: dict[str, Any]) -> datetime | None:
    return datetime.fromisoformat(body["at"]) if body.get("at") else None


class SandboxControl(ABC):
    """Stats, fault rates, order edits and additions, expected reasons and the catalog, over HTTP too."""

    store: Store
    faults: Faults
    _counts: Counter[str]
    _asgi: ASGIApp
    # What a control action may raise on a body it cannot use: answered with a 400.
    _control_errors: tuple[type[Exception], ...] = (ValueError, TypeError)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/sandbox/"):
            self._counts["requests"] += 1
        await self._asgi(scope, receive, send)

    # -- how the channel's API names an order ---------------------------------------------------

    @abstractmethod
    def _wire_id(self, order_id: int) -> str:
        """The id the channel's API (and so Clerk) gives the store's order `order_id`."""

    @abstractmethod
    def _store_id(self, wire_id: str) -> int | None:
        """The store's order id behind an id of the channel's API; None when it names no order."""

    # -- the Python face of the control endpoints -----------------------------------------------

    @property
    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """What the sandbox holds and has served (the `/sandbox/stats` body)."""

    def fault_rates(self) -> dict[str, float]:
        return {f.name: getattr(self.faults, f.name) for f in dataclass_fields(self.faults)
                if f.name.endswith("_rate") or f.name == "timeout_seconds"}

    def set_faults(self, **rates: float) -> dict[str, float]:
        """Changes fault rates (`error_rate=1.0`, ...; `seed` reseeds); returns them all."""
        self.faults.update(**rates)
        return self.fault_rates()

    def edit(self, count: int, at: datetime | None = None, ids: list[str] | None = None) -> list[str]:
        """Edits up to `count` open orders upstream (see `Store.edit_orders`); returns their API ids.

        Args:
            ids: API ids of the orders to choose among; any open order when omitted.
        """
        numbers = None if ids is None else {self._store_id(i) for i in ids}
        return [self._wire_id(o.id) for o in self.store.edit_orders(count, at, numbers)]

    def add_orders(self, count: int, at: datetime | None = None) -> list[str]:
        """Places `count` new orders upstream; returns their API ids."""
        return [self._wire_id(o.id) for o in self.store.add_orders(count, at)]

    def expected_reasons(self) -> dict[str, str]:
        """The reason code each tricky order should trigger, by the order id Clerk sees."""
        return {self._wire_id(int(k)): v for k, v in self.store.expected_reasons().items()}

    def catalog_csv(self) -> str:
        return rows_csv(self.store.catalog_rows())

    def stock_csv(self) -> str:
        return rows_csv(self.store.stock_rows())

    # -- HTTP -------------------------------------------------------------------------------------

    def control_routes(self, with_csv: bool = False) -> list[Route]:
        """`/sandbox/` stats, faults, edit, orders and expected; with `with_csv`, catalog.csv and stock.csv."""
        routes = [
            Route("/sandbox/stats", lambda _r: JSONResponse(self.stats), methods=["GET"]),
            Route("/sandbox/faults", self._post_faults, methods=["POST"]),
            Route("/sandbox/edit", self._post_edit, methods=["POST"]),
            Route("/sandbox/orders", self._post_orders, methods=["POST"]),
            Route("/sandbox/expected", lambda _r: JSONResponse(self.expected_reasons()), methods=["GET"]),
        ]
        if with_csv:
            routes += [
                Route("/sandbox/catalog.csv", lambda _r: PlainTextResponse(self.catalog_csv(), media_type="text/csv")),
                Route("/sandbox/stock.csv", lambda _r: PlainTextResponse(self.stock_csv(), media_type="text/csv")),
            ]
        return routes

    async def _post_faults(self, request: Request) -> Response:
        return await self._control(request, lambda body: self.set_faults(**body))

    async def _post_edit(self, request: Request) -> Response:
        return await self._control(request, lambda body: {
            "edited": self.edit(int(body.get("count", 1)), _at(body), body.get("ids"))})

    async def _post_orders(self, request: Request) -> Response:
        return await self._control(request, lambda body: {
            "created": self.add_orders(int(body.get("count", 1)), _at(body))})

    async def _control(self, request: Request, act: Callable[[dict[str, Any]], Any]) -> Response:
        """Runs a control action on the JSON body; a body it cannot use is a 400, not a crash."""
        try:
            body = await request.json() if await request.body() else {}
            if not isinstance(body, dict):
                raise TypeError("expected a JSON object")
            return JSONResponse(act(body))
        except self._control_errors as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
