"""A local server speaking Stripe's API for payments and refunds, over the seeded store.

Every paid order the store took through Stripe (open, fulfilled or closed) has one
succeeded PaymentIntent (`store.payment_intent_id(order.id)`, the id every channel sandbox
renders) and its Charge for what the buyer paid; `add_payment` adds others. Like Stripe it takes
the secret key as a Bearer token, reads form-encoded
bodies, answers `{"error": {"type", "code", "message", "param"}}` on refusals, refuses a
refund over what is left (`amount_too_large`), of a charge fully refunded
(`charge_already_refunded`) or disputed (`charge_disputed`), and honours `Idempotency-Key`:
the same key with the same parameters replays the saved answer (`Idempotent-Replayed:
true`), with other parameters it is an `idempotency_error`, and while the first request
with a key is still running another gets 409 `idempotency_key_in_use`. As Stripe saves no
result for a request that failed validation, only created refunds are saved;
`remember_keys=False` (or `forget_keys()`) prunes them as Stripe does after 24 hours.

A refund is created `pending` and settles on a read of `GET /v1/refunds/{id}` once it has
been read `settle_after_reads` times (or is `settle_after_seconds` old): `succeeded`, or
`failed` for a payment named in `fail_refunds`. `refunds_created` counts refunds actually
made (a replay makes none), `refund_keys` the Idempotency-Key of every refund post that
arrived; `lose_refund_responses(rate)` makes refunds and then drops their answers (a cut
connection or a 500), the worst a network can do to a client, and `delay_refunds(n, s)`
makes the next n refunds only after `s` seconds. Control endpoints under `/sandbox/` are
never faulted and need no auth.
"""

from __future__ import annotations

import asyncio
import hmac
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import count
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from domain.money import is_known_currency
from domain.orders import Lifecycle
from integrations.sandbox.faults import FaultInjector, Faults
from integrations.sandbox.store import Store, payment_gateway, payment_intent_id
from integrations.sandbox.stripe.render import Charge, RefundRecord, charge_id, error_body
from integrations.sandbox.woocommerce import DroppedAnswer
from integrations.stripe.mapping import API_VERSION, MAX_PAGE_SIZE, REASONS, to_minor

DEFAULT_KEY = "sk_test_sandbox"
API = "/v1"
PAID = (Lifecycle.OPEN, Lifecycle.FULFILLED, Lifecycle.CLOSED)
# The parameters `POST /v1/refunds` takes (the spec's request body); any other is refused.
REFUND_PARAMS = frozenset({"amount", "charge", "currency", "customer", "expand", "instructions_email", "metadata",
                           "origin", "payment_intent", "reason", "refund_application_fee", "reverse_transfer"})

Handler = Callable[[Request], Awaitable[Response]]


class Problem(Exception):
    """A request Stripe would refuse: answered in its error shape."""

    def __init__(self, status: int, kind: str, message: str, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.body = status, error_body(kind, message, code, param)

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(self.body, self.status, headers)


def _invalid(message: str, code: str | None = None, param: str | None = None, status: int = 400) -> Problem:
    return Problem(status, "invalid_request_error", message, code, param)


@dataclass(frozen=True, slots=True)
class _Saved:
    """The answer saved for an idempotency key, and the parameters it was made with."""

    params: tuple[tuple[str, str], ...]
    body: dict[str, Any]


class LostAnswer(Response):
    """A 500 sent after the refund was made: the write stands, the client is told it failed."""

    def __init__(self) -> None:
        super().__init__(b'{"error": {"type": "api_error", "message": "An unknown error occurred"}}', 500,
                         media_type="application/json")


async def _received(receive: Receive) -> Receive:
    """The request body read in full before any fault: a post that arrived is carried out
    even when its client hangs up while a `timeout` fault holds it, as Stripe would."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return receive  # the client left before its body arrived: nothing to carry out
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


class StripeSandbox:
    """The Stripe sandbox: an ASGI app (faults in front) and handles on what it refunded."""

    def __init__(self, store: Store | None = None, api_key: str = DEFAULT_KEY, faults: Faults | None = None,
                 retry_after: int = 1, settle_after_reads: int | None = 2, settle_after_seconds: float | None = None,
                 remember_keys: bool = True):
        self.api_key = api_key
        self.faults = faults or Faults()
        self.retry_after = retry_after
        self.settle_after_reads = settle_after_reads
        self.settle_after_seconds = settle_after_seconds
        self.remember_keys = remember_keys
        self.charges: dict[str, Charge] = {}
        self.payment_intents: dict[str, Charge] = {}
        self.refunds: dict[str, RefundRecord] = {}  # in the order made
        self.refund_keys: list[str | None] = []  # Idempotency-Key of each refund post that arrived
        self.replays = 0
        self.conflicts = 0  # posts answered 409 while their key was in flight
        self.lost = 0  # refunds made whose answers were lost
        self._failing: dict[str, str] = {}  # payment -> failure_reason its refunds end with
        self._saved: dict[str, _Saved] = {}
        self._in_flight: set[str] = set()
        self._lose_rate = 0.0
        self._lose_rng = random.Random(self.faults.seed)
        self._late: list[float] = []
        self._ids = count(1)
        self._lock = threading.Lock()
        if store is not None:
            self._seed(store)
        api = [
            ("/payment_intents/{id}", self._payment_intent, ["GET"]),
            ("/charges/{id}", self._charge, ["GET"]),
            ("/refunds", self._refunds, ["GET", "POST"]),
            ("/refunds/{id}", self._refund, ["GET"]),
        ]
        routes = [Route(API + path, self._guarded(handler), methods=methods) for path, handler, methods in api]
        routes += [
            Route("/sandbox/stats", lambda _r: JSONResponse(self.stats), methods=["GET"]),
            Route("/sandbox/faults", self._post_faults, methods=["POST"]),
        ]
        self.app = FaultInjector(Starlette(routes=routes), self.faults, self._throttled)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            receive = await _received(receive)
        await self.app(scope, receive, send)

    def _seed(self, store: Store) -> None:
        """A PaymentIntent for each paid order the store took through Stripe, for what the
        buyer paid: Magento converts orders shipped abroad to their own currency, so those
        are charged as Magento shows them."""
        from integrations.sandbox.magento.render import Renderer

        magento = Renderer(store)
        with store.lock:
            for order in store.orders:
                if order.lifecycle not in PAID or payment_gateway(order.id) != "stripe" \
                        or not is_known_currency(order.currency):
                    continue
                try:
                    if order.channel == "magento":
                        paid = magento.refundable(order)
                        amount, currency = paid.total, paid.rate.currency
                    else:
                        amount, currency = to_minor(Decimal(order.total), order.currency), order.currency
                except (InvalidOperation, ValueError):
                    continue  # a malformed total was never charged
                if amount and amount > 0:
                    self._add(payment_intent_id(order.id), amount, currency, int(order.processed_at.timestamp()))

    def _add(self, reference: str, amount: int, currency: str, created: int) -> str:
        intent = reference if reference.startswith("pi_") else None
        charge = Charge(charge_id(reference) if intent else reference, amount, currency.lower(), created, intent)
        self.charges[charge.id] = charge
        if intent:
            self.payment_intents[intent] = charge
        return charge.id

    # -- the Python face for tests --------------------------------------------------------------

    def add_payment(self, reference: str, amount: Decimal, currency: str) -> str:
        """A succeeded payment of `amount`: a PaymentIntent (`pi_...`) and its charge, or a bare
        charge (`ch_...`). Returns the charge's id."""
        if not reference.startswith(("pi_", "ch_")):
            raise ValueError("a payment reference starts with pi_ or ch_")
        with self._lock:
            return self._add(reference, to_minor(amount, currency), currency, int(time.time()))

    def fail_refunds(self, reference: str, reason: str = "expired_or_canceled_card") -> None:
        """Refunds of the payment `reference` (PaymentIntent or charge) end `failed` with `reason`."""
        with self._lock:
            self._failing[reference] = reason

    def dispute(self, reference: str) -> None:
        """The buyer disputed the payment: Stripe refuses refunds of it (`charge_disputed`)."""
        with self._lock:
            self._charge_of(reference).disputed = True

    def lose_refund_responses(self, rate: float) -> None:
        """Makes each refund, then loses its answer with probability `rate` (seeded)."""
        with self._lock:
            self._lose_rate = rate

    def delay_refunds(self, n: int, seconds: float) -> None:
        """Makes the next `n` refunds only `seconds` after their post arrived: still running
        upstream after the client gave up waiting."""
        with self._lock:
            self._late = [seconds] * n

    def forget_keys(self) -> None:
        """Prunes every saved idempotency key, as Stripe does once they are 24 hours old."""
        with self._lock:
            self._saved.clear()

    def refunds_created(self, payment: str | None = None) -> int:
        """Refunds made (replays make none), of one payment (PaymentIntent or charge) or all."""
        with self._lock:
            return sum(1 for r in self.refunds.values()
                       if payment is None or payment in (r.charge.id, r.charge.payment_intent))

    def set_faults(self, **rates: float) -> None:
        """Changes fault rates (`error_rate=1.0`, ...; `seed` reseeds)."""
        self.faults.update(**rates)

    @property
    def stats(self) -> dict[str, Any]:
        """Payments, refunds made, refund posts, replays, conflicts, lost answers, and faults injected."""
        with self._lock:
            return {"payments": len(self.charges), "refunds": len(self.refunds),
                    "refund_posts": len(self.refund_keys), "replays": self.replays, "conflicts": self.conflicts,
                    "lost": self.lost, "faults": dict(self.faults.injected)}

    # -- plumbing -------------------------------------------------------------------------------

    def _guarded(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                self._authenticate(request)
                response = await handler(request)
            except Problem as problem:
                response = problem.response()
            response.headers["Request-Id"] = f"req_{next(self._ids):014d}"
            response.headers["Stripe-Version"] = request.headers.get("stripe-version", API_VERSION)
            return response

        return endpoint

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        if header[:7].lower() != "bearer " or not header[7:].strip():
            raise _invalid("You did not provide an API key. You need to provide your API key in the Authorization "
                           "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').", status=401)
        given = header[7:].strip()
        if not hmac.compare_digest(given.encode(), self.api_key.encode()):
            # Stripe shows only the key's last four characters back.
            raise _invalid(f"Invalid API Key provided: {given[:8]}****{given[-4:]}", status=401)

    async def _throttled(self, _request: Request) -> Response:
        return _invalid("Too many requests hit the API too quickly.", "rate_limit", status=429
                        ).response({"Retry-After": str(self.retry_after)})

    def _charge_of(self, reference: str) -> Charge:
        """The charge of a PaymentIntent or a charge id; hold `_lock`."""
        found = self.payment_intents.get(reference) or self.charges.get(reference)
        if found is None:
            kind = "payment_intent" if reference.startswith("pi_") else "charge"
            raise _invalid(f"No such {kind}: '{reference}'", "resource_missing", kind, status=404)
        return found

    # -- payments -------------------------------------------------------------------------------

    async def _payment_intent(self, request: Request) -> Response:
        wanted = request.path_params["id"]
        expand = {v for k, v in request.query_params.multi_items() if k.startswith("expand")}
        with self._lock:
            charge = self.payment_intents.get(wanted)
            if charge is None:
                raise _invalid(f"No such payment_intent: '{wanted}'", "resource_missing", "intent", status=404)
            return JSONResponse(charge.render_payment_intent("latest_charge" in expand))

    async def _charge(self, request: Request) -> Response:
        wanted = request.path_params["id"]
        with self._lock:
            charge = self.charges.get(wanted)
            if charge is None:
                raise _invalid(f"No such charge: '{wanted}'", "resource_missing", "id", status=404)
            return JSONResponse(charge.render())

    # -- refunds --------------------------------------------------------------------------------

    async def _refunds(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._create_refund(request)
        query = request.query_params
        try:
            limit = int(query.get("limit", 10))
        except ValueError:
            raise _invalid("Invalid integer: limit", "parameter_invalid_integer", "limit") from None
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise _invalid(f"This value must be between 1 and {MAX_PAGE_SIZE}.", "parameter_invalid_integer", "limit")
        with self._lock:
            found = list(reversed(self.refunds.values()))  # newest first
            for name in ("charge", "payment_intent"):
                if name in query:
                    charge = self._charge_of(query[name])
                    found = [r for r in found if r.charge is charge]
            if "starting_after" in query:
                ids = [r.id for r in found]
                if query["starting_after"] not in ids:
                    raise _invalid(f"No such refund: '{query['starting_after']}'", "resource_missing",
                                   "starting_after", status=404)
                found = found[ids.index(query["starting_after"]) + 1:]
            return JSONResponse({"object": "list", "data": [r.render() for r in found[:limit]],
                                 "has_more": len(found) > limit, "url": "/v1/refunds"})

    async def _refund(self, request: Request) -> Response:
        wanted = request.path_params["id"]
        with self._lock:
            refund = self.refunds.get(wanted)
            if refund is None:
                raise _invalid(f"No such refund: '{wanted}'", "resource_missing", "id", status=404)
            self._settle(refund)
            refund.reads += 1
            return JSONResponse(refund.render())

    def _settle(self, refund: RefundRecord) -> None:
        """A pending refund read often enough, or old enough, succeeds or fails; hold `_lock`."""
        if refund.status != "pending":
            return
        by_reads = self.settle_after_reads is not None and refund.reads >= self.settle_after_reads
        by_age = self.settle_after_seconds is not None and time.monotonic() - refund.born >= self.settle_after_seconds
        if not (by_reads or by_age):
            return
        failure = self._failing.get(refund.charge.id) or self._failing.get(refund.charge.payment_intent or "")
        refund.status, refund.failure_reason = ("failed", failure) if failure else ("succeeded", None)

    async def _create_refund(self, request: Request) -> Response:
        params = tuple(sorted(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)))
        key = request.headers.get("idempotency-key")
        with self._lock:
            self.refund_keys.append(key)
            if key is not None:
                if key in self._in_flight:
                    self.conflicts += 1
                    raise _invalid("There is currently another in-progress request using this idempotent key (that "
                                   f"probably means you submitted twice, and the other request is still going "
                                   f"through): {key}. Please try again later.", "idempotency_key_in_use", status=409)
                saved = self._saved.get(key)
                if saved is not None:
                    if saved.params != params:
                        raise Problem(400, "idempotency_error", "Keys for idempotent requests can only be used with "
                                      "the same parameters they were first used with. Try using a key other than "
                                      f"'{key}' if you meant to execute a different request.")
                    self.replays += 1
                    return JSONResponse(saved.body, headers={"Idempotent-Replayed": "true", "Idempotency-Key": key})
                self._in_flight.add(key)
            late, self._late = self._late[:1], self._late[1:]
        try:
            if late:
                await asyncio.sleep(late[0])
            with self._lock:
                body = self._make_refund(dict(params)).render()
                if key is not None and self.remember_keys:
                    self._saved[key] = _Saved(params, body)
                if self._lose_rate and self._lose_rng.random() < self._lose_rate:
                    self.lost += 1
                    return DroppedAnswer() if self._lose_rng.random() < 0.5 else LostAnswer()
        finally:
            with self._lock:
                self._in_flight.discard(key or "")
        return JSONResponse(body, headers={"Idempotency-Key": key} if key else None)

    def _make_refund(self, params: dict[str, str]) -> RefundRecord:
        """Checks a refund's parameters as Stripe does, then makes it; hold `_lock`."""
        unknown = sorted({name.partition("[")[0] for name in params} - REFUND_PARAMS)
        if unknown:
            raise _invalid(f"Received unknown parameter: {unknown[0]}", "parameter_unknown", unknown[0])
        named = [name for name in ("payment_intent", "charge") if params.get(name)]
        if len(named) != 1:
            raise _invalid("Exactly one of the following params should be provided for this request: "
                           "payment_intent or charge.", "parameter_missing" if not named else "parameter_invalid")
        charge = self._charge_of(params[named[0]])
        left = charge.amount - charge.amount_refunded
        raw = params.get("amount")
        amount = left if raw is None else int(raw) if raw.isascii() and raw.isdigit() else 0
        if amount <= 0:
            raise _invalid(f"Invalid positive integer: {raw}", "parameter_invalid_integer", "amount")
        reason = params.get("reason") or None
        if reason is not None and reason not in REASONS:
            raise _invalid(f"Invalid reason: must be one of {', '.join(sorted(REASONS))}",
                           "parameter_invalid_string", "reason")
        if charge.disputed:
            raise _invalid(f"Charge {charge.id} has been charged back; cannot issue a refund.", "charge_disputed")
        if left <= 0:
            raise _invalid(f"Charge {charge.id} has already been refunded.", "charge_already_refunded")
        if amount > left:
            raise _invalid(f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                           "amount_too_large", "amount")
        metadata = {name[len("metadata["):-1]: value for name, value in params.items()
                    if name.startswith("metadata[") and name.endswith("]") and value}
        refund = RefundRecord(f"re_{charge.id[3:11]}{next(self._ids):016d}", charge, amount, int(time.time()),
                              time.monotonic(), metadata, reason)
        charge.refunds.append(refund)
        self.refunds[refund.id] = refund
        return refund

    # -- control HTTP ---------------------------------------------------------------------------

    async def _post_faults(self, request: Request) -> Response:
        try:
            self.set_faults(**(await request.json()))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.stats)


def create_stripe_app(store: Store | None = None, api_key: str = DEFAULT_KEY, faults: Faults | None = None,
                      **options: Any) -> StripeSandbox:
    """A Stripe sandbox over `store`, wrapped in fault injection; serve it with `serve_in_thread`.

    `options` are `StripeSandbox`'s: `retry_after`, `settle_after_reads`, `settle_after_seconds`,
    `remember_keys`.
    """
    return StripeSandbox(store, api_key, faults, **options)


__all__ = ["DEFAULT_KEY", "StripeSandbox", "charge_id", "create_stripe_app", "payment_intent_id"]
