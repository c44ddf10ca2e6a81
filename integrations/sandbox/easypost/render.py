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

# The label formats the sandbox makes besides the PNG it always makes, as EasyPost names them:
# the `postage_label` field linking the file, its extension under `/labels/` and its type.
LABEL_FILES: dict[str, tuple[str, str, str]] = {
    "PDF": ("label_pdf_url", "pdf", "application/pdf"),
    "ZPL": ("label_zpl_url", "zpl", "application/zpl"),
}


def label_pdf(tracking_code: str, carrier: str, service: str, ship_to: dict[str, Any]) -> bytes:
    """A 4x6 inch label as a real PDF (reportlab): carrier and service, the ship-to address,
    the tracking number written out and as a Code 128 barcode."""
    import io

    from reportlab.graphics.barcode.code128 import Code128
    from reportlab.lib.units import inch
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    width, height = 4 * inch, 6 * inch
    canvas = Canvas(buffer, pagesize=(width, height), invariant=1)
    canvas.setTitle(f"Label {tracking_code}")
    canvas.setFont("Helvetica-Bold", 16)
    canvas.drawString(0.25 * inch, height - 0.5 * inch, f"{carrier} {service}")
    canvas.setFont("Helvetica", 10)
    lines = [ship_to.get("name"), ship_to.get("street1"), ship_to.get("street2"),
             " ".join(str(p) for p in (ship_to.get("city"), ship_to.get("state"), ship_to.get("zip")) if p),
             ship_to.get("country")]
    for row, text in enumerate(str(line) for line in lines if line):
        canvas.drawString(0.25 * inch, height - (1.0 + 0.2 * row) * inch, text[:48])
    code = Code128(tracking_code, barHeight=1.1 * inch, barWidth=0.013 * inch, humanReadable=False)
    code.drawOn(canvas, (width - code.width) / 2, 1.2 * inch)
    canvas.setFont("Helvetica-Bold", 12)
    canvas.drawCentredString(width / 2, 0.9 * inch, tracking_code)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def label_zpl(tracking_code: str, carrier: str, service: str) -> bytes:
    """The same label in Zebra's ZPL II: the tracking number as text and as a Code 128 (`^BC`)."""
    return (f"^XA^CF0,40^FO40,40^FD{carrier} {service}^FS^FO40,700^BY3,3,200^BCN,200,N,N,N"
            f"^FD{tracking_code}^FS^CF0,36^FO40,930^FD{tracking_code}^FS^XZ\n").encode()


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
    label_format: str = "PNG"  # options.label_format, as the shipment was created with it

    def render(self) -> dict[str, Any]:
        label = None if self.label_url is None else {
            "object": "PostageLabel", "id": "pl_" + self.id[4:], "label_url": self.label_url,
            "label_file_type": "image/png", "label_size": "4x6", "label_resolution": 300,
            "label_date": stamp(self.created_at), "label_pdf_url": None, "label_zpl_url": None,
            "label_epl2_url": None}
        if label is not None and self.label_format in LABEL_FILES:
            field, extension, kind = LABEL_FILES[self.label_format]
            label[field] = self.label_url.rsplit(".", 1)[0] + "." + extension
            label["label_file_type"] = kind
        options = {"currency": "USD"} | ({"label_format": self.label_format} if self.label_format != "PNG" else {})
        return {"id": self.id, "object": "Shipment", "mode": "test", "reference": self.reference,
                "status": "unknown", "created_at": stamp(self.created_at), "updated_at": stamp(self.created_at),
                **self.request, "rates": self.rates, "selected_rate": self.selected_rate,
                "postage_label": label, "tracking_code": self.tracking_code,
                "tracker": None if self.tracker_id is None else {"id": self.tracker_id, "object": "Tracker"},
                "messages": [], "options": options, "fees": []}


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
