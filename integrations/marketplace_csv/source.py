"""An orders file as an `OrderSource`: every order in the file, a batch at a time, in file order."""

from __future__ import annotations

import csv
import re
import tomllib
from collections.abc import Iterator
from datetime import datetime
from functools import cached_property
from pathlib import Path

from domain.orders import ChannelOrder
from integrations.marketplace_csv.mapping import MappingError, OrderMapping, group_rows, mapping_from_toml, parse_order
from integrations.protocols import CatalogItem, OrderPage, Payload

BUNDLED = Path(__file__).parent
# Clerk stores channel names in 40 characters; keep them plain so they read well in exports and alerts.
_CHANNEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")


class OrderFileError(ValueError):
    """A file that cannot be imported at all (no order id column, wrong encoding, ...); nothing lands."""


def bundled_mappings() -> list[str]:
    """Names `--mapping` accepts besides a file path."""
    return sorted(path.stem for path in BUNDLED.glob("*.toml"))


def load_mapping(name: str | None) -> OrderMapping:
    """The generic mapping (None), a bundled one by name (`amazon`), or a mapping TOML file.

    Raises:
        MappingError: when the file is missing, is not TOML, or names unknown fields.
    """
    if not name:
        return OrderMapping()
    path = Path(name)
    if not path.exists() and name in bundled_mappings():
        path = BUNDLED / f"{name}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MappingError(f"no mapping file {name!r} (bundled: {', '.join(bundled_mappings())})") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path.name}: {exc}") from exc
    try:
        return mapping_from_toml(data)
    except MappingError as exc:
        raise MappingError(f"{path.name}: {exc}") from exc


class OrderFile:
    """The orders of one export file, served as the orders of `channel`.

    Reading the header checks the file can be imported; the rows are read once, when first
    asked for.
    """

    def __init__(self, path: Path, channel: str, mapping: OrderMapping):
        if not _CHANNEL.fullmatch(channel):
            raise OrderFileError(f"channel {channel!r}: use up to 40 letters, digits, '.', '_' or '-'")
        self.path = path
        self.channel = channel
        self.mapping = mapping
        records = self._records()
        first = next(records, None)
        records.close()
        if first is None:
            raise OrderFileError(f"{path.name} is empty")
        self.header = [name.strip() for name in first[1]]
        if not any(set(self.header).intersection(choices) for choices in mapping.columns["order_id"]):
            wanted = " or ".join(repr(choice) for choices in mapping.columns["order_id"] for choice in choices)
            raise OrderFileError(f"{path.name}: no order id column (looked for {wanted})")

    def missing_columns(self) -> list[tuple[str, str]]:
        """(field, column) for columns the mapping file names that this file lacks: read as blank."""
        return self.mapping.missing(self.header)

    def _records(self) -> Iterator[tuple[int, list[str]]]:
        """(line the record starts on, cells); a quoted cell may span lines."""
        start = 1
        try:
            with self.path.open(newline="", encoding=self.mapping.encoding) as handle:
                reader = csv.reader(handle, delimiter=self.mapping.delimiter)
                for cells in reader:
                    yield start, cells
                    start = reader.line_num + 1
        except UnicodeDecodeError as exc:
            raise OrderFileError(
                f"{self.path.name}:{self._undecodable_line()}: not {self.mapping.encoding} text"
                " (set `encoding` in the mapping)"
            ) from exc
        except csv.Error as exc:
            raise OrderFileError(f"{self.path.name}:{start}: {exc}") from exc

    def _undecodable_line(self) -> int:
        """The first line the encoding cannot read (the decoder works a chunk at a time, not a line)."""
        for number, raw in enumerate(self.path.read_bytes().splitlines(), 1):
            try:
                raw.decode(self.mapping.encoding)
            except UnicodeDecodeError:
                return number
        return 1

    @cached_property
    def payloads(self) -> list[Payload]:
        """Every order's rows, grouped by order id; blank rows are skipped."""
        rows = []
        width = len(self.header)
        records = self._records()
        next(records)  # the header
        for line, cells in records:
            if not any(cell.strip() for cell in cells):
                continue
            row: Payload = {"line": line, "cells": dict(zip(self.header, cells + [""] * (width - len(cells))))}
            if any(cell.strip() for cell in cells[width:]):
                row["overflow"] = cells[width:]
            rows.append(row)
        return group_rows(rows, self.mapping)

    def changed_orders(self, since: datetime | None, cursor: str | None, limit: int) -> OrderPage:
        """The file's orders from offset `cursor`; `since` does not apply (unchanged ones are recognised by fingerprint)."""
        start = int(cursor or 0)
        batch = self.payloads[start:start + limit]
        after = start + len(batch)
        return OrderPage(batch, str(after) if after < len(self.payloads) else None, None)

    def parse_order(self, payload: Payload) -> ChannelOrder:
        return parse_order(payload, self.mapping, self.channel)

    def catalog_pages(self, since: datetime | None = None) -> Iterator[list[CatalogItem]]:
        """A file of orders lists no catalog."""
        return iter(())
