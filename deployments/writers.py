"""Writing export records as JSON Lines, CSV or an Excel workbook."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

FORMATS = ("jsonl", "csv", "xlsx")


def _flat(value: Any) -> Any:
    """Nested values (lines, reasons) become JSON text in a CSV or workbook cell."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value


@contextmanager
def _text_target(output: Path | None) -> Iterator[IO[str]]:
    if output is None:
        yield sys.stdout
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8", newline="") as handle:
        yield handle


def write_records(records: Iterable[dict[str, Any]], fmt: str, output: Path | None) -> int:
    """Writes every record; returns how many. `output` None means standard output (not for xlsx)."""
    count = 0
    if fmt == "jsonl":
        with _text_target(output) as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
    elif fmt == "csv":
        with _text_target(output) as handle:
            writer: csv.DictWriter[str] | None = None
            for record in records:
                if writer is None:
                    writer = csv.DictWriter(handle, fieldnames=list(record))
                    writer.writeheader()
                writer.writerow({k: _flat(v) for k, v in record.items()})
                count += 1
    elif fmt == "xlsx":
        if output is None:
            raise ValueError("xlsx needs --output PATH")
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet(output.stem[:31] or "export")
        header: list[str] | None = None
        for record in records:
            if header is None:
                header = list(record)
                sheet.append(header)
            sheet.append([_flat(record.get(name)) for name in header])
            count += 1
        output.parent.mkdir(parents=True, exist_ok=True)
        book.save(output)
    else:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return count
