"""Webhook signatures, headers and freshness, against vectors computed here independently."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from integrations.webhooks import (
    SHOPIFY,
    WOOCOMMERCE,
    Delivery,
    MalformedDelivery,
    is_fresh,
    is_woocommerce_ping,
    read_delivery,
    signature_matches,
    verify_signature,
)

BODY = b'{"id":820982911946154508,"email":"jon@example.com","total_price":"12.50"}'

# RFC 4231, test case 2: HMAC-SHA256 with key "Jefe".
RFC4231_KEY = "Jefe"
RFC4231_DATA = b"what do ya want for nothing?"
RFC4231_HEX = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def _signed(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_the_rfc_4231_vector_is_accepted_in_base64() -> None:
    signature = base64.b64encode(bytes.fromhex(RFC4231_HEX)).decode()
    assert signature_matches(RFC4231_KEY, RFC4231_DATA, signature)
    assert not signature_matches(RFC4231_KEY, RFC4231_DATA + b" ", signature)


@pytest.mark.parametrize(("channel", "header"), [(SHOPIFY, "X-Shopify-Hmac-Sha256"), (WOOCOMMERCE, "X-WC-Webhook-Signature")])
def test_each_channel_reads_its_own_header_whatever_its_case(channel: str, header: str) -> None:
    signature = _signed("s3cret", BODY)
    assert verify_signature(channel, "s3cret", {header: signature}, BODY)
    assert verify_signature(channel, "s3cret", {header.lower(): signature}, BODY)
    other = "X-WC-Webhook-Signature" if channel == SHOPIFY else "X-Shopify-Hmac-Sha256"
    assert not verify_signature(channel, "s3cret", {other: signature}, BODY)


def test_every_single_byte_change_is_caught() -> None:
    signature = _signed("s3cret", BODY)
    for position in range(len(BODY)):
        changed = BODY[:position] + bytes([BODY[position] ^ 0x01]) + BODY[position + 1:]
        assert not signature_matches("s3cret", changed, signature)


@pytest.mark.parametrize("signature", [None, "", _signed("wrong", BODY), "not base64!", "é" * 44, _signed("s3cret", BODY)[:-4]])
def test_missing_wrong_or_garbled_signatures_fail(signature: str | None) -> None:
    assert not signature_matches("s3cret", BODY, signature)


def test_the_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert signature_matches("s3cret", BODY, _signed("s3cret", BODY))
    assert not signature_matches("s3cret", BODY, _signed("wrong", BODY))
    assert len(calls) == 2


def _shopify_headers(**overrides: str) -> dict[str, str]:
    headers = {
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Hmac-Sha256": _signed("s3cret", BODY),
        "X-Shopify-Shop-Domain": "clerk-test.myshopify.com",
        "X-Shopify-API-Version": "2026-10",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "X-Shopify-Triggered-At": "2026-11-26T17:40:00.877041743Z",
    }
    return headers | overrides


def test_a_shopify_delivery_is_read_from_its_headers_and_the_body_id() -> None:
    delivery = read_delivery(SHOPIFY, _shopify_headers(), BODY)
    assert delivery == Delivery(
        channel=SHOPIFY,
        topic="orders/create",
        delivery_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        triggered_at=datetime(2026, 11, 26, 17, 40, 0, 877041, tzinfo=UTC),
        resource_id="820982911946154508",
    )


def test_a_woocommerce_delivery_has_no_delivery_time() -> None:
    headers = {
        "X-WC-Webhook-Source": "https://shop.example.com/",
        "X-WC-Webhook-Topic": "order.updated",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "updated",
        "X-WC-Webhook-Signature": _signed("s3cret", BODY),
        "X-WC-Webhook-ID": "14",
        "X-WC-Webhook-Delivery-ID": "f1b0f6c3d1e0a9b8c7d6e5f4a3b2c1d0",
    }
    delivery = read_delivery(WOOCOMMERCE, headers, b'{"id": 727, "date_modified_gmt": "2016-05-15T20:17:52"}')
    assert delivery == Delivery(WOOCOMMERCE, "order.updated", "f1b0f6c3d1e0a9b8c7d6e5f4a3b2c1d0", None, "727")


@pytest.mark.parametrize("overrides", [
    {"X-Shopify-Webhook-Id": ""},
    {"X-Shopify-Webhook-Id": "x" * 256},
    {"X-Shopify-Topic": " "},
    {"X-Shopify-Triggered-At": "yesterday"},
    {"X-Shopify-Triggered-At": ""},
])
def test_signed_deliveries_without_what_files_them_are_malformed(overrides: dict[str, str]) -> None:
    with pytest.raises(MalformedDelivery):
        read_delivery(SHOPIFY, _shopify_headers(**overrides), BODY)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"id": true}', b'{"no_id": 1}', b"\xff\xfe"])
def test_a_body_without_a_readable_id_has_no_resource_id(body: bytes) -> None:
    assert read_delivery(SHOPIFY, _shopify_headers(), body).resource_id is None


@pytest.mark.parametrize(("sent_ago", "fresh"), [
    (timedelta(0), True),
    (timedelta(seconds=299), True),
    (timedelta(seconds=301), False),
    (timedelta(hours=-1), False),  # from an hour in the future
    (timedelta(seconds=-59), True),  # a clock a little ahead
    (timedelta(seconds=-61), False),
])
def test_freshness_allows_max_age_behind_and_a_minute_ahead(sent_ago: timedelta, fresh: bool) -> None:
    now = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)
    delivery = Delivery(SHOPIFY, "orders/create", "d-1", now - sent_ago, None)
    assert is_fresh(delivery, now, max_age_seconds=300) is fresh


def test_an_undated_woocommerce_delivery_is_never_stale() -> None:
    delivery = Delivery(WOOCOMMERCE, "order.created", "d-1", None, None)
    assert is_fresh(delivery, datetime(2030, 1, 1, tzinfo=UTC), max_age_seconds=300)


def test_only_an_unsigned_webhook_id_post_is_a_woocommerce_ping() -> None:
    assert is_woocommerce_ping({"Content-Type": "application/x-www-form-urlencoded"}, b"webhook_id=14")
    assert not is_woocommerce_ping({"X-WC-Webhook-Signature": "abc="}, b"webhook_id=14")
    assert not is_woocommerce_ping({}, b"webhook_id=14&more=1")
    assert not is_woocommerce_ping({}, BODY)
