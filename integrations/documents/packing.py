"""The warehouse's papers for a shipping run: one pick list, and a packing slip per order.

The pick list sums what to take from the shelves by SKU; each packing slip goes in its box,
with a Code 128 of the order number for the packing scan, the lines and their quantities.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.platypus import PageBreak, Paragraph, Spacer, Table, TableStyle

from integrations.documents.common import barcode, footer, letter_document


@dataclass(frozen=True, slots=True)
class SlipLine:
    sku: str
    title: str
    quantity: int


@dataclass(frozen=True, slots=True)
class PackingSlip:
    """One order's slip. `ship_to` lines are the buyer's address: the slip goes in the box."""

    order_number: str
    channel: str
    ship_to: Sequence[str]
    lines: Sequence[SlipLine]


def render_packing_slips(slips: Sequence[PackingSlip], ship_from: Sequence[str]) -> bytes:
    """Every slip on a page of its own, in the order given."""
    buffer = io.BytesIO()
    document = letter_document(buffer, "Packing slips", f"{len(slips)} orders")
    styles = getSampleStyleSheet()
    body = styles["BodyText"]
    story: list[object] = []
    for number, slip in enumerate(slips):
        if number:
            story.append(PageBreak())
        code = barcode(slip.order_number)
        heading = [Paragraph("Packing slip", ParagraphStyle("h", parent=styles["Title"], alignment=0)),
                   Paragraph(f"Order {escape(slip.order_number)} ({escape(slip.channel)})", styles["Heading2"])]
        top = Table([[heading, code]], colWidths=[document.width - code.width, code.width])
        top.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
        addresses = Table([[Paragraph("<b>From</b><br/>" + "<br/>".join(map(escape, ship_from)), body),
                            Paragraph("<b>Ship to</b><br/>" + "<br/>".join(map(escape, slip.ship_to)), body)]],
                          colWidths=[document.width / 2] * 2)
        addresses.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
        story += [top, Spacer(1, 0.2 * inch), addresses, Spacer(1, 0.3 * inch),
                  _table([("SKU", "Item", "Qty")] + [(line.sku, Paragraph(escape(line.title), body), str(line.quantity))
                                                    for line in slip.lines], document.width)]
    page_footer = footer(lambda canvas: "Packing slips")
    document.build(story, onFirstPage=page_footer, onLaterPages=page_footer)
    return buffer.getvalue()


def render_pick_list(slips: Sequence[PackingSlip], run: str) -> bytes:
    """Units to pick per SKU over every slip, and which orders take them."""
    totals: dict[str, tuple[str, int, list[str]]] = {}
    for slip in slips:
        for line in slip.lines:
            title, units, orders = totals.get(line.sku, (line.title, 0, []))
            totals[line.sku] = (title, units + line.quantity, [*orders, slip.order_number])
    buffer = io.BytesIO()
    document = letter_document(buffer, f"Pick list {run}", f"{len(slips)} orders")
    styles = getSampleStyleSheet()
    body = styles["BodyText"]
    rows = [("SKU", "Item", "Qty", "Orders")] + [
        (sku, Paragraph(escape(title), body), str(units), Paragraph(escape(", ".join(orders)), body))
        for sku, (title, units, orders) in sorted(totals.items())]
    story = [Paragraph(f"Pick list {escape(run)}", styles["Title"]),
             Paragraph(f"{len(slips)} orders, {sum(t[1] for t in totals.values())} units", body),
             Spacer(1, 0.2 * inch), _table(rows, document.width, shares=(0.2, 0.4, 0.08, 0.32))]
    page_footer = footer(lambda canvas: f"Pick list {run}")
    document.build(story, onFirstPage=page_footer, onLaterPages=page_footer)
    return buffer.getvalue()


def _table(rows: Sequence[Sequence[object]], width: float, shares: Sequence[float] = (0.22, 0.63, 0.15)) -> Table:
    table = Table([list(row) for row in rows], colWidths=[share * width for share in shares], repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.black),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f2f2f2")]),
        ("ALIGN", (2, 0), (2, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    return table
