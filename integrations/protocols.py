"""The ports: what flows and tasks need from the outside world, whoever provides it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from domain.orders import ChannelOrder

Payload = dict[str, Any]


class Unreadable(ValueError):
    """A payload that cannot be read as an order; carries a contract reason code."""

    def __init__(self, reason: str, detail: str, external_id: str | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.external_id = external_id


class UpstreamError(RuntimeError):
    """An upstream kept failing after retries, or refused us outright.

    `setting` names the CLERK_* variable to look at when the refusal is ours to fix.
    """

    def __init__(self, message: str, setting: str | None = None):
        super().__init__(message)
        self.setting = setting


@dataclass(frozen=True, slots=True)
class OrderPage:
    """Orders changed upstream, oldest change first, and where to go on from."""

    payloads: list[Payload]
    cursor: str | None  # None once there is nothing more
    high_water: datetime | None  # the newest `updated_at` among the payloads


@dataclass(frozen=True, slots=True)
class ExportStatus:
    """A channel-side export of every order (Shopify: a bulk operation)."""

    job_id: str
    state: str  # running | completed | failed
    started_at: datetime
    url: str | None = None
    root_count: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """A variant as a channel lists it."""

    sku: str
    title: str
    price: Decimal
    currency: str
    product_title: str = ""
    barcode: str | None = None
    category: str | None = None
    channel_ref: str | None = None
    updated_at: datetime | None = None


@runtime_checkable
class OrderSource(Protocol):
    """A sales channel Clerk pulls orders from."""

    channel: str

    def changed_orders(self, since: datetime | None, cursor: str | None, limit: int) -> OrderPage:
        """Orders updated at or after `since`, up to about `limit`, resuming at `cursor`."""

    def parse_order(self, payload: Payload) -> ChannelOrder:
        """Pure mapping of one payload. Raises `Unreadable` with a reason code."""

    def catalog_pages(self, since: datetime | None = None) -> Iterator[list[CatalogItem]]:
        """Variants the channel sells, changed at or after `since` (all when None), a page at a time."""


@runtime_checkable
class OrderExport(Protocol):
    """A channel that can export its whole order history at once (a first backfill)."""

    channel: str

    def start_export(self) -> ExportStatus: ...

    def export_status(self, job_id: str) -> ExportStatus: ...

    def download_export(self, url: str, destination: Path) -> int:
        """Streams the export to a file; returns its size in bytes."""

    def read_export(self, path: Path, batch_size: int) -> Iterator[list[Payload]]:
        """Order payloads from a downloaded export, `batch_size` at a time."""


@dataclass(frozen=True, slots=True)
class StockLevel:
    """Units a channel should show as available for one SKU."""

    sku: str
    available: int


@dataclass(frozen=True, slots=True)
class Tracking:
    """A shipment's tracking, as a channel shows it to the buyer."""

    number: str
    carrier: str
    url: str | None = None


@runtime_checkable
class OrderWriter(Protocol):
    """What later flows write back to a channel (shipping, returns, stock sync).

    Every call carries Clerk's deterministic `key` (from the side-effect ledger) and is safe
    to repeat: the vendor's idempotency key where it has one, else the key is written with
    the change and looked for before writing again. Each returns the vendor's reference.
    """

    channel: str

    def set_stock(self, levels: Sequence[StockLevel], key: str) -> list[str]:
        """Sets available units per SKU; returns the SKUs the channel does not sell."""

    def add_order_note(self, external_id: str, note: str, key: str) -> str:
        """Adds a note for staff (never the buyer) to an order."""

    def fulfill(self, external_id: str, lines: Mapping[str, int], tracking: Tracking | None, key: str) -> str:
        """Marks units (by SKU) of an order shipped, with tracking when there is one."""

    def refund(self, external_id: str, lines: Mapping[str, int], amount: Decimal, reason: str, key: str) -> str:
        """Refunds `amount` in the order's currency for units (by SKU) of the order.

        Nothing is restocked upstream: Clerk's stock ledger books returned goods when they
        arrive, and `set_stock` tells the channels.
        """


@dataclass(frozen=True, slots=True)
class Alert:
    """One message for the clerks; never carries personal data."""

    incident: str  # de-duplication key
    title: str
    lines: Sequence[str] = field(default_factory=tuple)
    counts: dict[str, int] = field(default_factory=dict)
    link: str | None = None
    severity: str = "warning"  # info | warning | error


class Notifier(Protocol):
    """Where alerts go (Slack, or the log when Slack is not configured)."""

    def send(self, alert: Alert) -> str | None:
        """Posts the alert; returns the message reference (Slack `ts`) when there is one."""
