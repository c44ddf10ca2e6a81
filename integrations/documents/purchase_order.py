"""A purchase order as a PDF for the supplier: header, Code 128 of the number, lines, total.

The PDF is rendered with `invariant=1`: the same purchase order always gives the same bytes,
so a resent email carries an identical attachment. Text is set in Helvetica, a PDF base
font: characters outside Windows-1252 (most non-Latin scripts) cannot be shown.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.styles import ParagraphStyle, StyleSheet1, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

from domain.money import cents, is_known_currency
from integrations.documents.common import barcode, footer, letter_document
from integrations.settings import ShipFrom

COLUMNS = ("SKU", "Item", "Qty", "Unit cost", "Line total")
COLUMN_SHARES = (0.17, 0.43, 0.08, 0.15, 0.17)


class InvalidPurchaseOrder(ValueError):
    """A purchase order that cannot be printed as given; `reason` names what is wrong."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PurchaseOrderLine:
    """Units of one SKU ordered at a unit cost."""

    sku: str
    title: str
    quantity: int
    unit_cost: Decimal

    @property
    def total(self) -> Decimal:
        """Quantity × unit cost, to the cent."""
        return cents(self.unit_cost * self.quantity)


@dataclass(frozen=True, slots=True)
class PurchaseOrderDocument:
    """What the printed purchase order shows.

    Raises:
        InvalidPurchaseOrder: `bad_number`, `unknown_currency`, `no_lines`, `bad_quantity`
            or `bad_unit_cost`.
    """

    number: str  # e.g. PO-20261126-ACME; printable ASCII, as Code 128 carries it
    supplier: str
    created_at: datetime
    currency: str
    lines: Sequence[PurchaseOrderLine]
    ship_to: Sequence[str]  # our warehouse, which is also billed; see `ship_to_lines`

    def __post_init__(self) -> None:
        if not self.number or not self.number.isascii() or not self.number.isprintable():
            raise InvalidPurchaseOrder("bad_number", "the number must be printable ASCII")
        if not is_known_currency(self.currency):
            raise InvalidPurchaseOrder("unknown_currency", f"{self.currency!r} is not an ISO 4217 code")
        if not self.lines:
            raise InvalidPurchaseOrder("no_lines", f"{self.number} orders nothing")
        for line in self.lines:
            if isinstance(line.quantity, bool) or not isinstance(line.quantity, int) or line.quantity <= 0:
                raise InvalidPurchaseOrder("bad_quantity", f"{line.sku}: {line.quantity!r} is not a positive count")
            if not isinstance(line.unit_cost, Decimal) or not line.unit_cost.is_finite() or line.unit_cost < 0:
                raise InvalidPurchaseOrder("bad_unit_cost", f"{line.sku}: {line.unit_cost!r} is not a Decimal amount")
        object.__setattr__(self, "lines", tuple(self.lines))
        object.__setattr__(self, "ship_to", tuple(self.ship_to))

    @property
    def total(self) -> Decimal:
        """The sum of the printed line totals."""
        return sum((line.total for line in self.lines), Decimal("0.00"))


def ship_to_lines(ship_from: ShipFrom) -> tuple[str, ...]:
    """Our warehouse (`[ship_from]` in clerk.toml) as address lines for `ship_to`."""
    return (ship_from.name, ship_from.street, f"{ship_from.city}, {ship_from.state} {ship_from.postal_code}",
            ship_from.country, ship_from.phone)


def render_purchase_order(po: PurchaseOrderDocument) -> bytes:
    """The purchase order as PDF bytes, on as many Letter pages as its lines need.

    The column headings repeat on every page, and every page's footer carries the number.
    """
    buffer = io.BytesIO()
    document = letter_document(buffer, f"Purchase order {po.number}", f"Purchase order for {po.supplier}")
    styles = getSampleStyleSheet()
    story = [
        _header(po, styles, document.width),
        Spacer(1, 0.25 * inch),
        _addresses(po, styles, document.width),
        Spacer(1, 0.3 * inch),
        _lines_table(po, styles["BodyText"], document.width),
    ]
    page_footer = footer(lambda _canvas: f"Purchase order {po.number}")
    document.build(story, onFirstPage=page_footer, onLaterPages=page_footer)
    return buffer.getvalue()


def _header(po: PurchaseOrderDocument, styles: StyleSheet1, width: float) -> Table:
    code = barcode(po.number)
    heading = [Paragraph("Purchase order", ParagraphStyle("heading", parent=styles["Title"], alignment=TA_LEFT)),
               Paragraph(escape(po.number), styles["Heading2"])]
    table = Table([[heading, code]], colWidths=[width - code.width, code.width])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("ALIGN", (1, 0), (1, 0), "RIGHT"),
                               ("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0)]))
    return table


def _addresses(po: PurchaseOrderDocument, styles: StyleSheet1, width: float) -> Table:
    body, label = styles["BodyText"], ParagraphStyle("label", parent=styles["BodyText"], fontName="Helvetica-Bold")
    facts = [["Date", f"{po.created_at:%Y-%m-%d}"], ["Supplier", Paragraph(escape(po.supplier), body)],
             ["Currency", po.currency]]
    facts_table = Table(facts, colWidths=[0.9 * inch, width / 2 - 0.9 * inch])
    facts_table.setStyle(TableStyle([("FONTNAME", (0, 0), (0, -1), "Helvetica-Bold"), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                                     ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    ship_to = [Paragraph("Ship to / bill to", label), Paragraph("<br/>".join(escape(line) for line in po.ship_to), body)]
    table = Table([[facts_table, ship_to]], colWidths=[width / 2, width / 2])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return table


def _lines_table(po: PurchaseOrderDocument, body: ParagraphStyle, width: float) -> Table:
    rows: list[list[object]] = [list(COLUMNS)]
    rows += [[line.sku, Paragraph(escape(line.title), body), str(line.quantity), _amount(line.unit_cost),
              _amount(line.total)] for line in po.lines]
    rows.append(["", "", "", f"Total {po.currency}", _amount(po.total)])
    table = Table(rows, colWidths=[share * width for share in COLUMN_SHARES], repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.black),
        ("LINEABOVE", (0, -1), (-1, -1), 0.75, colors.black),
        ("ROWBACKGROUNDS", (0, 1), (-1, -2), [colors.white, colors.HexColor("#f2f2f2")]),
        ("ALIGN", (2, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    return table


def _amount(value: Decimal) -> str:
    # Unit costs may carry up to 4 places (NUMERIC(18, 4)); show them rather than round them away.
    places = min(4, max(2, -int(value.normalize().as_tuple().exponent)))
    return f"{value:,.{places}f}"
