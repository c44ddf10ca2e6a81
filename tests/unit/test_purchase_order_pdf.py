"""render_purchase_order: a 120-line purchase order, read back from the PDF's own content streams.

Text comes from `pdftotext` when poppler is installed, else from the page content streams,
decoded here without reportlab (reportlab writes them ASCII85 + Flate compressed).
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import zlib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from reportlab.graphics.barcode.code128 import Code128

from integrations.documents.common import BARCODE_HEIGHT
from integrations.documents.purchase_order import (
    InvalidPurchaseOrder,
    PurchaseOrderDocument,
    PurchaseOrderLine,
    render_purchase_order,
    ship_to_lines,
)
from integrations.settings import ShipFrom

NUMBER = "PO-20261126-ACME"
LINES = [
    PurchaseOrderLine(
        sku=f"ACME-{n:04d}",
        # Every seventh title is long enough to wrap, and carries the characters markup would eat.
        title=f"Widget {n} <large> & heavy-duty, stainless steel, boxed by ten" if n % 7 == 0 else f"Widget {n}",
        quantity=n % 5 + 1,
        unit_cost=Decimal("3.1415") if n % 3 == 0 else Decimal("12.5"),
    )
    for n in range(120)
]
PO = PurchaseOrderDocument(
    number=NUMBER,
    supplier="Acme Supply & Co.",
    created_at=datetime(2026, 11, 26, 2, 0, tzinfo=UTC),
    currency="USD",
    lines=LINES,
    ship_to=ship_to_lines(ShipFrom()),
)


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return render_purchase_order(PO)


# -- reading a PDF without reportlab ------------------------------------------------------------


def _objects(pdf: bytes) -> dict[int, bytes]:
    return {int(m.group(1)): m.group(2) for m in re.finditer(rb"(?s)(\d+) 0 obj\s(.*?)\sendobj", pdf)}


def _stream(obj: bytes) -> bytes:
    length = int(re.search(rb"/Length (\d+)", obj).group(1))  # type: ignore[union-attr]
    data = re.split(rb"stream\r?\n", obj, maxsplit=1)[1][:length]
    filters = re.search(rb"/Filter \[?([^\]>]*)", obj)
    for name in (filters.group(1).split() if filters else []):
        if name == b"/ASCII85Decode":
            data = base64.a85decode(data.strip().removesuffix(b"~>"))
        elif name == b"/FlateDecode":
            data = zlib.decompress(data)
        else:
            raise AssertionError(f"unexpected filter {name!r}")
    return data


def _page_streams(pdf: bytes) -> list[bytes]:
    """Each page's decoded content stream, in page order."""
    objects = _objects(pdf)
    pages = next(obj for obj in objects.values() if re.search(rb"/Type /Pages\b", obj))
    kids = [int(n) for n in re.findall(rb"(\d+) 0 R", re.search(rb"/Kids \[([^\]]*)\]", pages).group(1))]  # type: ignore[union-attr]
    contents = [int(re.search(rb"/Contents (\d+) 0 R", objects[kid]).group(1)) for kid in kids]  # type: ignore[union-attr]
    return [_stream(objects[n]) for n in contents]


_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f", b"(": b"(", b")": b")", b"\\": b"\\"}


def _shown_text(stream: bytes) -> str:
    """The strings a content stream shows with `Tj`, one a line (reportlab sets each with one Tj)."""
    def unescape(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        return bytes([int(code, 8)]) if code[:1].isdigit() else _ESCAPES.get(code, code)

    shown = re.findall(rb"\(((?:[^()\\]|\\.)*)\) Tj", stream)
    return "\n".join(re.sub(rb"\\([0-7]{1,3}|.)", unescape, s).decode("cp1252") for s in shown)


def _page_texts(pdf: bytes, tmp_path: Path) -> list[str]:
    if shutil.which("pdftotext"):
        path = tmp_path / "po.pdf"
        path.write_bytes(pdf)
        out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True)
        return out.stdout.split("\f")[:-1]  # every page ends with a form feed
    return [_shown_text(stream) for stream in _page_streams(pdf)]


# -- the tests ----------------------------------------------------------------------------------


def test_a_long_order_is_a_pdf_of_several_pages(pdf: bytes, tmp_path: Path) -> None:
    assert pdf.startswith(b"%PDF-1.")
    assert pdf.rstrip().endswith(b"%%EOF")
    pages = _page_texts(pdf, tmp_path)
    assert len(pages) == len(_page_streams(pdf)) >= 3


def test_every_sku_is_printed_once_with_the_number_on_every_page(pdf: bytes, tmp_path: Path) -> None:
    pages = _page_texts(pdf, tmp_path)
    text = "\n".join(pages)
    for line in LINES:
        assert len(re.findall(rf"\b{line.sku}\b", text)) == 1, line.sku
    for number, page in enumerate(pages, start=1):
        assert f"Purchase order {NUMBER}" in page  # the footer
        assert f"Page {number}" in page
        assert "Line total" in page  # headings repeat on every page
    assert NUMBER in pages[0].replace(f"Purchase order {NUMBER}", "")  # the heading, beside the footer


def test_header_amounts_and_total_read_as_given(pdf: bytes, tmp_path: Path) -> None:
    pages = _page_texts(pdf, tmp_path)
    first, text = pages[0], "\n".join(pages)
    for expected in ("2026-11-26", "Acme Supply & Co.", "USD", "Ship to / bill to", "Portland, OR 97201", "1 Dock Rd"):
        assert expected in first, expected
    # Escaped, not read as markup (reportlab shows "<" as a Tj of its own, so spaces are not compared).
    assert "Widget7<large>&heavy-duty" in "".join(text.split())
    assert "3.1415" in text and "12.50" in text  # a fourth decimal kept, two at least
    assert "3.14" in pages[0].split("ACME-0000")[1].split("ACME-0001")[0]  # 1 × 3.1415, to the cent
    assert PO.total == Decimal("3376.96")  # the sum of the rounded line totals
    assert "Total USD" in pages[-1] and "3,376.96" in pages[-1]
    assert all("Total USD" not in page for page in pages[:-1])


def test_the_barcode_on_the_first_page_is_code_128_of_the_number(pdf: bytes) -> None:
    rects = [tuple(float(v) for v in m.groups()) for m in re.finditer(
        rb"n ([-\d.]+) ([-\d.]+) ([\d.]+) ([\d.]+) re f\*", _page_streams(pdf)[0])]
    bars = sorted((x, w) for x, y, w, h in rects if y == 0 and h == BARCODE_HEIGHT)
    module = min(w for _, w in bars)
    widths = []
    for (x, w), (next_x, _) in zip(bars, bars[1:] + [(None, None)]):
        widths.append(round(w / module))
        if next_x is not None:
            widths.append(round((next_x - x - w) / module))
    expected = Code128(NUMBER)
    expected.validate()
    expected.encode()
    # reportlab spells each element as a letter: A-D a bar of 1-4 modules, a-d a space.
    assert widths == ["ABCD".index(c.upper()) + 1 for c in expected.decompose()]


def test_the_same_order_renders_to_the_same_bytes(pdf: bytes) -> None:
    assert render_purchase_order(PO) == pdf
    other = PurchaseOrderDocument(NUMBER.replace("ACME", "ACMF"), PO.supplier, PO.created_at, PO.currency,
                                  PO.lines, PO.ship_to)
    assert render_purchase_order(other) != pdf


@pytest.mark.skipif(shutil.which("pdftoppm") is None,
                    reason="pdftoppm (poppler-utils) is not installed, so pages are not rasterised")
def test_pdftoppm_renders_every_page(pdf: bytes, tmp_path: Path) -> None:
    path = tmp_path / "po.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["pdftoppm", "-r", "30", "-png", str(path), str(tmp_path / "page")],
                          capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (0, "")
    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) == len(_page_streams(pdf))
    assert all(image.read_bytes().startswith(b"\x89PNG") for image in images)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"lines": []}, "no_lines"),
        ({"currency": "usd"}, "unknown_currency"),
        ({"number": "PO-ÄPFEL"}, "bad_number"),
        ({"lines": [PurchaseOrderLine("A-1", "A", 0, Decimal("1"))]}, "bad_quantity"),
        ({"lines": [PurchaseOrderLine("A-1", "A", 2, 1.5)]}, "bad_unit_cost"),  # type: ignore[arg-type]
        ({"lines": [PurchaseOrderLine("A-1", "A", 2, Decimal("-1"))]}, "bad_unit_cost"),
    ],
)
def test_an_order_that_cannot_be_printed_names_its_reason(change: dict, reason: str) -> None:
    fields = {"number": NUMBER, "supplier": "Acme", "created_at": PO.created_at, "currency": "USD",
              "lines": LINES[:1], "ship_to": ("Warehouse",), **change}
    with pytest.raises(InvalidPurchaseOrder) as caught:
        PurchaseOrderDocument(**fields)
    assert caught.value.reason == reason
