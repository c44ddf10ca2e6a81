"""What the channel clients share for their `OrderWriter` write-backs: pure helpers, and
`StockPush`, the read-judge-write round every client's `set_stock` runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import httpx

from domain.stock_sync import Verdict, judge
from integrations.http import TransientFailure
from integrations.protocols import StockLevel, StockReport, Tracking


def shipment_note(lines: Mapping[str, int], tracking: Tracking | None) -> str:
    """A staff note describing a shipment: the units by SKU, then the tracking if any.

    >>> shipment_note({"A-1": 2}, Tracking("1Z9", "UPS", "https://ups.example/1Z9"))
    'Shipped 2 x A-1 with UPS 1Z9 (https://ups.example/1Z9)'
    """
    goods = ", ".join(f"{units} x {sku}" for sku, units in lines.items()) or "everything left to ship"
    text = f"Shipped {goods}"
    if tracking is not None:
        text += f" with {tracking.carrier} {tracking.number}"
        if tracking.url:
            text += f" ({tracking.url})"
    return text


def levels_by_sku(levels: Sequence[StockLevel]) -> list[StockLevel]:
    """One level per SKU, the last of a SKU given twice winning.

    Raises:
        ValueError: for a negative level (channels refuse them, or read them as back orders).
    """
    found: dict[str, StockLevel] = {}
    for level in levels:
        if level.available < 0:
            raise ValueError(f"negative stock for {level.sku!r}: {level.available}")
        found[level.sku] = level
    return list(found.values())


class StaleCounts(TransientFailure):
    """A channel refused a compare-and-set write: a count moved since it was read. Read them again."""


ShownCounts = Mapping[str, int | None]  # SKU -> units a channel shows (None: it keeps no count)


class StockPush:
    """One `set_stock` call: counts read and judged (`domain.stock_sync.judge`), the ones to
    change written. Every later attempt reads again what is still pending, so a write whose
    answer was lost is found written, never repeated, and a count moved meanwhile is judged
    afresh against Clerk's last push.

    Args:
        levels: the levels wanted, one per SKU.
        read: the channel's counts of these SKUs, for those it sells (one attempt, no retries).
        write: writes (level, count it was read at) pairs once; raises `TransientFailure`
            (`StaleCounts` for a refused compare-and-set) or an httpx error to be read again.
        wait: called before reading again after a write timed out: it may still be landing.
    """

    def __init__(self, levels: Sequence[StockLevel], read: Callable[[list[str]], ShownCounts],
                 write: Callable[[list[tuple[StockLevel, int | None]]], None], wait: Callable[[], None]):
        self._pending = levels_by_sku(levels)
        self._read, self._write, self._wait = read, write, wait
        self._tried: set[str] = set()
        self._late = False
        self.report = StockReport()

    def attempt(self) -> StockReport:
        """Reads what is pending, judges it, and writes what needs writing; the report so far."""
        if self._late:
            self._late = False
            self._wait()
        report = self.report
        shown = self._read([level.sku for level in self._pending]) if self._pending else {}
        to_write = []
        for level in self._pending:
            if level.sku not in shown:
                report.unknown.append(level.sku)
                continue
            seen = shown[level.sku]
            verdict = judge(level, seen)
            if verdict is Verdict.ALREADY:
                (report.written if level.sku in self._tried else report.already).append(level.sku)
            elif verdict is Verdict.CONFLICT and seen is not None:
                report.conflicts[level.sku] = seen
            elif verdict is Verdict.BEHIND:
                report.behind.append(level.sku)
            else:
                to_write.append((level, seen))
        self._pending = [level for level, _ in to_write]
        if to_write:
            self._tried.update(level.sku for level in self._pending)
            try:
                self._write(to_write)
            except httpx.TimeoutException:
                self._late = True
                raise
            report.written.extend(level.sku for level in self._pending)
            self._pending = []
        return report


def covers_order(lines: Mapping[str, int], ordered: Mapping[str, int]) -> bool:
    """True when `lines` (SKU -> units) ship at least everything `ordered`; empty `lines` means everything."""
    return not lines or all(lines.get(sku, 0) >= units for sku, units in ordered.items())
