"""The ports: what flows and tasks need from the outside world, whoever provides it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from domain.orders import Address, ChannelOrder
from domain.stock_sync import Push

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


# Units a channel should show as available for one SKU, and what Clerk last pushed there.
StockLevel = Push


@dataclass(frozen=True, slots=True)
class StockReport:
    """What `set_stock` found and did, by SKU (see `domain.stock_sync.judge`)."""

    written: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)  # the channel showed the wanted count
    conflicts: dict[str, int] = field(default_factory=dict)  # SKU -> the count found there, left as it was
    behind: list[str] = field(default_factory=list)  # the channel sold units Clerk has not read yet
    unknown: list[str] = field(default_factory=list)  # SKUs the channel does not sell


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
    the change and looked for before writing again. Each returns the vendor's reference,
    but for `set_stock`, which reports by SKU.
    """

    channel: str

    def set_stock(self, levels: Sequence[StockLevel], key: str) -> StockReport:
        """Sets available units per SKU, compared first with what the channel shows: a count
        already as wanted is not written, and one that is neither that nor the level's
        `last_pushed` (changed on the channel since) is reported as a conflict, not overwritten.
        Where the channel has compare-and-set the write carries the count it was compared with;
        elsewhere counts are absolute, and one whose write lost its answer reads back as written.
        """

    def add_order_note(self, external_id: str, note: str, key: str) -> str:
        """Adds a note for staff (never the buyer) to an order."""

    def fulfill(self, external_id: str, lines: Mapping[str, int], tracking: Tracking | None, key: str) -> str:
        """Marks units (by SKU) of an order shipped, with tracking when there is one.

        A channel that records a shipment from several locations as several documents
        (Shopify: a fulfillment per location) returns their references joined by ",".
        """

    def refund(self, external_id: str, lines: Mapping[str, int], amount: Decimal, reason: str, key: str) -> str:
        """Refunds `amount` in the order's currency for units (by SKU) of the order.

        Nothing is restocked upstream: Clerk's stock ledger books returned goods when they
        arrive, and `set_stock` tells the channels.
        """


# ------------------------------------------------------------------------------ returns

# Clerk's return reason codes (the contract's `returns.reason`).
RETURN_REASONS = ("damaged", "defective", "wrong_item", "not_as_described", "changed_mind", "late_delivery",
                  "other")


@dataclass(frozen=True, slots=True)
class ChannelReturn:
    """A return asked for, or a refund made, on a channel without Clerk: what Clerk must take up."""

    channel: str
    external_id: str  # the return's / refund's / credit memo's id upstream
    order_external_id: str
    order_number: str
    lines: Mapping[str, int]  # SKU -> units
    reason: str  # one of RETURN_REASONS
    requested_at: datetime
    refunded: Decimal  # money the channel itself already moved for it (0 when none)
    note: str | None = None  # free text, may hold personal data: never log it
    recorded: bool = False  # it is the channel's own refund record: telling the channel again would book it twice


@runtime_checkable
class ReturnSource(Protocol):
    """A channel Clerk reads return requests from (read only).

    A record that cannot be read does not stop the others: it is left out, and an
    `Unreadable` naming it (its `external_id`, never its note) is appended to `unreadable`
    when the caller passes a list, for the caller to report; without one it is logged.
    Clerk's own refunds and credit memos (carrying its key) are never returned.
    """

    channel: str

    def return_requests(self, since: datetime | None,
                        unreadable: list[Unreadable] | None = None) -> list[ChannelReturn]:
        """Return requests (or refunds, credit memos) made at or after `since` (all when None), oldest first."""


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


class InvalidEmail(ValueError):
    """An `Email` that cannot be sent as given; `reason` names what is wrong."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


Attachment = tuple[str, str, bytes]  # (filename, content type such as application/pdf, content)

# Characters no plain address or Message-ID holds (RFC 5322 specials and spaces).
_NOT_IN_ADDRESS = frozenset(' \t<>()[]\\,;:"')


def _is_plain_address(text: str, dotted: bool = True) -> bool:
    """`local@domain` in printable ASCII; `dotted` asks for a domain with a dot, as mail hosts have."""
    local, _, domain = text.rpartition("@")
    return (
        text.isascii() and text.isprintable() and not _NOT_IN_ADDRESS & set(text)
        and bool(local) and "@" not in local and bool(domain.strip("."))
        and (not dotted or "." in domain.strip("."))
    )


@dataclass(frozen=True, slots=True)
class Email:
    """One message to send.

    `message_id` comes from the caller and is deterministic (`<po-PO-20261126-ACME@clerk>`):
    a retried send carries the same Message-ID, so it is the key to tell a resend from a
    new message.

    Raises:
        InvalidEmail: `bad_recipient`, `bad_subject`, `bad_message_id` or `bad_attachment`.
    """

    to: str  # one plain address, no display name
    subject: str
    body: str
    message_id: str
    attachments: tuple[Attachment, ...] = ()

    def __post_init__(self) -> None:
        if not _is_plain_address(self.to):
            raise InvalidEmail("bad_recipient", "`to` must be one plain address, name@domain.tld")
        if not self.subject.strip() or not self.subject.isprintable():
            raise InvalidEmail("bad_subject", "the subject must be one non-blank line")
        if not (self.message_id[:1] == "<" and self.message_id[-1:] == ">"
                and _is_plain_address(self.message_id[1:-1], dotted=False)):
            raise InvalidEmail("bad_message_id", f"{self.message_id!r} is not of the form <id@domain>")
        attachments = tuple(tuple(item) for item in self.attachments)
        for item in attachments:
            if len(item) != 3 or not item[0] or str(item[1]).count("/") != 1 or not isinstance(item[2], bytes):
                raise InvalidEmail("bad_attachment", "each attachment is (filename, type/subtype, bytes)")
        object.__setattr__(self, "attachments", attachments)

    @property
    def recipient_domain(self) -> str:
        """The part after `@`: all that logs show of the recipient."""
        return self.to.rpartition("@")[2].lower()


class Mailer(Protocol):
    """Where mail goes (an SMTP server, or the log when CLERK_SMTP_URL is not set)."""

    def send(self, email: Email) -> str:
        """Hands the message over once, without retrying; returns its Message-ID.

        Raises:
            integrations.mail.TransientMailError: another attempt may succeed (a 4xx reply,
                a refused or dropped connection, a timeout). When `maybe_sent` is true the
                server may have taken the message all the same: the Message-ID, unchanged
                on the retry, is what tells the two copies apart.
            integrations.mail.MailRefused: the server refused for good (a 5xx reply).
        """


# ------------------------------------------------------------------------------ shipping


@dataclass(frozen=True, slots=True)
class Parcel:
    """One box to ship: its weight and, when known, its outside dimensions in centimetres."""

    weight_grams: int
    dimensions_cm: tuple[Decimal, Decimal, Decimal] | None = None  # length, width, height


@dataclass(frozen=True, slots=True)
class AddressCheck:
    """A carrier's verdict on an address: deliverable or not, and the carrier's own words.

    `checked` is False when the carrier has no address validation to ask (Karrio with only
    its `generic` carrier): nothing was verified, so `ok` only means "not refused", and the
    order's own completeness checks are all that stand behind the address.
    """

    ok: bool
    message: str | None = None
    checked: bool = True

    @classmethod
    def unchecked(cls, why: str) -> AddressCheck:
        """The carrier could not verify the address (it offers no validation): not refused, not verified."""
        return cls(ok=True, message=why, checked=False)


@dataclass(frozen=True, slots=True)
class Rate:
    """A price a carrier quotes for one service on one shipment."""

    id: str
    carrier: str
    service: str
    amount: Decimal
    currency: str
    delivery_days: int | None = None
    delivery_date: datetime | None = None


@dataclass(frozen=True, slots=True)
class Label:
    """A bought label: what was paid, the tracking number, and where the printable file is."""

    shipment_id: str
    tracking_number: str
    carrier: str
    service: str
    label_url: str
    cost: Decimal
    currency: str
    reference: str | None = None  # Clerk's order reference, given when the shipment was created


class TrackerStatus(StrEnum):
    """Where a parcel is, in Clerk's words, whichever carrier says it."""

    PRE_TRANSIT = "pre_transit"  # label bought, not yet scanned by the carrier
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    EXCEPTION = "exception"  # stuck, failed or cancelled: a clerk should look
    RETURNED_TO_SENDER = "returned_to_sender"


@dataclass(frozen=True, slots=True)
class TrackingEvent:
    """The latest a carrier says about one tracking number."""

    tracking_number: str
    status: TrackerStatus
    carrier_status: str  # the carrier's own status word, kept for the clerk
    detail: str | None = None
    occurred_at: datetime | None = None
    estimated_delivery: datetime | None = None


@runtime_checkable
class Carrier(Protocol):
    """Where labels are bought (EasyPost, or Karrio in front of the carriers' own APIs).

    A label costs money, so it is bought once: Clerk's ledger key travels with the buy,
    and `find_label` is asked before any second attempt at the same order.
    """

    def verify_address(self, address: Address) -> AddressCheck:
        """Asks the carrier whether `address` is deliverable; a carrier without address
        validation answers `AddressCheck.unchecked(...)` (`checked` False) rather than failing."""

    def rates(self, ship_from: Address, ship_to: Address, parcel: Parcel, reference: str) -> tuple[str, list[Rate]]:
        """Creates a shipment carrying Clerk's order `reference`; returns its id and the rates quoted."""

    def buy_label(self, shipment_id: str, rate_id: str, key: str) -> Label:
        """Buys the label for one rate of a shipment once; a shipment already bought gives its label."""

    def find_label(self, reference: str) -> Label | None:
        """The label already bought for a shipment created with `reference`, if any."""

    def track(self, tracking_numbers: Sequence[str]) -> list[TrackingEvent]:
        """The latest status of each tracking number, in the order asked."""

    def download_label(self, url: str) -> bytes:
        """The printable label file (PDF or PNG) behind a label's URL."""


# ------------------------------------------------------------------------------ payments


class RefundState(StrEnum):
    """Where a refund stands at the gateway, in Clerk's words."""

    PENDING = "pending"  # asked for; the money has not reached the buyer yet
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the money came back to the merchant: a clerk must refund another way


@dataclass(frozen=True, slots=True)
class Payment:
    """What the gateway holds for one payment."""

    reference: str  # the gateway's id: a PaymentIntent (pi_...) or a Charge (ch_...)
    currency: str  # ISO 4217, upper-case
    captured: Decimal  # received from the buyer
    refunded: Decimal  # already given back or on its way (pending and succeeded refunds)


@dataclass(frozen=True, slots=True)
class Refund:
    """One refund at the gateway."""

    reference: str  # the gateway's id (re_...)
    payment: str  # the payment it gives back: the PaymentIntent when there is one, else the Charge
    amount: Decimal
    currency: str  # ISO 4217, upper-case
    state: RefundState
    key: str | None  # Clerk's ledger key, carried with the refund
    failure_reason: str | None = None


class RefundRefused(ValueError):
    """The gateway refused the refund for good: more than is left, already refunded,
    disputed, or the key already used for another refund. `code` is the gateway's
    own error code; `detail` its words."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@runtime_checkable
class PaymentGateway(Protocol):
    """Where buyers' payments are refunded (Stripe).

    A refund is money out, so it is made once: Clerk's ledger key travels with it (as the
    gateway's idempotency key and on the refund itself), and every attempt first looks
    for a refund already carrying the key.
    """

    name: str

    def payment(self, reference: str) -> Payment:
        """What was captured and what is already refunded of one payment."""

    def refund(self, payment: str, amount: Decimal, currency: str, key: str, reason: str | None = None) -> Refund:
        """Refunds `amount` of `payment` once per `key`; a refund already made with `key` is the answer.

        Raises:
            RefundRefused: more than is left to refund, or the gateway refused it for good.
        """

    def find_refund(self, payment: str, key: str) -> Refund | None:
        """The refund of `payment` made with `key`, if any."""

    def refund_status(self, reference: str) -> Refund:
        """The refund as it stands now (pending refunds settle later)."""
