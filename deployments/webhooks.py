"""`clerk webhooks`: files verified deliveries and starts the flow they concern: Shopify's and
WooCommerce's start order intake, EasyPost's (tracker events) start track-shipments.

`POST /webhooks/shopify`, `/webhooks/woocommerce` and `/webhooks/easypost` answer:

- 404 when the channel has no webhook secret set (the route does not exist);
- 200, nothing stored, for WooCommerce's unsigned `webhook_id=N` ping, sent when a
  webhook is saved (WooCommerce refuses to save one whose URL does not answer 2xx);
- 401, nothing stored, for a bad or missing signature, a Shopify delivery or EasyPost event
  sent more than `webhook_max_age_seconds` ago or over a minute in the future, and a delivery
  (or event) id already stored (a replay);
- 400, nothing stored, for a signed delivery missing a header the clerk files it by;
- 200 once the delivery is committed; its flow is then triggered after the response
  has gone, at most once per channel per debounce window, and once more when a window in
  which further deliveries came closes.

A delivery is only a nudge: intake and tracking read from the vendor's API, and their
schedules are the safety net for a trigger that fails or a delivery that never comes.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from integrations.settings import Settings
from integrations.webhooks import (
    EASYPOST,
    SHOPIFY,
    WOOCOMMERCE,
    Delivery,
    MalformedDelivery,
    is_fresh,
    is_woocommerce_ping,
    read_delivery,
    verify_signature,
)
from models.webhooks import record_event

log = logging.getLogger("clerk.webhooks")

# What a delivery nudges: a storefront's, order intake; a carrier's, tracking.
FOLLOW_UPS = {SHOPIFY: "order-intake/order-intake", WOOCOMMERCE: "order-intake/order-intake",
              EASYPOST: "track-shipments/track-shipments"}
DEBOUNCE_SECONDS = 30.0

Trigger = Callable[[str], None]


def start_follow_up(sender: str) -> None:
    """Starts the deployment a sender's deliveries nudge, without waiting for it; without a
    Prefect API, logs (the schedule picks it up)."""
    if not os.environ.get("PREFECT_API_URL"):
        log.info("%s delivery stored; no Prefect API set, so the next scheduled run picks it up", sender)
        return
    from prefect.deployments import run_deployment

    # The whole flow, not one channel's part: a run is cheap when nothing changed, and a
    # channel that intake does not know yet would fail a run scoped to it.
    run_deployment(FOLLOW_UPS[sender], timeout=0)


def _start_timer(delay: float, action: Callable[[], None]) -> None:
    timer = threading.Timer(delay, action)
    timer.daemon = True  # a pending trailing run must not keep the server from stopping
    timer.start()


class Debounce:
    """At most one go per key per window, plus one at the window's end for what came during it.

    The leading go starts intake at once. Deliveries inside the window are folded into one
    trailing go when it closes: the leading run may already have read past the order a later
    delivery announces, and without the trailing run that order would wait for the schedule.
    """

    def __init__(
        self,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
        later: Callable[[float, Callable[[], None]], None] = _start_timer,
    ) -> None:
        self._seconds = seconds
        self._clock = clock
        self._later = later
        self._last: dict[str, float] = {}
        self._trailing: set[str] = set()
        self._lock = threading.Lock()

    def ready(self, key: str, action: Callable[[], None]) -> bool:
        """True, and the window restarts, when the key's last go is a window or more ago;
        otherwise `action` is scheduled once for the window's end and False returned."""
        with self._lock:
            now = self._clock()
            last = self._last.get(key)
            if last is None or now - last >= self._seconds:
                self._last[key] = now
                return True
            if key not in self._trailing:
                self._trailing.add(key)
                self._later(last + self._seconds - now, lambda: self._go(key, action))
            return False

    def _go(self, key: str, action: Callable[[], None]) -> None:
        with self._lock:
            self._trailing.discard(key)
            self._last[key] = self._clock()
        action()


def create_webhook_app(
    settings: Settings, trigger: Trigger = start_follow_up, debounce: Debounce | None = None
) -> Starlette:
    """The ASGI app: one route per sender whose webhook secret is set."""
    secrets = {SHOPIFY: settings.shopify_webhook_secret, WOOCOMMERCE: settings.woocommerce_webhook_secret,
               EASYPOST: settings.easypost_webhook_secret}
    debounce = debounce or Debounce(DEBOUNCE_SECONDS)
    routes = [
        Route(f"/webhooks/{channel}", _receiver(channel, secret, settings, trigger, debounce), methods=["POST"])
        for channel, secret in secrets.items()
        if secret
    ]
    return Starlette(routes=routes)


def _receiver(
    channel: str, secret: str, settings: Settings, trigger: Trigger, debounce: Debounce
) -> Callable[[Request], Awaitable[Response]]:
    async def receive(request: Request) -> Response:
        body = await request.body()  # the raw bytes: the signature covers exactly these
        if channel == WOOCOMMERCE and is_woocommerce_ping(request.headers, body):
            log.info("woocommerce ping answered")
            return PlainTextResponse("ok")
        if not verify_signature(channel, secret, request.headers, body):
            # The headers are unproven here: the delivery id is not worth logging.
            log.warning("%s delivery refused: bad or missing signature", channel)
            return _refused()
        try:
            delivery = read_delivery(channel, request.headers, body)
        except MalformedDelivery as exc:
            log.warning("%s delivery refused: %s", channel, exc)
            return PlainTextResponse("malformed delivery", status_code=400)
        if not is_fresh(delivery, datetime.now(UTC), settings.webhook_max_age_seconds):
            _log(delivery, "refused: stale or future send time", logging.WARNING)
            return _refused()
        stored = await run_in_threadpool(
            record_event,
            settings.database_url,
            channel=channel,
            delivery_id=delivery.delivery_id,
            topic=delivery.topic,
            triggered_at=delivery.triggered_at,
            # Vendors send UTF-8 JSON; a stray byte is replaced rather than losing the event.
            body=body.decode("utf-8", errors="replace"),
        )
        if not stored:
            # A replay is refused with 401 like a forgery, not acknowledged with 200 or 409:
            # the clerk's rule is "bad or replayed deliveries are rejected, nothing stored".
            # The first copy is already stored and triggered, so nothing is lost.
            _log(delivery, "refused: delivery id already stored", logging.WARNING)
            return _refused()
        _log(delivery, "stored", logging.INFO)
        def start() -> None:
            _start_intake(trigger, channel)

        return PlainTextResponse("stored", background=BackgroundTask(start) if debounce.ready(channel, start) else None)

    return receive


def _start_intake(trigger: Trigger, channel: str) -> None:
    try:
        trigger(channel)
    except Exception as exc:
        # The event is committed and the schedule polls anyway: a failed trigger only delays.
        log.warning("could not start order intake for %s (%s: %s); the schedule will", channel, type(exc).__name__, exc)


def _refused() -> Response:
    return PlainTextResponse("refused", status_code=401)


def _log(delivery: Delivery, outcome: str, level: int) -> None:
    # Channel, topic and ids only: bodies hold customers' names, emails and addresses.
    log.log(level, "%s %s delivery %s (resource %s) %s",
            delivery.channel, delivery.topic, delivery.delivery_id, delivery.resource_id or "-", outcome)


def serve_webhooks(host: str, port: int) -> int:
    """Serves the webhook endpoint with uvicorn until stopped; 2 when no channel has a secret."""
    import uvicorn

    from deployments.runs import install_redaction
    from integrations.settings import cached_settings
    from models.db import upgrade

    settings = cached_settings()
    if not (settings.shopify_webhook_secret or settings.woocommerce_webhook_secret or settings.easypost_webhook_secret):
        print("error: set CLERK_SHOPIFY_WEBHOOK_SECRET, CLERK_WOOCOMMERCE_WEBHOOK_SECRET or CLERK_EASYPOST_WEBHOOK_SECRET",
              file=sys.stderr)
        return 2
    upgrade(settings.database_url)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_redaction()
    uvicorn.run(create_webhook_app(settings), host=host, port=port)
    return 0
