"""Karrio REST API JSON to and from Clerk's shipping types: pure functions, no I/O.

`client.py` builds every request body with the `build_*` functions and reads every
answer with the `parse_*` ones. Karrio takes weights and sizes in the units it is told
(grams and centimetres here, as Clerk keeps them) and quotes money as JSON numbers,
which the client decodes straight to `Decimal`, never through a float.

A bought shipment is one whose status has left `draft` and carries a tracking number;
its `reference` is Clerk's order reference, given when it was created, so a label whose
answer was lost can be found again. Karrio's `reference` filter matches any shipment
whose reference *contains* the text, so the match is made exact here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from domain.money import MoneyError, to_money
from domain.orders import Address
from integrations.protocols import AddressCheck, Label, Parcel, Payload, Rate, TrackerStatus, TrackingEvent
from integrations.reading import UnexpectedAnswer, answer_object as _object, answer_text as _text

MAX_PAGE_SIZE = 100  # Karrio's largest page of a list
LABEL_TYPE = "PDF"
KEY_FIELD = "clerk_key"  # the shipment metadata field carrying Clerk's ledger key

# Shipment statuses of a shipment not (or no longer) holding a usable label.
UNBOUGHT = frozenset({"draft", "cancelled"})

# Every tracker status Karrio documents, in Clerk's words.
STATUS_TO_CLERK: dict[str, TrackerStatus] = {
    "pending": TrackerStatus.PRE_TRANSIT,  # label bought, no carrier scan yet
    "unknown": TrackerStatus.PRE_TRANSIT,  # as EasyPost's "unknown": nothing scanned yet
    "picked_up": TrackerStatus.IN_TRANSIT,
    "in_transit": TrackerStatus.IN_TRANSIT,
    "delivery_delayed": TrackerStatus.IN_TRANSIT,  # still moving, only late
    "out_for_delivery": TrackerStatus.OUT_FOR_DELIVERY,
    # Waiting at a pickup point: the last step before the buyer has it, as a van round is.
    "ready_for_pickup": TrackerStatus.OUT_FOR_DELIVERY,
    "delivered": TrackerStatus.DELIVERED,
    "return_to_sender": TrackerStatus.RETURNED_TO_SENDER,
    "on_hold": TrackerStatus.EXCEPTION,
    "delivery_failed": TrackerStatus.EXCEPTION,
    "cancelled": TrackerStatus.EXCEPTION,  # the carrier will not move it: someone must act
}
# A status Karrio adds later is shown to a clerk rather than taken as progress.
UNLISTED_STATUS = TrackerStatus.EXCEPTION
# What `track` says of a number Karrio holds no tracker for: Karrio makes one after the buy
# only for carriers that track, so for now nothing has been scanned.
NO_TRACKER = "no_tracker"


# ---------------------------------------------------------------------------- requests


def build_address(address: Address) -> Payload:
    """An Address as Karrio spells it; fields Clerk does not know are left out."""
    fields = {"person_name": address.name, "company_name": address.company, "address_line1": address.street1,
              "address_line2": address.street2, "city": address.city, "state_code": address.province,
              "postal_code": address.postal_code, "country_code": address.country,
              "phone_number": address.phone}
    return {name: value for name, value in fields.items() if value is not None}


def build_address_validation(address: Address) -> Payload:
    """Body of `POST /v1/addresses` asking the configured validator whether it is deliverable."""
    return {**build_address(address), "validate_location": True}


def build_parcel(parcel: Parcel) -> Payload:
    """A Parcel in grams and centimetres, as Clerk measures it.

    Raises:
        ValueError: for a weight or a dimension that is not positive.
    """
    if parcel.weight_grams <= 0:
        raise ValueError("a parcel's weight must be positive")
    body: Payload = {"weight": parcel.weight_grams, "weight_unit": "G"}
    if parcel.dimensions_cm is not None:
        if any(side <= 0 for side in parcel.dimensions_cm):
            raise ValueError("a parcel's dimensions must be positive")
        for name, side in zip(("length", "width", "height"), parcel.dimensions_cm, strict=True):
            body[name] = float(side)
        body["dimension_unit"] = "CM"
    return body


def build_shipment(ship_from: Address, ship_to: Address, parcel: Parcel, reference: str) -> Payload:
    """Body of `POST /v1/shipments`: Karrio answers with the draft shipment and its rates."""
    return {"shipper": build_address(ship_from), "recipient": build_address(ship_to),
            "parcels": [build_parcel(parcel)], "reference": reference, "label_type": LABEL_TYPE}


def build_purchase(rate_id: str, key: str) -> Payload:
    """Body of `POST /v1/shipments/<id>/purchase`: the rate, and Clerk's key kept on the shipment."""
    return {"selected_rate_id": rate_id, "label_type": LABEL_TYPE, "metadata": {KEY_FIELD: key}}


def build_reference_params(reference: str, offset: int) -> dict[str, Any]:
    """Query of `GET /v1/shipments`: shipments whose reference contains `reference`, a page at a time."""
    return {"reference": reference, "limit": MAX_PAGE_SIZE, "offset": offset}


# ---------------------------------------------------------------------------- answers


def _moment(event: Mapping[str, Any]) -> datetime | None:
    """When a tracking event happened: its ISO `timestamp`, else its `date` and `time`
    (`YYYY-MM-DD`, `HH:MM AM/PM`, as the carrier's local time, taken as UTC); None when unreadable."""
    stamp = event.get("timestamp")
    if isinstance(stamp, str) and stamp:
        try:
            moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        except ValueError:
            pass
    day, clock = event.get("date"), event.get("time")
    if not isinstance(day, str):
        return None
    for text, shape in ((f"{day} {clock}", "%Y-%m-%d %I:%M %p"), (f"{day} {clock}", "%Y-%m-%d %H:%M"),
                        (day, "%Y-%m-%d")):
        try:
            return datetime.strptime(text, shape).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _day(value: Any) -> datetime | None:
    """A `YYYY-MM-DD` date as midnight UTC; None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def parse_address_check(body: Any) -> AddressCheck:
    """The validation of an address Karrio created with `validate_location`."""
    validation = _object(_object(body, "address").get("validation"), "validation")
    success = validation.get("success")
    if not isinstance(success, bool):
        raise UnexpectedAnswer("validation.success is missing")
    meta = validation.get("meta") if isinstance(validation.get("meta"), dict) else {}
    errors = meta.get("errors") or []
    said = "; ".join(str(e.get("message") if isinstance(e, dict) else e) for e in errors if e)
    return AddressCheck(ok=success, message=said or None)


def parse_rate(payload: Any) -> Rate:
    """One Rate of a shipment; `carrier` is the carrier's own name (`carrier_name`)."""
    rate = _object(payload, "rate")
    try:
        amount = to_money(rate.get("total_charge"))
    except MoneyError as exc:
        raise UnexpectedAnswer("rate.total_charge is not an amount") from exc
    days = rate.get("transit_days")
    return Rate(id=_text(rate, "id"), carrier=_text(rate, "carrier_name"), service=_text(rate, "service"),
                amount=amount, currency=_text(rate, "currency"),
                delivery_days=days if isinstance(days, int) and not isinstance(days, bool) else None,
                delivery_date=_day(rate.get("estimated_delivery")))


def parse_rates(body: Any) -> tuple[str, list[Rate]]:
    """A created shipment's id and its rates (empty when no carrier would quote)."""
    shipment = _object(body, "shipment")
    rates = shipment.get("rates") or []
    if not isinstance(rates, list):
        raise UnexpectedAnswer("shipment.rates is not a list")
    return _text(shipment, "id"), [parse_rate(rate) for rate in rates]


def parse_label(body: Any, base_url: str) -> Label | None:
    """The label of a bought shipment; None for one not bought (or voided).

    Karrio gives `label_url` relative to the server; it is made absolute on `base_url`.
    """
    shipment = _object(body, "shipment")
    tracking = shipment.get("tracking_number")
    if shipment.get("status") in UNBOUGHT or not tracking:
        return None
    rate = parse_rate(shipment.get("selected_rate"))
    label_url = _text(shipment, "label_url")
    if label_url.startswith("/"):
        label_url = base_url.rstrip("/") + label_url
    reference = shipment.get("reference")
    return Label(shipment_id=_text(shipment, "id"), tracking_number=str(tracking), carrier=rate.carrier,
                 service=rate.service, label_url=label_url, cost=rate.amount, currency=rate.currency,
                 reference=reference if isinstance(reference, str) else None)


def parse_shipments_page(body: Any) -> tuple[list[dict[str, Any]], bool]:
    """The shipments of one page of `GET /v1/shipments`, and whether more pages follow."""
    page = _object(body, "page")
    shipments = page.get("results")
    if not isinstance(shipments, list) or not all(isinstance(s, dict) for s in shipments):
        raise UnexpectedAnswer("results is not a list of objects")
    return shipments, bool(page.get("next"))


def find_label(shipments: Iterable[Any], reference: str, base_url: str) -> Label | None:
    """The label of the first bought shipment whose reference is exactly `reference`."""
    for shipment in shipments:
        if isinstance(shipment, dict) and shipment.get("reference") == reference:
            label = parse_label(shipment, base_url)
            if label is not None:
                return label
    return None


def clerk_status(status: str) -> TrackerStatus:
    """A Karrio tracker status in Clerk's words (see `STATUS_TO_CLERK`)."""
    return STATUS_TO_CLERK.get(status, UNLISTED_STATUS)


def parse_tracker(body: Any) -> TrackingEvent:
    """The latest a tracker says: its status and its newest event."""
    tracker = _object(body, "tracker")
    status = _text(tracker, "status")
    events = [e for e in tracker.get("events") or [] if isinstance(e, dict)]
    # Karrio lists events newest first; by time, then, among events of one minute, the earlier listed.
    never = datetime.min.replace(tzinfo=UTC)
    _, latest = max(enumerate(events), key=lambda pair: (_moment(pair[1]) or never, -pair[0]), default=(0, {}))
    detail = latest.get("description")
    return TrackingEvent(tracking_number=_text(tracker, "tracking_number"), status=clerk_status(status),
                         carrier_status=status, detail=str(detail) if detail else None,
                         occurred_at=_moment(latest) if latest else None,
                         estimated_delivery=_day(tracker.get("estimated_delivery")))


def untracked(tracking_number: str) -> TrackingEvent:
    """What Clerk knows of a number Karrio holds no tracker for: nothing scanned yet."""
    return TrackingEvent(tracking_number=tracking_number, status=TrackerStatus.PRE_TRANSIT,
                         carrier_status=NO_TRACKER, detail="Karrio holds no tracker for this number yet")


def is_pdf(content: bytes) -> bool:
    """True for a whole PDF, from `%PDF-` to `%%EOF` (not an error page, not cut short)."""
    return content.startswith(b"%PDF-") and b"%%EOF" in content[-1024:]


def parse_error(body: Any) -> tuple[str, str]:
    """The first `code` and `message` of a Karrio error body (`errors` or `messages`), or empty strings."""
    if not isinstance(body, dict):
        return "", ""
    found = body.get("errors") or body.get("messages") or []
    first = found[0] if isinstance(found, list) and found and isinstance(found[0], dict) else {}
    return str(first.get("code") or ""), str(first.get("message") or "")[:200]
