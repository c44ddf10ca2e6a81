"""A local server speaking EasyPost's API v2: addresses, shipments, rates, labels and trackers.

Like EasyPost, it takes the API key as the HTTP Basic user and answers refusals as
`{"error": {"code", "message", "errors"}}`. Address verification fails for an address
with no street or the postal code "00000", with a carrier's reasons. Every shipment is
quoted from the fixed `render.SERVICES` table; a buy answers with the label (a PNG served
under `/labels/`, and, as EasyPost does for a shipment created with `options.label_format`
PDF or ZPL, that file too: a real PDF drawn with reportlab, tracking number and Code 128,
or ZPL II) and a tracker. Trackers move one step along their route on each read:
to `delivered`, or (see `route_tracker`) to `failure` or `return_to_sender`.

`buy_requests` counts every buy a shipment was sent, so a test can assert that a label
was bought exactly once; `lose_buy_responses(n)` buys the next n labels and then cuts
each connection before its answer, the worst a network can do to a client, and
`delay_buys(n, seconds)` applies the next n buys only after the client has given up. The
`Idempotency-Key` of each buy is recorded but, as EasyPost documents no such header,
not honoured. Control endpoints under `/sandbox/` are never faulted and need no auth.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from itertools import count
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from integrations.sandbox.easypost.render import (
    LABEL_FILES,
    LABEL_PNG,
    ROUTES,
    SERVICES,
    Shipment,
    Tracker,
    label_pdf,
    label_zpl,
    rate,
)
from integrations.sandbox.faults import FaultInjector, Faults
from integrations.sandbox.woocommerce import DroppedAnswer

DEFAULT_KEY = "EZTK_sandbox"
API = "/v2"
MAX_PAGE_SIZE = 100

Handler = Callable[[Request], Awaitable[Response]]


class Problem(Exception):
    """A request EasyPost would refuse: answered in its error shape."""

    def __init__(self, status: int, code: str, message: str, errors: list[Any] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors or []

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": {"code": self.code, "message": self.message, "errors": self.errors}},
                            self.status, headers)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json() if await request.body() else {}
    except ValueError:
        raise Problem(400, "PARAMETER.INVALID", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise Problem(400, "PARAMETER.INVALID", "The request body is not a JSON object.")
    return body


def _address_errors(address: dict[str, Any]) -> list[dict[str, Any]]:
    """What the carrier finds wrong with an address (nothing: deliverable)."""
    if not str(address.get("street1") or "").strip():
        return [{"code": "E.HOUSE_NUMBER.MISSING", "field": "street1", "message": "House number is missing",
                 "suggestion": None}]
    if str(address.get("zip") or "").strip() == "00000":
        return [{"code": "E.ADDRESS.NOT_FOUND", "field": "address", "message": "Address not found",
                 "suggestion": None}]
    return []


class EasyPostSandbox:
    """The EasyPost sandbox: an ASGI app (faults in front) and handles on what it sold."""

    def __init__(self, api_key: str = DEFAULT_KEY, faults: Faults | None = None, retry_after: int = 1):
        self.api_key = api_key
        self.faults = faults or Faults()
        self.retry_after = retry_after
        self.shipments: dict[str, Shipment] = {}
        self.trackers: dict[str, Tracker] = {}
        self.buy_requests: Counter[str] = Counter()  # shipment id -> buys it was sent
        self.buy_keys: dict[str, list[str | None]] = {}  # shipment id -> Idempotency-Key of each buy
        self._ids = count(1)
        self._lose_buys = 0
        self._late_buys: list[float] = []  # seconds each of the next buys waits before it is applied
        self._lock = threading.Lock()
        api = [
            ("/addresses", self._create_address, ["POST"]),
            ("/shipments", self._shipments, ["GET", "POST"]),
            ("/shipments/{id}", self._shipment, ["GET"]),
            ("/shipments/{id}/buy", self._buy, ["POST"]),
            ("/trackers", self._create_tracker, ["POST"]),
            ("/trackers/{id}", self._tracker, ["GET"]),
        ]
        routes = [Route(API + path, self._guarded(handler), methods=methods) for path, handler, methods in api]
        routes += [
            Route("/labels/{id}.{extension}", self._label_file, methods=["GET"]),
            Route("/sandbox/stats", lambda _r: JSONResponse(self.stats), methods=["GET"]),
            Route("/sandbox/faults", self._post_faults, methods=["POST"]),
            Route("/sandbox/lose-buys", self._post_lose_buys, methods=["POST"]),
            Route("/sandbox/trackers/{code}/route", self._post_route, methods=["POST"]),
        ]
        self.app = FaultInjector(Starlette(routes=routes), self.faults, self._throttled)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    # -- the Python face of the control endpoints -------------------------------------------

    @property
    def stats(self) -> dict[str, Any]:
        """Shipments, labels bought, buys sent, trackers, and faults injected."""
        with self._lock:
            return {"shipments": len(self.shipments),
                    "labels": sum(1 for s in self.shipments.values() if s.tracking_code),
                    "buy_requests": sum(self.buy_requests.values()), "trackers": len(self.trackers),
                    "faults": dict(self.faults.injected)}

    def set_faults(self, **rates: float) -> None:
        """Changes fault rates (`error_rate=1.0`, ...; `seed` reseeds)."""
        self.faults.update(**rates)

    def lose_buy_responses(self, n: int = 1) -> None:
        """Buys the next `n` labels, then cuts each connection before its answer."""
        self._lose_buys = n

    def delay_buys(self, n: int, seconds: float) -> None:
        """Makes the next `n` buys wait `seconds` before they are applied: a buy still running
        upstream after the client gave up waiting for it."""
        with self._lock:
            self._late_buys = [seconds] * n

    def labels_bought(self, reference: str) -> int:
        """How many shipments carrying `reference` have a label: one, for an order shipped once."""
        with self._lock:
            return sum(1 for s in self.shipments.values() if s.reference == reference and s.tracking_code)

    def route_tracker(self, tracking_code: str, route: str) -> None:
        """Sends a parcel along another route from here on (`delivered`, `failure`, `return_to_sender`)."""
        if route not in ROUTES:
            raise ValueError(f"route must be one of {', '.join(ROUTES)}")
        with self._lock:
            tracker = next((t for t in self.trackers.values() if t.tracking_code == tracking_code), None)
            if tracker is None:
                raise ValueError("no tracker has that tracking code")
            tracker.route = route

    # -- plumbing -----------------------------------------------------------------------------

    def _guarded(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                self._authenticate(request)
                return await handler(request)
            except Problem as problem:
                return problem.response()

        return endpoint

    def _authenticate(self, request: Request) -> None:
        """The API key as the HTTP Basic user; EasyPost ignores the password."""
        header = request.headers.get("authorization", "")
        if header[:6].lower() != "basic ":
            raise Problem(401, "APIKEY.REQUIRED", "No API key provided.")
        try:
            key = base64.b64decode(header[6:], validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            key = ""
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise Problem(401, "APIKEY.INACTIVE", "The API key provided is not valid.")

    async def _throttled(self, _request: Request) -> Response:
        return Problem(429, "RATE_LIMITED", "You have exceeded the rate limit. Please retry later."
                       ).response({"Retry-After": str(self.retry_after)})

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):032x}"

    def _find_shipment(self, wanted: str) -> Shipment:
        """A shipment by id or, as EasyPost allows, by its reference (the newest carrying it)."""
        found = self.shipments.get(wanted) or next(
            (s for s in reversed(self.shipments.values()) if s.reference == wanted), None)
        if found is None:
            raise Problem(404, "NOT_FOUND", "The requested resource could not be found.")
        return found

    # -- addresses ----------------------------------------------------------------------------

    async def _create_address(self, request: Request) -> Response:
        body = await _json_body(request)
        address = body.get("address")
        if not isinstance(address, dict):
            raise Problem(422, "PARAMETER.REQUIRED", "Missing required parameter: address.")
        answer = {"id": self._next_id("adr"), "object": "Address", "mode": "test", **address,
                  "verifications": {}}
        if "verify" in body or "verify_strict" in body:
            errors = _address_errors(address)
            if errors and "verify_strict" in body:
                raise Problem(422, "ADDRESS.VERIFY.FAILURE", errors[0]["message"], errors)
            answer["verifications"]["delivery"] = {"success": not errors, "errors": errors, "details": None}
        return JSONResponse(answer, 201)

    # -- shipments ----------------------------------------------------------------------------

    async def _shipments(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._create_shipment(request)
        query = request.query_params
        try:
            size = min(MAX_PAGE_SIZE, max(1, int(query.get("page_size", 20))))
            since = datetime.fromisoformat(query["start_datetime"].replace("Z", "+00:00")) \
                if "start_datetime" in query else None
        except ValueError:
            raise Problem(422, "PARAMETER.INVALID", "page_size or start_datetime is invalid.") from None
        with self._lock:
            found = sorted(self.shipments.values(), key=lambda s: s.id, reverse=True)  # newest first
            if "before_id" in query:
                found = [s for s in found if s.id < query["before_id"]]
            if query.get("purchased") in ("true", "false"):
                found = [s for s in found if bool(s.tracking_code) == (query["purchased"] == "true")]
            if since is not None:
                found = [s for s in found if s.created_at >= since]
            return JSONResponse({"shipments": [s.render() for s in found[:size]], "has_more": len(found) > size})

    async def _create_shipment(self, request: Request) -> Response:
        body = (await _json_body(request)).get("shipment")
        if not isinstance(body, dict) or not all(isinstance(body.get(k), dict)
                                                 for k in ("from_address", "to_address", "parcel")):
            raise Problem(422, "SHIPMENT.INVALID_PARAMS", "from_address, to_address and parcel are required.")
        options = body.get("options") if isinstance(body.get("options"), dict) else {}
        label_format = str(options.get("label_format") or "PNG").upper()
        if label_format not in ("PNG", *LABEL_FILES):
            raise Problem(422, "SHIPMENT.OPTIONS.INVALID", f"label_format {label_format} is not offered here.")
        weight = body["parcel"].get("weight")
        if not isinstance(weight, int | float) or isinstance(weight, bool) or weight <= 0:
            raise Problem(422, "PARCEL.WEIGHT.INVALID", "Parcel weight must be greater than 0.",
                          [{"field": "weight", "message": "must be greater than 0", "suggestion": None}])
        now = datetime.now(UTC).replace(microsecond=0)
        with self._lock:
            shipment_id = self._next_id("shp")
            rates = [rate(next(self._ids), shipment_id, service, weight, now) for service in SERVICES]
            request_part = {k: {"object": k.split("_")[-1].title(), **body[k]}
                            for k in ("from_address", "to_address", "parcel")}
            shipment = Shipment(shipment_id, body.get("reference"), now, request_part, rates,
                                label_format=label_format)
            self.shipments[shipment_id] = shipment
            return JSONResponse(shipment.render(), 201)

    async def _shipment(self, request: Request) -> Response:
        with self._lock:
            return JSONResponse(self._find_shipment(request.path_params["id"]).render())

    async def _buy(self, request: Request) -> Response:
        body = await _json_body(request)
        rate_id = body.get("rate", {}).get("id") if isinstance(body.get("rate"), dict) else None
        with self._lock:  # counted as it arrives, however late it is applied
            shipment = self._find_shipment(request.path_params["id"])
            self.buy_requests[shipment.id] += 1
            self.buy_keys.setdefault(shipment.id, []).append(request.headers.get("idempotency-key"))
            late, self._late_buys = self._late_buys[:1], self._late_buys[1:]
        if late:
            await asyncio.sleep(late[0])
        with self._lock:
            if shipment.tracking_code:
                raise Problem(422, "SHIPMENT.POSTAGE.FAILURE", "This shipment already has postage.")
            chosen = next((r for r in shipment.rates if r["id"] == rate_id), None)
            if chosen is None:
                raise Problem(422, "SHIPMENT.RATE.NOT_FOUND", "The rate is not one of this shipment's rates.")
            number = next(self._ids)
            shipment.selected_rate = chosen
            shipment.tracking_code = ("9400" if chosen["carrier"] == "USPS" else "1Z") + f"{number:018d}"
            shipment.label_url = f"{str(request.base_url).rstrip('/')}/labels/{shipment.id}.png"
            tracker = Tracker(self._next_id("trk"), shipment.tracking_code, chosen["carrier"], shipment.id,
                              datetime.now(UTC).replace(microsecond=0))
            self.trackers[tracker.id] = tracker
            shipment.tracker_id = tracker.id
            if self._lose_buys > 0:
                self._lose_buys -= 1
                return DroppedAnswer()
            return JSONResponse(shipment.render())

    async def _label_file(self, request: Request) -> Response:
        """A bought label's file: the PNG always, the PDF or ZPL when the shipment asked for it."""
        extension = request.path_params["extension"]
        with self._lock:
            shipment = self.shipments.get(request.path_params["id"])
            made = {"png"} | ({LABEL_FILES[shipment.label_format][1]} if shipment and shipment.label_format in LABEL_FILES
                              else set())
            if shipment is None or not shipment.tracking_code or extension not in made:
                return Response(b"<Error><Code>NoSuchKey</Code></Error>", 404, media_type="application/xml")
            code, chosen, ship_to = shipment.tracking_code, shipment.selected_rate or {}, shipment.request["to_address"]
        if extension == "pdf":
            return Response(label_pdf(code, str(chosen.get("carrier")), str(chosen.get("service")), ship_to),
                            media_type="application/pdf")
        if extension == "zpl":
            return Response(label_zpl(code, str(chosen.get("carrier")), str(chosen.get("service"))),
                            media_type="application/zpl")
        return Response(LABEL_PNG, media_type="image/png")

    # -- trackers -----------------------------------------------------------------------------

    async def _create_tracker(self, request: Request) -> Response:
        """A tracker for a number; one the account already tracks is answered as it stands."""
        body = (await _json_body(request)).get("tracker")
        code = str(body.get("tracking_code") or "").strip() if isinstance(body, dict) else ""
        if not code:
            raise Problem(422, "TRACKER.TRACKING_CODE.REQUIRED", "A tracking_code is required.")
        with self._lock:
            tracker = next((t for t in self.trackers.values() if t.tracking_code == code), None)
            if tracker is None:
                carrier = str(body.get("carrier") or "USPS")
                tracker = Tracker(self._next_id("trk"), code, carrier, None, datetime.now(UTC).replace(microsecond=0))
                self.trackers[tracker.id] = tracker
            return JSONResponse(tracker.render(), 201)

    async def _tracker(self, request: Request) -> Response:
        with self._lock:
            tracker = self.trackers.get(request.path_params["id"])
            if tracker is None:
                raise Problem(404, "NOT_FOUND", "The requested resource could not be found.")
            tracker.advance(datetime.now(UTC).replace(microsecond=0))
            return JSONResponse(tracker.render())

    # -- control HTTP -------------------------------------------------------------------------

    async def _control(self, request: Request, act: Callable[[dict[str, Any]], Any]) -> Response:
        try:
            return JSONResponse(act(await _json_body(request)))
        except (Problem, ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    async def _post_faults(self, request: Request) -> Response:
        return await self._control(request, lambda body: self.set_faults(**body) or self.stats)

    async def _post_lose_buys(self, request: Request) -> Response:
        def lose(body: dict[str, Any]) -> dict[str, int]:
            self.lose_buy_responses(int(body.get("count", 1)))
            return {"losing": self._lose_buys}

        return await self._control(request, lose)

    async def _post_route(self, request: Request) -> Response:
        code = request.path_params["code"]
        return await self._control(request, lambda body: self.route_tracker(code, str(body.get("route")))
                                   or {"tracking_code": code, "route": body.get("route")})


def create_easypost_app(api_key: str = DEFAULT_KEY, faults: Faults | None = None,
                        retry_after: int = 1) -> EasyPostSandbox:
    """An EasyPost sandbox wrapped in fault injection; serve it with `serve_in_thread`."""
    return EasyPostSandbox(api_key, faults, retry_after)


__all__ = ["DEFAULT_KEY", "EasyPostSandbox", "create_easypost_app"]
