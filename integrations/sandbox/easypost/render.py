"""EasyPost's JSON shapes for the sandbox's shipments, rates and trackers, and its fixed tables."""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

# The services quoted on every shipment: (carrier, service, price of the first pound,
# of each pound after, delivery days). Deterministic, so tests can name amounts.
SERVICES: tuple[tuple[str, str, Decimal, Decimal, int], ...] = (
    ("USPS", "GroundAdvantage", Decimal("5.40"), Decimal("0.85"), 5),
    ("USPS", "Priority", Decimal("8.95"), Decimal("1.25"), 2),
    ("USPS", "Express", Decimal("29.10"), Decimal("2.40"), 1),
    ("UPS", "Ground", Decimal("11.20"), Decimal("0.95"), 4),
)

# What a tracker says on each read, per route; it stays on the last word.
ROUTES: dict[str, tuple[str, ...]] = {
    "delivered": ("unknown", "pre_transit", "in_transit", "out_for_delivery", "delivered"),
    "failure": ("unknown", "pre_transit", "in_transit", "failure"),
    "return_to_sender": ("unknown", "pre_transit", "in_transit", "return_to_sender"),
}
MESSAGES = {
    "unknown": "Shipping label created, USPS awaiting item",
    "pre_transit": "Pre-shipment info sent to carrier",
    "in_transit": "Arrived at regional facility",
    "out_for_delivery": "Out for delivery",
    "delivered": "Delivered, in/at mailbox",
    "failure": "Delivery exception: damaged in transit",
    "return_to_sender": "Returned to sender: addressee unknown",
}


def stamp(moment: datetime) -> str:
    """A time as EasyPost writes it: UTC to the second, with `Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def price(base: Decimal, per_pound: Decimal, weight_oz: float) -> Decimal:
    """A service's price for a parcel: the first pound, then each pound or part of one."""
    pounds = max(1, math.ceil(weight_oz / 16))
    return base + per_pound * (pounds - 1)


def _png() -> bytes:
    """A one-pixel greyscale PNG: a label file any image reader opens."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
            + chunk(b"IEND", b""))


LABEL_PNG = _png()


@dataclass
class Shipment:
    """One shipment as the sandbox keeps it."""

    id: str
    reference: str | None
    created_at: datetime
    request: dict[str, Any]  # from_address, to_address and parcel as sent
    rates: list[dict[str, Any]]
    selected_rate: dict[str, Any] | None = None
    tracking_code: str | None = None
    label_url: str | None = None
    tracker_id: str | None = None

    def render(self) -> dict[str, Any]:
        label = None if self.label_url is None else {
            "object": "PostageLabel", "id": "pl_" + self.id[4:], "label_url": self.label_url,
            "label_file_type": "image/png", "label_size": "4x6", "label_resolution": 300,
            "label_date": stamp(self.created_at)}
        return {"id": self.id, "object": "Shipment", "mode": "test", "reference": self.reference,
                "status": "unknown", "created_at": stamp(self.created_at), "updated_at": stamp(self.created_at),
                **self.request, "rates": self.rates, "selected_rate": self.selected_rate,
                "postage_label": label, "tracking_code": self.tracking_code,
                "tracker": None if self.tracker_id is None else {"id": self.tracker_id, "object": "Tracker"},
                "messages": [], "options": {"currency": "USD"}, "fees": []}


def rate(number: int, shipment_id: str, service: tuple[str, str, Decimal, Decimal, int], weight_oz: float,
         now: datetime) -> dict[str, Any]:
    """One Rate of a shipment, from a row of `SERVICES`."""
    carrier, name, base, per_pound, days = service
    amount = f"{price(base, per_pound, weight_oz):.2f}"
    return {"id": f"rate_{number:032x}", "object": "Rate", "mode": "test", "shipment_id": shipment_id,
            "carrier": carrier, "service": name, "rate": amount, "currency": "USD", "list_rate": amount,
            "list_currency": "USD", "retail_rate": amount, "retail_currency": "USD", "delivery_days": days,
            "est_delivery_days": days, "delivery_date": stamp(now + timedelta(days=days)),
            "delivery_date_guaranteed": False, "carrier_account_id": f"ca_{carrier.lower()}"}


@dataclass
class Tracker:
    """One tracker as the sandbox keeps it: its route and how far along it is."""

    id: str
    tracking_code: str
    carrier: str
    shipment_id: str | None
    created_at: datetime
    route: str = "delivered"
    step: int = 0
    seen: list[tuple[str, datetime]] = field(default_factory=list)  # (status, when) of each word said

    @property
    def status(self) -> str:
        return ROUTES[self.route][min(self.step, len(ROUTES[self.route]) - 1)]

    def advance(self, now: datetime) -> None:
        """One step further along its route (none past the end)."""
        if self.step < len(ROUTES[self.route]) - 1:
            self.step += 1
            self.seen.append((self.status, now))

    def render(self) -> dict[str, Any]:
        details = [{"object": "TrackingDetail", "status": status, "message": MESSAGES[status],
                    "datetime": stamp(when), "source": self.carrier, "tracking_location": {
                        "object": "TrackingLocation", "city": None, "state": None, "country": None, "zip": None}}
                   for status, when in [("unknown", self.created_at), *self.seen]]
        return {"id": self.id, "object": "Tracker", "mode": "test", "tracking_code": self.tracking_code,
                "status": self.status, "status_detail": self.status, "carrier": self.carrier,
                "shipment_id": self.shipment_id, "est_delivery_date": stamp(self.created_at + timedelta(days=4)),
                "tracking_details": details, "public_url": f"https://track.easypost.com/{self.id}",
                "created_at": stamp(self.created_at),
                "updated_at": stamp(self.seen[-1][1] if self.seen else self.created_at)}
