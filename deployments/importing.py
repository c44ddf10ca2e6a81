"""`clerk import catalog|stock|count`: catalog and stock rows land unless bad (reported by line
number); a cycle count lands whole or not at all."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.catalog import RowError, parse_catalog_row, parse_stock_row
from domain.stock import Movement, count_variances, oversold
from models import intake as intake_store
from models.catalog import Variant
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


def import_stock(database_url: str, path: Path, column: str = "on_hand", kind: str = Movement.ADJUSTMENT) -> ImportReport:
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
        changes = set_on_hand(session, counts, kind, f"import {path.name}", "clerk import stock")
        report.detail = {"ledger_entries": sum(1 for *_, before, after in changes if before != after),
                         "orders_held": hold_oversold_orders(session, f"stock import {path.name} left too few units")}
    report.landed = len(counts)
    report.rejected.sort()
    return report


def hold_oversold_orders(session: Session, note: str) -> int:
    """After stock went down: the newest accepted orders whose units are no longer there go
    back on hold `insufficient_stock` (order intake alerts them and releases them, oldest
    first, when stock comes). Returns how many."""
    short = intake_store.short_skus(session)
    if not short:
        return 0
    reserving = intake_store.reserving_orders(session, short)
    chosen = set(oversold(short, [(str(order_id), units) for order_id, units in reserving]))
    intake_store.hold_for_stock(session, [(i, units) for i, units in reserving if str(i) in chosen], note)
    return len(chosen)


class CountRefused(ValueError):
    """A cycle count with bad rows: none of it is booked. `problems` are (line, why)."""

    def __init__(self, problems: list[tuple[int, str]]):
        super().__init__(f"{len(problems)} bad row(s); nothing booked")
        self.problems = problems


def import_count(database_url: str, path: Path, actor: str) -> dict[str, Any]:
    """Books a cycle count (`sku,counted[,location]`) as count corrections, all rows or none.

    Returns:
        The variance report: every counted SKU with its expected and counted units and the
        variance at cost, largest loss first, and the totals.

    Raises:
        RowError: the file lacks a required column.
        CountRefused: a row is unreadable, negative, repeated, or names an unknown SKU.
    """
    report = ImportReport()
    parsed = _parse_all(path, ("sku", "counted"), lambda row: parse_stock_row(row, "counted"), report)
    problems = list(report.rejected)
    seen: dict[tuple[str, str], int] = {}
    with unit_of_work(database_url) as session:
        catalog = known_skus(session, sorted({sku for _, (sku, _, _) in parsed}))
        for line, (sku, location, _) in parsed:
            if sku not in catalog:
                problems.append((line, f"sku {sku!r} is not in the catalog"))
            elif (sku, location) in seen:
                problems.append((line, f"sku {sku!r} at {location} repeats line {seen[(sku, location)]}"))
            else:
                seen[(sku, location)] = line
        if problems:
            raise CountRefused(sorted(problems))
        changes = set_on_hand(session, [row for _, row in parsed], Movement.COUNT, f"cycle count {path.name}", actor)
        held = hold_oversold_orders(session, f"cycle count {path.name} left too few units")
        costs = dict(session.execute(select(Variant.sku, Variant.cost).where(Variant.sku.in_(sorted(catalog)))).all())
    variances = count_variances(changes, costs)
    return {
        "counted": len(changes), "changed": sum(1 for v in variances if v.variance),
        "units_variance": sum(v.variance for v in variances),
        "value_variance": str(sum((v.value for v in variances if v.value is not None), Decimal("0.00"))),
        "orders_held": held, "variances": [v.as_record() for v in variances],
    }
