"""EasyPost API v2 JSON to and from Clerk's shipping types: pure functions, no I/O.

`client.py` builds every request body with the `build_*` functions and reads every
answer with the `parse_*` ones. EasyPost wraps what is created in its object's name
(`{"shipment": {...}}`), weighs in ounces and measures in inches, and quotes money as
decimal strings ("7.58"), read here as `Decimal`, never as floats.

A bought shipment is one with a `postage_label` and a `tracking_code`; its `reference`
is Clerk's order reference, given when it was created, so a label whose answer was
lost can be found again.

Webhooks: EasyPost signs the raw body with the webhook's secret (NFKD-normalised, UTF-8)
and sends `X-Hmac-Signature: hmac-sha256-hex=<hex HMAC-SHA256>`, as its own client
libraries check it.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any

from domain.money import MoneyError, to_money
from domain.orders import Address
from integrations.protocols import AddressCheck, Label, Parcel, Payload, Rate, TrackerStatus, TrackingEvent
from integrations.reading import UnexpectedAnswer, answer_object as _object, answer_text as _text

MAX_PAGE_SIZE = 100  # EasyPost's largest page of a "retrieve all"
SIGNATURE_HEADER = "x-hmac-signature"
SIGNATURE_PREFIX = "hmac-sha256-hex="

GRAMS_PER_OUNCE = Decimal("28.349523125")
CM_PER_INCH = Decimal("2.54")
_TENTH = Decimal("0.1")

# Every Tracker status EasyPost documents, in Clerk's words.
STATUS_TO_CLERK: dict[str, TrackerStatus] = {
    # A fresh tracker says "unknown" until the carrier's first scan: for a label just
    # bought that is the label waiting to be handed over, not a problem.
    "unknown": TrackerStatus.PRE_TRANSIT,
    "pre_transit": TrackerStatus.PRE_TRANSIT,
    "in_transit": TrackerStatus.IN_TRANSIT,
    "out_for_delivery": TrackerStatus.OUT_FOR_DELIVERY,
    # Waiting at a pickup point: the last step before the buyer has it, as a van round is.
    "available_for_pickup": TrackerStatus.OUT_FOR_DELIVERY,
    "delivered": TrackerStatus.DELIVERED,
    "return_to_sender": TrackerStatus.RETURNED_TO_SENDER,
    "failure": TrackerStatus.EXCEPTION,
    "cancelled": TrackerStatus.EXCEPTION,  # the carrier will not move it: someone must act
    "error": TrackerStatus.EXCEPTION,  # EasyPost cannot read the carrier's tracking: look by hand
}
# A status EasyPost adds later is shown to a clerk rather than taken as progress.
UNLISTED_STATUS = TrackerStatus.EXCEPTION


# ---------------------------------------------------------------------------- requests


def build_address(address: Address) -> Payload:
    """An Address as EasyPost spells it; fields Clerk does not know are left out."""
    fields = {"name": address.name, "company": address.company, "street1": address.street1,
              "street2": address.street2, "city": address.city, "state": address.province,
              "zip": address.postal_code, "country": address.country, "phone": address.phone}
    return {name: value for name, value in fields.items() if value is not None}


def build_address_verification(address: Address) -> Payload:
    """Body of `POST /v2/addresses` asking for delivery verification.

    `verify` (not `verify_strict`) so an undeliverable address still answers 200 with the
    carrier's reasons in `verifications.delivery.errors`, rather than a bare refusal.
    """
    return {"address": build_address(address), "verify": True}


def _tenths_up(value: Decimal) -> Decimal:
    # Rounded up, never down: a carrier re-weighs, and a short declaration is billed back.
    return value.quantize(_TENTH, rounding=ROUND_CEILING)


def build_parcel(parcel: Parcel) -> Payload:
    """A Parcel in EasyPost's units: ounces and inches, to a tenth, rounded up.

    Raises:
        ValueError: for a weight or a dimension that is not positive.
    """
    if parcel.weight_grams <= 0:
        raise ValueError("a parcel's weight must be positive")
    body: Payload = {"weight": float(_tenths_up(Decimal(parcel.weight_grams) / GRAMS_PER_OUNCE))}
    if parcel.dimensions_cm is not None:
        if any(side <= 0 for side in parcel.dimensions_cm):
            raise ValueError("a parcel's dimensions must be positive")
        for name, side in zip(("length", "width", "height"), parcel.dimensions_cm, strict=True):
            body[name] = float(_tenths_up(Decimal(side) / CM_PER_INCH))
    return body


# The label formats Clerk asks EasyPost for, and where a bought shipment's `postage_label` gives
# that file. EasyPost always renders a PNG at `label_url`; with `options.label_format` set on the
# shipment it also makes the format asked for and links it from the buy's `postage_label`.
LABEL_FORMATS: dict[str, str] = {"PNG": "label_url", "PDF": "label_pdf_url", "ZPL": "label_zpl_url"}


def build_shipment(ship_from: Address, ship_to: Address, parcel: Parcel, reference: str,
                   label_format: str | None = None) -> Payload:
    """Body of `POST /v2/shipments`: EasyPost answers with the shipment and its rates.

    `label_format` (PNG, PDF or ZPL) goes as `options.label_format`: the file the buy makes.

    Raises:
        ValueError: for a label format Clerk does not know.
    """
    shipment: Payload = {"reference": reference, "from_address": build_address(ship_from),
                         "to_address": build_address(ship_to), "parcel": build_parcel(parcel)}
    if label_format is not None:
        if label_format not in LABEL_FORMATS:
            raise ValueError(f"label format must be one of {', '.join(LABEL_FORMATS)}")
        shipment["options"] = {"label_format": label_format}
    return {"shipment": shipment}


def build_buy(rate_id: str) -> Payload:
    """Body of `POST /v2/shipments/<id>/buy` for one of the shipment's rates."""
    return {"rate": {"id": rate_id}}


def build_purchased_params(before_id: str | None, since: datetime) -> dict[str, Any]:
    """Query of `GET /v2/shipments`: bought shipments created since `since`, newest first,
    a page at a time (`before_id`: the last one of the page before)."""
    params: dict[str, Any] = {"purchased": "true", "page_size": MAX_PAGE_SIZE,
                              "start_datetime": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if before_id:
        params["before_id"] = before_id
    return params


def build_tracker(tracking_number: str) -> Payload:
    """Body of `POST /v2/trackers`; EasyPost finds the carrier from the number itself, and
    answers a number it already tracks with that tracker rather than a second one."""
    return {"tracker": {"tracking_code": tracking_number}}


# ---------------------------------------------------------------------------- answers


def _moment(value: Any) -> datetime | None:
    """An EasyPost timestamp (ISO 8601, `Z` for UTC); None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_address_check(body: Any) -> AddressCheck:
    """The delivery verification of an Address EasyPost created with `verify`."""
    delivery = _object(_object(_object(body, "address").get("verifications"), "verifications").get("delivery"),
                       "verifications.delivery")
    success = delivery.get("success")
    if not isinstance(success, bool):
        raise UnexpectedAnswer("verifications.delivery.success is missing")
    messages = [e["message"] if isinstance(e, dict) else e for e in delivery.get("errors") or []]
    said = "; ".join(str(m) for m in messages if m)
    return AddressCheck(ok=success, message=said or None)


def parse_rate(payload: Any) -> Rate:
    """One Rate of a shipment."""
    rate = _object(payload, "rate")
    try:
        amount = to_money(rate.get("rate"))
    except MoneyError as exc:
        raise UnexpectedAnswer("rate.rate is not an amount") from exc
    days = rate.get("delivery_days")
    return Rate(id=_text(rate, "id"), carrier=_text(rate, "carrier"), service=_text(rate, "service"),
                amount=amount, currency=_text(rate, "currency"),
                delivery_days=days if isinstance(days, int) and not isinstance(days, bool) else None,
                delivery_date=_moment(rate.get("delivery_date")))


def parse_rates(body: Any) -> tuple[str, list[Rate]]:
    """A created shipment's id and its rates (empty when no carrier would quote)."""
    shipment = _object(body, "shipment")
    rates = shipment.get("rates") or []
    if not isinstance(rates, list):
        raise UnexpectedAnswer("shipment.rates is not a list")
    return _text(shipment, "id"), [parse_rate(rate) for rate in rates]


def parse_label(body: Any, label_format: str = "PNG") -> Label | None:
    """The label of a bought shipment; None for a shipment not bought yet.

    Its `label_url` is the file in `label_format` (`label_pdf_url` for PDF, `label_zpl_url`
    for ZPL); a shipment bought without that format (before the setting changed) gives its
    PNG, which EasyPost always makes.
    """
    shipment = _object(body, "shipment")
    postage = shipment.get("postage_label")
    tracking = shipment.get("tracking_code")
    if not isinstance(postage, dict) or not tracking:
        return None
    rate = parse_rate(shipment.get("selected_rate"))
    reference = shipment.get("reference")
    wanted = postage.get(LABEL_FORMATS.get(label_format, "label_url"))
    url = wanted if isinstance(wanted, str) and wanted else _text(postage, "label_url")
    return Label(shipment_id=_text(shipment, "id"), tracking_number=str(tracking), carrier=rate.carrier,
                 service=rate.service, label_url=url, cost=rate.amount,
                 currency=rate.currency, reference=reference if isinstance(reference, str) else None)


def parse_shipments_page(body: Any) -> tuple[list[dict[str, Any]], bool]:
    """The shipments of one page of `GET /v2/shipments`, and whether more pages follow."""
    page = _object(body, "page")
    shipments = page.get("shipments")
    if not isinstance(shipments, list) or not all(isinstance(s, dict) for s in shipments):
        raise UnexpectedAnswer("shipments is not a list of objects")
    return shipments, page.get("has_more") is True


def find_label(shipments: Iterable[Any], reference: str, label_format: str = "PNG") -> Label | None:
    """The label of the first bought shipment carrying `reference`."""
    for shipment in shipments:
        if isinstance(shipment, dict) and shipment.get("reference") == reference:
            label = parse_label(shipment, label_format)
            if label is not None:
                return label
    return None


def clerk_status(status: str) -> TrackerStatus:
    """An EasyPost tracker status in Clerk's words (see `STATUS_TO_CLERK`)."""
    return STATUS_TO_CLERK.get(status, UNLISTED_STATUS)


def parse_tracker(body: Any) -> tuple[str, TrackingEvent]:
    """A Tracker's id and the latest it says: its status and its newest tracking detail."""
    tracker = _object(body, "tracker")
    status = _text(tracker, "status")
    details = [d for d in tracker.get("tracking_details") or [] if isinstance(d, dict)]
    # EasyPost lists details oldest first; by time, then, among scans of one second, the later listed.
    never = datetime.min.replace(tzinfo=UTC)
    _, latest = max(enumerate(details), key=lambda pair: (_moment(pair[1].get("datetime")) or never, pair[0]),
                    default=(0, {}))
    detail = latest.get("message") or tracker.get("status_detail")
    return _text(tracker, "id"), TrackingEvent(
        tracking_number=_text(tracker, "tracking_code"), status=clerk_status(status), carrier_status=status,
        detail=str(detail) if detail else None, occurred_at=_moment(latest.get("datetime")),
        estimated_delivery=_moment(tracker.get("est_delivery_date")))


def is_label_file(content_type: str, content: bytes) -> bool:
    """True for a whole label file as its type claims: a PNG from signature to `IEND`, a PDF
    from `%PDF` to `%%EOF`; ZPL and EPL2 are taken as sent. A JSON or HTML body (an error
    page from a proxy) or an empty one is not a label."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "image/png":
        return content.startswith(b"\x89PNG\r\n\x1a\n") and content.endswith(b"IEND\xaeB`\x82")
    if kind == "application/pdf":
        return content.startswith(b"%PDF-") and b"%%EOF" in content[-1024:]
    return bool(content) and kind not in ("application/json", "text/html")


def parse_error(body: Any) -> tuple[str, str]:
    """The `code` and `message` of an EasyPost error body (empty strings when absent)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code") or ""), str(error.get("message") or "")[:200]


# ---------------------------------------------------------------------------- webhooks


def webhook_signature(secret: str, body: bytes) -> str:
    """The `X-Hmac-Signature` value EasyPost sends with `body` for a webhook with `secret`."""
    key = unicodedata.normalize("NFKD", secret).encode("utf-8")
    return SIGNATURE_PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_webhook(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """True when the delivery's `X-Hmac-Signature` signs the raw `body` under `secret`.

    Compared in constant time; a missing header, or a blank secret (anyone could sign
    with it), never verifies.
    """
    given = next((value for name, value in headers.items() if name.lower() == SIGNATURE_HEADER), "")
    if not secret.strip() or not given:
        return False
    return hmac.compare_digest(webhook_signature(secret, body).encode(), given.strip().encode("utf-8", "replace"))

