"""The warehouse's papers for a shipping run: one pick list, and a packing slip per order.

The pick list sums what to take from the shelves by SKU; each packing slip goes in its box,
with a Code 128 of the order number for the packing scan, the lines and their quantities.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.lib.pagesizes import LETTER
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

from integrations.documents.common import MARGIN, barcode, footer, letter_document


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


def write_papers(slips: Sequence[PackingSlip], run: str, ship_from: Sequence[str], pick_path: str,
                 packing_path: str) -> None:
    """Writes the pick list and the packing slips of `slips` to the paths given (what a
    process drawing papers for `ship-orders` is asked to do)."""
    Path(pick_path).write_bytes(render_pick_list(slips, run))
    Path(packing_path).write_bytes(render_packing_slips(slips, ship_from))


def render_packing_slips(slips: Sequence[PackingSlip], ship_from: Sequence[str]) -> bytes:
    """Every slip on a page of its own (more when its lines overflow), in the order given.

    Drawn straight on the canvas, not laid out with platypus: a run prints a slip for every
    order it ships, and layout cost ~11 ms a page. What every page shares (the title, the
    warehouse's address, the column headings) is drawn once, as a form each page reuses.
    """
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=LETTER, invariant=1)
    canvas.setTitle("Packing slips")
    canvas.setCreator("Clerk")
    width, height = LETTER
    forms: dict[int, str] = {}  # rows in the address block -> the form of the page's fixed parts
    for slip in slips:
        y = _slip_head(canvas, slip, ship_from, width, height, forms)
        for line in slip.lines:
            if y < MARGIN + 0.5 * inch:
                _slip_foot(canvas, slip, width)
                canvas.showPage()
                y = _slip_head(canvas, slip, ship_from, width, height, forms)
            canvas.setFont("Helvetica", 10)
            canvas.drawString(MARGIN, y, line.sku)
            canvas.drawString(MARGIN + 1.6 * inch, y, _fit(line.title, 70))
            canvas.drawRightString(width - MARGIN, y, str(line.quantity))
            y -= 14
        _slip_foot(canvas, slip, width)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _slip_head(canvas: Canvas, slip: PackingSlip, ship_from: Sequence[str], width: float, height: float,
               forms: dict[int, str]) -> float:
    """The page's heading, barcode and addresses; returns where the lines start."""
    top = height - MARGIN
    rows = max(len(ship_from), len(slip.ship_to))
    if rows not in forms:
        forms[rows] = f"slip-fixed-{rows}"
        canvas.beginForm(forms[rows])
        _slip_fixed(canvas, ship_from, rows, width, top)
        canvas.endForm()
    canvas.doForm(forms[rows])
    canvas.setFont("Helvetica-Bold", 12)
    canvas.drawString(MARGIN, top - 38, _fit(f"Order {slip.order_number} ({slip.channel})", 60))
    code = barcode(slip.order_number)
    code.drawOn(canvas, width - MARGIN - code.width, top - code.height)
    x = MARGIN + (width - 2 * MARGIN) / 2
    canvas.setFont("Helvetica", 10)
    for row, text in enumerate(slip.ship_to):
        canvas.drawString(x, top - 70 - 13 * (row + 1), _fit(text, 45))
    return top - 70 - 13 * (rows + 3) - 18


def _slip_fixed(canvas: Canvas, ship_from: Sequence[str], rows: int, width: float, top: float) -> None:
    """What every slip page with `rows` address rows shares."""
    canvas.setFont("Helvetica-Bold", 18)
    canvas.drawString(MARGIN, top - 18, "Packing slip")
    y = top - 70
    for column, label in enumerate(("From", "Ship to")):
        canvas.setFont("Helvetica-Bold", 10)
        canvas.drawString(MARGIN + column * (width - 2 * MARGIN) / 2, y, label)
    canvas.setFont("Helvetica", 10)
    for row, text in enumerate(ship_from):
        canvas.drawString(MARGIN, y - 13 * (row + 1), _fit(text, 45))
    y -= 13 * (rows + 3)
    canvas.setFont("Helvetica-Bold", 10)
    canvas.drawString(MARGIN, y, "SKU")
    canvas.drawString(MARGIN + 1.6 * inch, y, "Item")
    canvas.drawRightString(width - MARGIN, y, "Qty")
    canvas.setLineWidth(0.75)
    canvas.line(MARGIN, y - 4, width - MARGIN, y - 4)


def _slip_foot(canvas: Canvas, slip: PackingSlip, width: float) -> None:
    canvas.setFont("Helvetica", 8)
    canvas.drawString(MARGIN, MARGIN / 2, f"Packing slip {slip.order_number}")
    canvas.drawRightString(width - MARGIN, MARGIN / 2, f"Page {canvas.getPageNumber()}")


def _fit(text: str, characters: int) -> str:
    return text if len(text) <= characters else text[: characters - 1] + "…"


def render_pick_list(slips: Sequence[PackingSlip], run: str) -> bytes:
    """Units to pick per SKU over every slip, and which orders take them.

    A SKU's row goes on over the next page when its orders do not fit on one (thousands of
    orders in a run); the heading row is repeated on every page.
    """
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
             Spacer(1, 0.2 * inch), _table(rows, document.width, shares=(0.18, 0.3, 0.08, 0.44))]
    page_footer = footer(lambda canvas: f"Pick list {run}")
    document.build(story, onFirstPage=page_footer, onLaterPages=page_footer)
    return buffer.getvalue()


def _table(rows: Sequence[Sequence[object]], width: float, shares: Sequence[float] = (0.22, 0.63, 0.15)) -> Table:
    # splitInRow: a row taller than the room left (a SKU's orders, in a big run) is split
    # across pages rather than failing the layout.
    table = Table([list(row) for row in rows], colWidths=[share * width for share in shares], repeatRows=1,
                  splitInRow=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.black),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f2f2f2")]),
        ("ALIGN", (2, 0), (2, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    return table
