"""Webhook deliveries from Shopify, WooCommerce and EasyPost: signatures, headers and freshness.

Both vendors sign the raw request body alone: the signature header is
base64(HMAC-SHA256(secret, raw body)). Verification therefore runs over the bytes as they
arrived, before any parsing, and compares in constant time.

Replay protection rests on what each vendor sends besides the signature:

- Shopify: `X-Shopify-Webhook-Id` names a delivery (its retries carry the same id) and
  `X-Shopify-Triggered-At` says when Shopify sent it, so a delivery too old (or dated
  in the future) is refused, as is a delivery id already stored.
- WooCommerce: there is no delivery-time header, and the body's `date_modified_gmt` says
  when the order changed, not when it was sent, so it cannot date a delivery. Replay
  protection rests on `X-WC-Webhook-Delivery-ID` alone.

- EasyPost: `X-Hmac-Signature` is `hmac-sha256-hex=` and the hex HMAC of the raw body; the
  event's id and `created_at` are in the body, so they are signed too: an event too old is
  refused, as is an event id already stored.

Shopify and WooCommerce do not sign their headers, so someone holding a captured body could resend it
under a new id. That costs little: a delivery only asks intake to poll the vendor's API
(itself idempotent), and intake never takes order data from a webhook body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from integrations.easypost.mapping import verify_webhook

SHOPIFY = "shopify"
WOOCOMMERCE = "woocommerce"
EASYPOST = "easypost"

FUTURE_LEEWAY = timedelta(seconds=60)  # clocks drift; a minute ahead is still believable
# The widths of `webhook_events.delivery_id` and `.topic`; longer values are malformed.
MAX_DELIVERY_ID = 255
MAX_TOPIC = 100

_WOOCOMMERCE_PING = re.compile(rb"webhook_id=[0-9]+")


@dataclass(frozen=True)
class _HeaderNames:
    signature: str
    topic: str
    delivery_id: str
    triggered_at: str | None


_HEADERS = {
    SHOPIFY: _HeaderNames("x-shopify-hmac-sha256", "x-shopify-topic", "x-shopify-webhook-id", "x-shopify-triggered-at"),
    WOOCOMMERCE: _HeaderNames("x-wc-webhook-signature", "x-wc-webhook-topic", "x-wc-webhook-delivery-id", None),
}


class MalformedDelivery(ValueError):
    """A signed delivery whose headers lack what the clerk needs to file it."""


@dataclass(frozen=True)
class Delivery:
    """What the headers (and the body's resource id) say about one delivery."""

    channel: str
    topic: str
    delivery_id: str
    triggered_at: datetime | None  # None for WooCommerce, which does not send it
    resource_id: str | None


def signature_matches(secret: str, body: bytes, signature: str | None) -> bool:
    """True when `signature` is the body's HMAC under `secret`, compared in constant time."""
    if not signature:
        return False
    try:
        given = base64.b64decode(signature, validate=True)
    except ValueError:  # not base64, or not ASCII at all
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(expected, given)


def verify_signature(channel: str, secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Checks the sender's signature header against the raw body."""
    if channel == EASYPOST:
        return verify_webhook(secret, headers, body)
    return signature_matches(secret, body, _lowered(headers).get(_HEADERS[channel].signature))


def is_woocommerce_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """WooCommerce's unsigned `webhook_id=N` post, sent once when a webhook is saved."""
    return _HEADERS[WOOCOMMERCE].signature not in _lowered(headers) and bool(_WOOCOMMERCE_PING.fullmatch(body))


def read_delivery(channel: str, headers: Mapping[str, str], body: bytes) -> Delivery:
    """Reads a verified delivery's headers; raises MalformedDelivery when one is missing or bad."""
    if channel == EASYPOST:
        return _easypost_event(body)
    names = _HEADERS[channel]
    found = _lowered(headers)
    topic = found.get(names.topic, "").strip()
    delivery_id = found.get(names.delivery_id, "").strip()
    if not topic or len(topic) > MAX_TOPIC:
        raise MalformedDelivery(f"missing or overlong {names.topic}")
    if not delivery_id or len(delivery_id) > MAX_DELIVERY_ID:
        raise MalformedDelivery(f"missing or overlong {names.delivery_id}")
    triggered_at = None
    if names.triggered_at is not None:
        triggered_at = _timestamp(found.get(names.triggered_at, ""), names.triggered_at)
    return Delivery(channel, topic, delivery_id, triggered_at, _resource_id(body))


def _easypost_event(body: bytes) -> Delivery:
    """An EasyPost Event: its id, `description` (e.g. tracker.updated), `created_at`, and the
    tracking number it is about."""
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise MalformedDelivery("the event is not JSON") from exc
    if not isinstance(event, dict):
        raise MalformedDelivery("the event is not a JSON object")
    event_id, topic = str(event.get("id") or "").strip(), str(event.get("description") or "").strip()
    if not event_id or len(event_id) > MAX_DELIVERY_ID:
        raise MalformedDelivery("missing or overlong event id")
    if not topic or len(topic) > MAX_TOPIC:
        raise MalformedDelivery("missing or overlong event description")
    result = event.get("result") if isinstance(event.get("result"), dict) else {}
    code = result.get("tracking_code")
    return Delivery(EASYPOST, topic, event_id, _timestamp(str(event.get("created_at") or ""), "created_at"),
                    str(code) if isinstance(code, str) else None)


def is_fresh(delivery: Delivery, now: datetime, max_age_seconds: int) -> bool:
    """A dated delivery sent within `max_age_seconds` and not from the future; undated ones pass."""
    if delivery.triggered_at is None:
        return True
    age = now - delivery.triggered_at
    return -FUTURE_LEEWAY <= age <= timedelta(seconds=max_age_seconds)


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    # HTTP header names are case-insensitive, and HTTP/2 lowercases them in transit.
    return {name.lower(): value for name, value in headers.items()}


def _timestamp(raw: str, header: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError as exc:
        raise MalformedDelivery(f"missing or unreadable {header}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _resource_id(body: bytes) -> str | None:
    try:
        payload = json.loads(body)
    except ValueError:  # also UnicodeDecodeError
        return None
    resource_id = payload.get("id") if isinstance(payload, dict) else None
    return str(resource_id) if isinstance(resource_id, (int, str)) and not isinstance(resource_id, bool) else None
