"""Each channel sandbox's stock seen one way: the count it shows, a merchant's edit, the API's writes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Shelf:
    """A channel sandbox's stock counts."""

    shown: Callable[[str], int]
    edit: Callable[[str, int], None]  # as a merchant in the channel's admin: not one of the API's writes
    writes: Callable[[], list[tuple[str, int]]]  # (SKU, units) the API set, in order

    def written(self, sku: str) -> list[int]:
        """Every count the API set for `sku`, in order."""
        return [units for written, units in self.writes() if written == sku]


def shelf(channel: str, app: Any) -> Shelf:
    """The stock of `app`, the sandbox of `channel`."""
    if channel == "shopify":
        return Shelf(app.write_backs.stock, app.write_backs.edit_stock, lambda: list(app.write_backs.stock_writes))
    if channel == "woocommerce":
        return Shelf(app.shown_stock, app.edit_stock, lambda: list(app.stock_writes))
    documents = app.documents
    return Shelf(lambda sku: int(documents.quantity(sku)), documents.edit_quantity,
                 lambda: [(sku, int(units)) for sku, units in documents.stock_writes])
