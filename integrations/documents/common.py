"""What every Clerk document shares: the page, its footer, and Code 128 barcodes."""

from __future__ import annotations

from collections.abc import Callable

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.units import inch
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, SimpleDocTemplate

MARGIN = 0.6 * inch
BARCODE_HEIGHT = 0.5 * inch
BARCODE_MAX_WIDTH = 3.2 * inch
# Narrowest bar in points: wider prints and scans more reliably; long numbers get narrower bars.
BARCODE_BAR_WIDTH = 1.0


def barcode(number: str) -> Flowable:
    """A Code 128 of `number` no wider than `BARCODE_MAX_WIDTH`, with its quiet zones."""
    modules = Code128(number, barWidth=1, quiet=0).width
    quiet_zones = 2 * 0.25 * inch  # reportlab's margin each side, for bars up to 1.8 points wide
    bar_width = min(BARCODE_BAR_WIDTH, (BARCODE_MAX_WIDTH - quiet_zones) / modules)
    # No human-readable line: reportlab sets it over the bars' feet, and the heading shows the number.
    return Code128(number, barWidth=bar_width, barHeight=BARCODE_HEIGHT)


def letter_document(buffer: object, title: str, subject: str) -> SimpleDocTemplate:
    """A Letter page with Clerk's margins, rendered byte for byte the same every time."""
    return SimpleDocTemplate(
        buffer, pagesize=LETTER, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN, bottomMargin=MARGIN,
        title=title, subject=subject, creator="Clerk", invariant=1,
    )


def footer(label: Callable[[Canvas], str]) -> Callable[[Canvas, SimpleDocTemplate], None]:
    """Draws `label(canvas)` at the bottom left and the page number at the bottom right."""

    def draw(canvas: Canvas, _document: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(MARGIN, MARGIN / 2, label(canvas))
        canvas.drawRightString(LETTER[0] - MARGIN, MARGIN / 2, f"Page {canvas.getPageNumber()}")
        canvas.restoreState()

    return draw
