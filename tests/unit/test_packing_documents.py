"""Pick list and packing slips: PDFs that open, with the order numbers, barcodes and lines."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from integrations.documents.packing import PackingSlip, SlipLine, render_packing_slips, render_pick_list

SLIPS = [
    PackingSlip("#1001", "shopify", ("Ana Lima", "1 Main St", "Portland OR 97201", "US"),
                (SlipLine("MUG-1", "Stoneware mug", 2), SlipLine("TEE-1", "Tee, blue, M", 1))),
    PackingSlip("WC-77", "woocommerce", ("Ben Ode", "2 Side Rd", "Austin TX 78701", "US"), (SlipLine("MUG-1", "Stoneware mug", 1),)),
]
FROM = ("Warehouse", "1 Dock Rd", "Portland, OR 97201", "US")
needs_poppler = pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils (pdftotext, pdftoppm) not installed")


def _text(pdf: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout
    return out.split("\f")


@needs_poppler
def test_each_order_gets_a_slip_page_with_its_number_and_lines(tmp_path: Path) -> None:
    pdf = render_packing_slips(SLIPS, FROM)
    pages = [page for page in _text(pdf, tmp_path) if page.strip()]
    assert len(pages) == 2
    assert "#1001" in pages[0] and "TEE-1" in pages[0] and "Ana Lima" in pages[0] and "WC-77" not in pages[0]
    assert "WC-77" in pages[1] and "MUG-1" in pages[1]


@needs_poppler
def test_the_pick_list_sums_units_by_sku(tmp_path: Path) -> None:
    [page, *_] = _text(render_pick_list(SLIPS, "2026-11-26 #1"), tmp_path)
    mug = next(line for line in page.splitlines() if "MUG-1" in line)
    assert " 3 " in f" {mug} " and "#1001, WC-77" in mug
    assert "2 orders, 4 units" in page


@needs_poppler
def test_pdftoppm_renders_every_page(tmp_path: Path) -> None:
    path = tmp_path / "slips.pdf"
    path.write_bytes(render_packing_slips(SLIPS, FROM))
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(path), str(tmp_path / "page")], check=True)
    assert len(list(tmp_path.glob("page-*.png"))) == 2


def test_the_slip_carries_a_code_128_of_the_order_number() -> None:
    from reportlab.graphics.barcode.code128 import Code128

    from integrations.documents.common import barcode

    code = barcode("#1001")
    assert isinstance(code, Code128) and code.value == "#1001"
    assert render_packing_slips(SLIPS, FROM) == render_packing_slips(SLIPS, FROM)  # same bytes every time


@needs_poppler
def test_a_slip_too_long_for_a_page_goes_on_over_pages_with_every_line(tmp_path: Path) -> None:
    long = PackingSlip("#2002", "magento", ("Cy Dee", "3 Long Rd", "Boise ID 83702", "US"),
                       tuple(SlipLine(f"SKU-{n:03d}", f"Item {n}", 1 + n % 3) for n in range(90)))
    pages = [page for page in _text(render_packing_slips([long], FROM), tmp_path) if page.strip()]
    assert len(pages) >= 2 and all("#2002" in page for page in pages)
    assert all(any(f"SKU-{n:03d}" in page for page in pages) for n in range(90))


@needs_poppler
def test_a_pick_list_of_thousands_of_orders_goes_on_over_pages_with_every_order(tmp_path: Path) -> None:
    many = [PackingSlip(f"#{n}", "shopify", (f"Buyer {n}", f"{n} Main St", "Austin TX 78701", "US"),
                        (SlipLine("MUG-1", "Stoneware mug", 1),) + ((SlipLine("TEE-1", "Tee", 2),) if n % 3 == 0 else ()))
            for n in range(1, 2501)]  # one SKU's orders are far more than a page holds
    pdf = render_pick_list(many, "big run")
    pages = [page for page in _text(pdf, tmp_path) if page.strip()]
    assert len(pages) >= 3 and all("Orders" in page for page in pages)  # the heading on every page
    assert "2500 orders, 4166 units" in pages[0]
    numbers = [word for page in pages for word in page.replace(",", " ").split() if word.startswith("#")]
    assert sorted(numbers) == sorted([f"#{n}" for n in range(1, 2501)] + [f"#{n}" for n in range(3, 2501, 3)])
    path = tmp_path / "pick.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "20", "-png", str(path), str(tmp_path / "pick")], check=True)
    assert len(list(tmp_path.glob("pick-*.png"))) == len(pages)
