"""`clerk import catalog|stock`: good rows land, bad rows are reported by line number."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain.catalog import RowError, parse_catalog_row, parse_stock_row
from models.catalog_store import MASTER, upsert_variants
from models.db import unit_of_work
from models.stock_store import known_skus, set_on_hand


@dataclass
class ImportReport:
    landed: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)
    detail: dict[str, int] = field(default_factory=dict)


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        missing = [name for name in required if name not in header]
        if missing:
            raise RowError(f"{path.name}: missing column(s) {', '.join(missing)}")
        reader.fieldnames = header
        for row in reader:
            yield reader.line_num, row


def _parse_all(path: Path, required: tuple[str, ...], parse: Callable[[dict[str, str]], Any], report: ImportReport) -> list[tuple[int, Any]]:
    parsed = []
    for line, row in _rows(path, required):
        try:
            parsed.append((line, parse(row)))
        except RowError as exc:
            report.rejected.append((line, str(exc)))
    return parsed


def import_catalog(database_url: str, path: Path) -> ImportReport:
    report = ImportReport()
    parsed = _parse_all(path, ("sku", "title", "price", "currency"), parse_catalog_row, report)
    seen: dict[str, int] = {}
    rows = []
    for line, row in parsed:
        if row["sku"] in seen:
            report.rejected.append((line, f"sku {row['sku']!r} repeats line {seen[row['sku']]}"))
            continue
        seen[row["sku"]] = line
        rows.append(row)
    with unit_of_work(database_url) as session:
        report.detail = upsert_variants(session, rows, MASTER)
    report.landed = len(rows)
    return report


def import_stock(database_url: str, path: Path, column: str = "on_hand", kind: str = "set") -> ImportReport:
    report = ImportReport()
    parsed = _parse_all(path, ("sku", column), lambda row: parse_stock_row(row, column), report)
    with unit_of_work(database_url) as session:
        catalog = known_skus(session, sorted({sku for _, (sku, _, _) in parsed}))
        counts = []
        for line, (sku, location, units) in parsed:
            if sku not in catalog:
                report.rejected.append((line, f"sku {sku!r} is not in the catalog"))
            else:
                counts.append((sku, location, units))
        report.detail = {"ledger_entries": set_on_hand(session, counts, kind, f"import {path.name}")}
    report.landed = len(counts)
    report.rejected.sort()
    return report
