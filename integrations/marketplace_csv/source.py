"""An orders file as an `OrderSource`: every order in the file, a batch at a time, in file order.

The file is read as a stream, never whole: memory holds one batch of orders' rows and, while
the file is first read, each order id once.
"""

from __future__ import annotations

import csv
import re
import tomllib
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from itertools import islice
from pathlib import Path

from domain.orders import ChannelOrder
from integrations.marketplace_csv.mapping import MappingError, OrderMapping, mapping_from_toml, order_id_of, parse_order
from integrations.protocols import CatalogItem, OrderPage, Payload

BUNDLED = Path(__file__).parent
# Clerk stores channel names in 40 characters; keep them plain so they read well in exports and alerts.
_CHANNEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")

# Where a record starts: the text file's position (to seek back to it) and its line number.
Mark = tuple[int, int]
_TOP: Mark = (0, 1)


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


@dataclass(frozen=True, slots=True)
class OrderIndex:
    """What one read of the whole file learns: how many orders it holds, and which are split.

    A run is rows of one order next to each other (blank rows aside). Marketplace exports write
    an order's rows as one run, but a file sorted by SKU or date, or pasted together from two
    exports, splits orders into several runs. Such an order is served whole, at its first run:
    its later runs are read by seeking back to where they start, and skipped where they lie. A
    split order is never quarantined for being split, and never imported twice in halves.
    """

    orders: int
    # order id -> the line its first run starts on (read with the rest of the file), and where each later run starts
    split: dict[str, tuple[int, list[Mark]]]


class OrderPayloads:
    """A file's orders in file order, read afresh from the file each time they are walked."""

    def __init__(self, source: OrderFile):
        self._source = source

    def __len__(self) -> int:
        return self._source.index.orders

    def __iter__(self) -> Iterator[Payload]:
        return (payload for _, payload in self._source.orders())


class OrderFile:
    """The orders of one export file, served as the orders of `channel`.

    Reading the header checks the file can be imported; the first batch asked for (or `len(payloads)`)
    reads the whole file once, so an unreadable file is refused before any order lands.
    """

    def __init__(self, path: Path, channel: str, mapping: OrderMapping):
        if not _CHANNEL.fullmatch(channel):
            raise OrderFileError(f"channel {channel!r}: use up to 40 letters, digits, '.', '_' or '-'")
        self.path = path
        self.channel = channel
        self.mapping = mapping
        with closing(self._records()) as records:
            first = next(records, None)
        if first is None:
            raise OrderFileError(f"{path.name} is empty")
        self.header = [name.strip() for name in first[1]]
        if not any(set(self.header).intersection(choices) for choices in mapping.columns["order_id"]):
            wanted = " or ".join(repr(choice) for choices in mapping.columns["order_id"] for choice in choices)
            raise OrderFileError(f"{path.name}: no order id column (looked for {wanted})")

    def missing_columns(self) -> list[tuple[str, str]]:
        """(field, column) for columns the mapping file names that this file lacks: read as blank."""
        return self.mapping.missing(self.header)

    @property
    def payloads(self) -> OrderPayloads:
        """Every order's rows, grouped by order id, in order of first appearance; blank rows are skipped."""
        return OrderPayloads(self)

    def _records(self, start: Mark = _TOP) -> Iterator[tuple[Mark, list[str]]]:
        """(where the record starts, cells) from `start` on; a quoted cell may span lines."""
        line = start[1]
        try:
            with self.path.open(newline="", encoding=self.mapping.encoding) as handle:
                handle.seek(start[0])
                # Lines come through readline: a text file tells its position between readline calls only.
                reader = csv.reader(iter(handle.readline, ""), delimiter=self.mapping.delimiter)
                while True:
                    line = start[1] + reader.line_num
                    mark = (handle.tell(), line)
                    cells = next(reader, None)
                    if cells is None:
                        return
                    yield mark, cells
        except UnicodeDecodeError as exc:
            raise OrderFileError(
                f"{self.path.name}:{self._undecodable_line()}: not {self.mapping.encoding} text"
                " (set `encoding` in the mapping)"
            ) from exc
        except csv.Error as exc:
            raise OrderFileError(f"{self.path.name}:{line}: {exc}") from exc

    def _undecodable_line(self) -> int:
        """The first line the encoding cannot read (the decoder works a chunk at a time, not a line)."""
        for number, raw in enumerate(self.path.read_bytes().splitlines(), 1):
            try:
                raw.decode(self.mapping.encoding)
            except UnicodeDecodeError:
                return number
        return 1

    def _rows(self, start: Mark | None) -> Iterator[tuple[Mark, Payload]]:
        """Each non-blank row from `start` on (None: the first row after the header)."""
        width = len(self.header)
        records = self._records(start or _TOP)
        if start is None:
            next(records)
        for mark, cells in records:
            if not any(cell.strip() for cell in cells):
                continue
            row: Payload = {"line": mark[1], "cells": dict(zip(self.header, cells + [""] * (width - len(cells))))}
            if any(cell.strip() for cell in cells[width:]):
                row["overflow"] = cells[width:]
            yield mark, row

    def _runs(self, start: Mark | None = None) -> Iterator[tuple[Mark, str | None, list[Payload]]]:
        """(where it starts, order id, rows) of each run from `start` on; a row without an order id is a run alone."""
        run: tuple[Mark, str | None, list[Payload]] | None = None
        for mark, row in self._rows(start):
            order_id = order_id_of(row, self.mapping)
            if run is not None and order_id is not None and order_id == run[1]:
                run[2].append(row)
                continue
            if run is not None:
                yield run
            run = (mark, order_id, [row])
        if run is not None:
            yield run

    @cached_property
    def index(self) -> OrderIndex:
        """Reads the whole file once (refusing it if it cannot be read) and remembers where split orders lie.

        Every order id is held while reading (with a line number: about 150 bytes an order); only
        split orders' are kept.
        """
        first_lines: dict[str, int] = {}
        later_runs: dict[str, list[Mark]] = {}
        alone = 0
        for mark, order_id, _ in self._runs():
            if order_id is None:
                alone += 1
            elif order_id not in first_lines:
                first_lines[order_id] = mark[1]
            else:
                later_runs.setdefault(order_id, []).append(mark)
        split = {order_id: (first_lines[order_id], later) for order_id, later in later_runs.items()}
        return OrderIndex(len(first_lines) + alone, split)

    def orders(self, start: Mark | None = None) -> Iterator[tuple[Mark, Payload]]:
        """(where it starts, payload) of each order whose first run is at or after `start`, in file order."""
        split = self.index.split
        with closing(self._runs(start)) as runs:
            for mark, order_id, rows in runs:
                if order_id in split:
                    first_line, later_runs = split[order_id]
                    if mark[1] != first_line:
                        continue  # served with the order's first run
                    rows = rows + [row for later in later_runs for row in self._run_at(later)]
                yield mark, {"order_id": order_id, "rows": rows}

    def _run_at(self, start: Mark) -> list[Payload]:
        """The rows of the run that starts at `start`."""
        with closing(self._runs(start)) as runs:
            return next(runs)[2]

    def changed_orders(self, since: datetime | None, cursor: str | None, limit: int) -> OrderPage:
        """The file's orders from `cursor` (where the next order starts).

        `since` does not apply: unchanged orders are recognised by fingerprint.
        """
        start = None
        if cursor:
            position, line = cursor.split(":")
            start = (int(position), int(line))
        with closing(self.orders(start)) as orders:
            batch = list(islice(orders, limit + 1))  # one more than asked: where the next page starts
        following = batch[limit][0] if len(batch) > limit else None
        return OrderPage([payload for _, payload in batch[:limit]],
                         f"{following[0]}:{following[1]}" if following else None, None)

    def parse_order(self, payload: Payload) -> ChannelOrder:
        return parse_order(payload, self.mapping, self.channel)

    def catalog_pages(self, since: datetime | None = None) -> Iterator[list[CatalogItem]]:
        """A file of orders lists no catalog."""
        return iter(())
