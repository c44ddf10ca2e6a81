"""The webhook endpoint on both databases: verified deliveries stored once, intake nudged once."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, select
from starlette.applications import Starlette

from deployments.cli import build_parser
from deployments.webhooks import FOLLOW_UPS, Debounce, create_webhook_app, serve_webhooks, start_follow_up
from integrations.settings import Settings
from models import WebhookEvent
from models.db import MIGRATIONS, engine_for, unit_of_work, upgrade

SHOPIFY_SECRET = "shpss_test_secret"
WOOCOMMERCE_SECRET = "wc_test_secret"
EASYPOST_SECRET = "ep_test_secret"
ORDER = b'{"id":5100000001,"email":"jon@example.com","line_items":[{"sku":"MUG-1","quantity":2}]}'


def _sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _shopify(body: bytes, delivery_id: str = "wh-1", *, secret: str = SHOPIFY_SECRET, sent_ago: timedelta = timedelta(0)) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Hmac-Sha256": _sign(secret, body),
        "X-Shopify-Shop-Domain": "clerk-test.myshopify.com",
        "X-Shopify-API-Version": "2026-10",
        "X-Shopify-Webhook-Id": delivery_id,
        "X-Shopify-Event-Id": f"event-{delivery_id}",
        "X-Shopify-Triggered-At": (datetime.now(UTC) - sent_ago).isoformat().replace("+00:00", "Z"),
    }


def _woocommerce(body: bytes, delivery_id: str = "wh-1", *, secret: str = WOOCOMMERCE_SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": "https://shop.example.com/",
        "X-WC-Webhook-Topic": "order.created",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "created",
        "X-WC-Webhook-Signature": _sign(secret, body),
        "X-WC-Webhook-ID": "14",
        "X-WC-Webhook-Delivery-ID": delivery_id,
    }


HEADERS = {"shopify": _shopify, "woocommerce": _woocommerce}


class Triggers:
    """A stand-in for starting the deployment: records the channels it was asked for."""

    def __init__(self, error: Exception | None = None) -> None:
        self.channels: list[str] = []
        self.error = error

    def __call__(self, channel: str) -> None:
        self.channels.append(channel)
        if self.error:
            raise self.error


class Vendor:
    """Posts deliveries to the app in-process, as a vendor would; answers the status code."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def post(self, path: str, *, content: bytes, headers: dict[str, str]) -> int:
        async def deliver() -> int:
            # ASGITransport returns once the app is done, background trigger included.
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://clerk.test") as client:
                return (await client.post(path, content=content, headers=headers)).status_code

        return asyncio.run(deliver())


class Later:
    """A stand-in for the debounce's timer: records what was scheduled; `run` fires it."""

    def __init__(self) -> None:
        self.scheduled: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, delay: float, action: Callable[[], None]) -> None:
        self.scheduled.append((delay, action))

    def run(self) -> None:
        due, self.scheduled = self.scheduled, []
        for _, action in due:
            action()


def _client(
    url: str, triggers: Triggers, debounce_seconds: float = 30, later: Later | None = None, **settings: object
) -> Vendor:
    secrets: dict[str, object] = {"shopify_webhook_secret": SHOPIFY_SECRET, "woocommerce_webhook_secret": WOOCOMMERCE_SECRET,
                                  "easypost_webhook_secret": EASYPOST_SECRET}
    configured = Settings(_env_file=None, database_url=url, **(secrets | settings))  # type: ignore[call-arg]
    debounce = Debounce(debounce_seconds, later=later or Later())
    return Vendor(create_webhook_app(configured, trigger=triggers, debounce=debounce))


def _events(url: str) -> list[WebhookEvent]:
    with unit_of_work(url) as session:
        return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


@pytest.mark.parametrize("channel", ["shopify", "woocommerce"])
def test_a_delivery_sent_three_times_is_stored_and_triggers_once(database_url: str, channel: str) -> None:
    triggers = Triggers()
    client = _client(database_url, triggers, debounce_seconds=0)  # no debounce: only the replay guard
    answers = [client.post(f"/webhooks/{channel}", content=ORDER, headers=HEADERS[channel](ORDER)) for _ in range(3)]
    assert answers == [200, 401, 401]
    [event] = _events(database_url)
    assert (event.channel, event.delivery_id, event.body, event.processed_at) == (channel, "wh-1", ORDER.decode(), None)
    assert event.topic == ("orders/create" if channel == "shopify" else "order.created")
    assert (event.triggered_at is None) is (channel == "woocommerce")
    assert triggers.channels == [channel]


def test_a_replayed_delivery_id_is_refused_even_with_a_new_signed_body(database_url: str) -> None:
    triggers = Triggers()
    client = _client(database_url, triggers, debounce_seconds=0)
    other = ORDER.replace(b"5100000001", b"5100000002")
    assert client.post("/webhooks/shopify", content=ORDER, headers=_shopify(ORDER, "wh-7")) == 200
    assert client.post("/webhooks/shopify", content=other, headers=_shopify(other, "wh-7")) == 401
    assert [e.body for e in _events(database_url)] == [ORDER.decode()]
    assert triggers.channels == ["shopify"]


@pytest.mark.parametrize("channel", ["shopify", "woocommerce"])
def test_a_body_changed_by_one_byte_is_refused_and_nothing_stored(database_url: str, channel: str) -> None:
    triggers = Triggers()
    changed = ORDER.replace(b'"quantity":2', b'"quantity":3')
    status = _client(database_url, triggers).post(f"/webhooks/{channel}", content=changed, headers=HEADERS[channel](ORDER))
    assert status == 401
    assert _events(database_url) == [] and triggers.channels == []


@pytest.mark.parametrize("channel", ["shopify", "woocommerce"])
def test_a_wrong_or_missing_signature_is_refused(database_url: str, channel: str) -> None:
    triggers = Triggers()
    client = _client(database_url, triggers)
    wrong = HEADERS[channel](ORDER, secret="not-the-secret")
    unsigned = {name: value for name, value in HEADERS[channel](ORDER).items() if "Hmac" not in name and "Signature" not in name}
    assert client.post(f"/webhooks/{channel}", content=ORDER, headers=wrong) == 401
    assert client.post(f"/webhooks/{channel}", content=ORDER, headers=unsigned) == 401
    assert _events(database_url) == [] and triggers.channels == []


@pytest.mark.parametrize("sent_ago", [timedelta(seconds=301), timedelta(hours=6), timedelta(seconds=-120)], ids=["stale", "hours-late", "future"])
def test_a_stale_or_future_shopify_delivery_is_refused(database_url: str, sent_ago: timedelta) -> None:
    triggers = Triggers()
    status = _client(database_url, triggers).post("/webhooks/shopify", content=ORDER, headers=_shopify(ORDER, sent_ago=sent_ago))
    assert status == 401
    assert _events(database_url) == [] and triggers.channels == []


def test_the_max_age_is_a_setting(database_url: str) -> None:
    client = _client(database_url, Triggers(), webhook_max_age_seconds=3600)
    assert client.post("/webhooks/shopify", content=ORDER, headers=_shopify(ORDER, sent_ago=timedelta(minutes=30))) == 200


def test_a_signed_delivery_without_its_id_is_malformed(database_url: str) -> None:
    headers = {name: value for name, value in _shopify(ORDER).items() if name != "X-Shopify-Webhook-Id"}
    assert _client(database_url, Triggers()).post("/webhooks/shopify", content=ORDER, headers=headers) == 400
    assert _events(database_url) == []


@pytest.mark.parametrize("unset", [None, "  "], ids=["unset", "blank"])
def test_a_channel_without_a_secret_is_not_found(database_url: str, unset: str | None) -> None:
    client = _client(database_url, Triggers(), woocommerce_webhook_secret=unset)
    assert client.post("/webhooks/woocommerce", content=ORDER, headers=_woocommerce(ORDER)) == 404
    assert client.post("/webhooks/shopify", content=ORDER, headers=_shopify(ORDER)) == 200
    assert [e.channel for e in _events(database_url)] == ["shopify"]


def test_the_woocommerce_ping_is_answered_and_not_stored(database_url: str) -> None:
    triggers = Triggers()
    status = _client(database_url, triggers).post(
        "/webhooks/woocommerce", content=b"webhook_id=14", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 200
    assert _events(database_url) == [] and triggers.channels == []


def test_a_burst_of_deliveries_starts_one_intake_per_channel_and_one_when_the_window_closes(
    database_url: str,
) -> None:
    triggers, later = Triggers(), Later()
    client = _client(database_url, triggers, later=later)
    for number in range(10):
        assert client.post("/webhooks/shopify", content=ORDER, headers=_shopify(ORDER, f"wh-{number}")) == 200
    assert client.post("/webhooks/woocommerce", content=ORDER, headers=_woocommerce(ORDER)) == 200
    assert len(_events(database_url)) == 11
    assert triggers.channels == ["shopify", "woocommerce"]
    # Nine Shopify deliveries came inside the window: one trailing run, due when it closes.
    [(delay, _)] = later.scheduled
    assert 0 < delay <= 30
    later.run()
    assert triggers.channels == ["shopify", "woocommerce", "shopify"]


def test_the_debounce_window_reopens() -> None:
    now, later, gone = [100.0], Later(), []
    debounce = Debounce(30, clock=lambda: now[0], later=later)
    assert debounce.ready("shopify", lambda: gone.append("trailing"))
    assert later.scheduled == []
    now[0] += 29.9
    assert not debounce.ready("shopify", lambda: gone.append("trailing"))
    assert not debounce.ready("shopify", lambda: gone.append("twice"))  # folded into the one already due
    assert [round(delay, 6) for delay, _ in later.scheduled] == [0.1]
    now[0] += 0.1
    later.run()
    assert gone == ["trailing"]
    # The trailing go opened a window of its own.
    now[0] += 29.9
    assert not debounce.ready("shopify", lambda: gone.append("next"))
    now[0] += 0.1
    assert len(later.scheduled) == 1
    later.run()
    now[0] += 30
    assert debounce.ready("shopify", lambda: gone.append("unused"))
    assert gone == ["trailing", "next"]


def test_the_trailing_go_fires_on_a_real_timer() -> None:
    fired = threading.Event()
    debounce = Debounce(0.05)
    assert debounce.ready("woocommerce", fired.set)
    assert not debounce.ready("woocommerce", fired.set)
    assert not fired.is_set() and fired.wait(5)


def test_a_lone_delivery_schedules_nothing_after_it(database_url: str) -> None:
    triggers, later = Triggers(), Later()
    assert _client(database_url, triggers, later=later).post("/webhooks/shopify", content=ORDER, headers=_shopify(ORDER)) == 200
    assert triggers.channels == ["shopify"] and later.scheduled == []


def test_a_failing_trigger_still_answers_200_and_keeps_the_event(database_url: str) -> None:
    triggers = Triggers(error=RuntimeError("Prefect API unreachable"))
    status = _client(database_url, triggers).post("/webhooks/shopify", content=ORDER, headers=_shopify(ORDER))
    assert status == 200
    assert triggers.channels == ["shopify"] and len(_events(database_url)) == 1


def test_logs_name_the_delivery_but_never_its_body(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="clerk.webhooks")
    client = _client(database_url, Triggers(), debounce_seconds=0)
    for _ in range(2):
        client.post("/webhooks/shopify", content=ORDER, headers=_shopify(ORDER, "wh-42"))
    client.post("/webhooks/shopify", content=ORDER + b" ", headers=_shopify(ORDER, "wh-43"))
    logged = caplog.text
    assert "wh-42" in logged and "orders/create" in logged
    assert "jon@example.com" not in logged and "MUG-1" not in logged


def test_the_default_trigger_starts_the_deployment_only_with_a_prefect_api(monkeypatch: pytest.MonkeyPatch) -> None:
    import prefect.deployments

    calls: list[tuple[str, dict[str, object]]] = []
    monkeypatch.setattr(prefect.deployments, "run_deployment", lambda name, **kwargs: calls.append((name, kwargs)))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    start_follow_up("shopify")
    assert calls == []
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    start_follow_up("shopify")
    start_follow_up("easypost")
    assert calls == [("order-intake/order-intake", {"timeout": 0}), ("track-shipments/track-shipments", {"timeout": 0})]
    assert set(FOLLOW_UPS.values()) == {"order-intake/order-intake", "track-shipments/track-shipments"}


def test_migration_0002_downgrades_and_upgrades_again(database_url: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = database_url
    command.downgrade(config, "0001")
    assert "webhook_events" not in inspect(engine_for(database_url)).get_table_names()
    upgrade(database_url)
    assert "webhook_events" in inspect(engine_for(database_url)).get_table_names()
    assert _events(database_url) == []


def test_the_command_defaults_to_loopback_and_needs_a_secret(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import integrations.settings

    args = build_parser().parse_args(["webhooks"])
    assert (args.host, args.port) == ("127.0.0.1", 8787)
    monkeypatch.setattr(integrations.settings, "cached_settings", lambda: Settings(_env_file=None))  # type: ignore[call-arg]
    monkeypatch.delenv("CLERK_SHOPIFY_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("CLERK_WOOCOMMERCE_WEBHOOK_SECRET", raising=False)
    assert serve_webhooks("127.0.0.1", 0) == 2
    assert "CLERK_SHOPIFY_WEBHOOK_SECRET" in capsys.readouterr().err


def _easypost_event(event_id: str = "evt_1", age: timedelta = timedelta(seconds=5)) -> bytes:
    sent = (datetime.now(UTC) - age).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return json.dumps({"id": event_id, "object": "Event", "description": "tracker.updated", "created_at": sent,
                       "result": {"object": "Tracker", "tracking_code": "9400100000000000000001", "status": "in_transit"}}
                      ).encode()


def _easypost_headers(body: bytes) -> dict[str, str]:
    from integrations.easypost.mapping import webhook_signature

    return {"Content-Type": "application/json", "X-Hmac-Signature": webhook_signature(EASYPOST_SECRET, body)}


def test_a_carrier_event_is_stored_once_and_nudges_tracking(database_url: str) -> None:
    triggers = Triggers()
    client = _client(database_url, triggers, debounce_seconds=0)
    body = _easypost_event()
    answers = [client.post("/webhooks/easypost", content=body, headers=_easypost_headers(body)) for _ in range(3)]
    assert answers == [200, 401, 401]
    [event] = _events(database_url)
    assert (event.channel, event.delivery_id, event.topic) == ("easypost", "evt_1", "tracker.updated")
    assert triggers.channels == ["easypost"]


@pytest.mark.parametrize(("body", "signed", "status"), [
    (_easypost_event().replace(b"in_transit", b"in_transiT"), _easypost_event(), 401),  # one byte changed
    (_easypost_event(age=timedelta(hours=2)), None, 401),  # an old event replayed
    (_easypost_event(age=-timedelta(hours=2)), None, 401),  # from the future
    (json.dumps({"object": "Event", "description": "tracker.updated", "created_at": "2026-11-26T00:00:00Z"}).encode(),
     None, 400),  # no event id to file it by
])
def test_a_carrier_event_that_is_forged_replayed_or_unfileable_is_refused(
    database_url: str, body: bytes, signed: bytes | None, status: int
) -> None:
    triggers = Triggers()
    answer = _client(database_url, triggers).post("/webhooks/easypost", content=body, headers=_easypost_headers(signed or body))
    assert answer == status
    assert _events(database_url) == [] and triggers.channels == []

