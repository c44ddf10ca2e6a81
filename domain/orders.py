"""Orders as Clerk sees them on every channel, and the checks that hold them.

A channel's mapping turns vendor JSON into a `ChannelOrder`; the quality suite
quarantines what cannot be an order; `hold_reasons` then says why a readable
order still needs a person.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from operator import attrgetter
from typing import Any

from domain.money import LIMIT, cents
from domain.reasons import Hold


class Lifecycle(StrEnum):
    """Where the order stands upstream, in the channel's own books."""

    OPEN = "open"
    FULFILLED = "fulfilled"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Status(StrEnum):
    """Clerk's status of an order (the contract's export values)."""

    ACCEPTED = "accepted"
    HELD = "held"
    CANCELLED = "cancelled"
    FULFILLED = "fulfilled"


class Risk(StrEnum):
    """The channel's own risk assessment, normalised."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    PENDING = "pending"


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address; personal data, stored apart from the order."""

    name: str | None = None
    company: str | None = None
    street1: str | None = None
    street2: str | None = None
    city: str | None = None
    province: str | None = None
    postal_code: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Customer:
    """Who bought; personal data, stored apart from the order."""

    external_id: str | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One line; `quantity` is as read (None when unreadable) until the quality suite passes it."""

    sku: str | None
    title: str
    quantity: Decimal | None
    unit_price: Decimal
    discount: Decimal = Decimal(0)  # the line's total discount, all units
    requires_shipping: bool = True

    @property
    def units(self) -> int:
        """The quantity as a whole number; only valid after the quality suite."""
        return int(self.quantity or 0)


@dataclass(frozen=True, slots=True)
class Payment:
    """Who took the order's money, and their reference for it (what a refund goes back to)."""

    gateway: str  # normalised: "stripe", "paypal", "manual", "shopify_payments", ... (see `normalise_gateway`)
    reference: str | None  # the gateway's own id of the payment, e.g. pi_... / ch_...; None when unknown


# A channel's name for a payment gateway or method -> Clerk's (lower-cased, "-" and " " read as "_").
# A name not listed is kept as written (normalised the same way): never guessed to be Stripe.
GATEWAYS: dict[str, str] = {
    # Stripe: Shopify's third-party gateway, WooCommerce's plugin ids, Magento's modules
    "stripe": "stripe", "stripe_cc": "stripe", "stripe_payments": "stripe", "stripe_sepa": "stripe",
    "stripe_applepay": "stripe", "stripe_googlepay": "stripe", "woocommerce_payments": "stripe",
    "wcpay": "stripe",
    # PayPal, Braintree (a PayPal company, its own gateway)
    "paypal": "paypal", "ppcp_gateway": "paypal", "ppcp": "paypal", "ppec_paypal": "paypal",
    "paypal_express": "paypal", "payflowpro": "paypal", "paypal_payments_pro": "paypal",
    "braintree": "braintree", "braintree_paypal": "braintree", "braintree_cc_vault": "braintree",
    # Shopify's own processor, and payments recorded by hand (bank transfer, cheque, cash)
    "shopify_payments": "shopify_payments",
    "manual": "manual", "bacs": "manual", "cheque": "manual", "cod": "manual", "checkmo": "manual",
    "banktransfer": "manual", "cashondelivery": "manual", "bogus": "manual", "free": "manual",
}


def normalise_gateway(name: str | None) -> str | None:
    """Clerk's name for a channel's payment gateway or method; None for a blank one."""
    if name is None:
        return None
    key = "_".join(name.strip().lower().replace("-", " ").split())
    if not key:
        return None
    return GATEWAYS.get(key, key)


@dataclass(frozen=True, slots=True)
class ChannelOrder:
    """An order as read from one channel, in the order's currency."""

    channel: str
    external_id: str
    number: str
    currency: str
    placed_at: datetime
    updated_at: datetime
    lifecycle: Lifecycle
    lines: tuple[OrderLine, ...]
    total: Decimal
    shipping: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    discounts: Decimal = Decimal(0)
    taxes_included: bool = False
    requires_shipping: bool = True
    ship_to: Address | None = None
    customer: Customer | None = None
    risk: Risk = Risk.NONE
    extra: Mapping[str, str] = field(default_factory=dict)
    payment: Payment | None = None  # the successful payment, when the channel tells

    @property
    def ship_to_country(self) -> str | None:
        return self.ship_to.country if self.ship_to else None

    def fingerprint(self) -> str:
        """A digest of everything Clerk stores, so a touch upstream with no change is `unchanged`."""
        content = _order_fields(self)
        # Positions are those of `fields(ChannelOrder)`; updated_at is left out on purpose.
        return hashlib.sha256(repr((
            content[:_UPDATED_AT],
            tuple(map(_line_fields, self.lines)),
            self.ship_to and _address_fields(self.ship_to),
            self.customer and _customer_fields(self.customer),
            sorted(self.extra.items()),
            content[_UPDATED_AT + 1:],
            # Only when known, so the digests of orders read before payments were are unchanged.
            *((_payment_fields(self.payment) if isinstance(self.payment, Payment) else self.payment,)
              if self.payment is not None else ()),
        )).encode()).hexdigest()

    def amounts_fit(self) -> bool:
        """Every amount, as read or as worked out by the mapping (a discount as subtotal less
        total, a tax-inclusive price), is within what Clerk stores (`money.LIMIT`)."""
        amounts = [self.total, self.shipping, self.tax, self.discounts]
        amounts += [amount for line in self.lines for amount in (line.unit_price, line.discount)]
        return all(abs(amount) < LIMIT for amount in amounts)

    def demand(self) -> dict[str, int]:
        """Units wanted from our shelves per SKU: lines without a SKU, and lines that are not
        shipped by us (digital goods, a marketplace's own fulfilment), are left out."""
        wanted: dict[str, int] = {}
        for line in self.lines:
            if line.sku and line.requires_shipping:
                wanted[line.sku] = wanted.get(line.sku, 0) + line.units
        return wanted


def _getter(kind: type, leave_out: tuple[str, ...] = ()) -> attrgetter[Any]:
    """Every field of a dataclass but `leave_out`, read at C speed (a fifth of a backfill went
    to turning orders into dicts for their digests)."""
    return attrgetter(*(f.name for f in fields(kind) if f.name not in leave_out))


_NESTED = ("lines", "ship_to", "customer", "extra", "payment")
_order_fields = _getter(ChannelOrder, _NESTED)
_UPDATED_AT = [f.name for f in fields(ChannelOrder) if f.name not in _NESTED].index("updated_at")
_line_fields = _getter(OrderLine)
_address_fields = _getter(Address)
_customer_fields = _getter(Customer)
_payment_fields = _getter(Payment)


@dataclass(frozen=True, slots=True)
class CatalogPrice:
    """The master price of a SKU."""

    price: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class PriceTolerance:
    """How far a line's price may stray from the catalog's: the larger of the two bounds."""

    absolute: Decimal = Decimal("0.01")
    relative: Decimal = Decimal("0.01")

    def allows(self, price: Decimal, expected: Decimal) -> bool:
        return abs(price - expected) <= max(self.absolute, abs(expected) * self.relative)


# Countries whose addresses have no postal code (Universal Postal Union list, abridged).
NO_POSTAL_CODE = frozenset(
    "AE AG AO AW BF BI BJ BO BS BW BZ CD CF CG CI CK CM DJ DM ER FJ GA GD GH GM GN GQ GY HK "
    "JM KI KM KN KP LC ML MO MR MS MW NR NU QA RW SB SC SL SR SS ST SY TD TG TK TL TO TV "
    "TZ UG VU YE ZW".split()
)


def is_history(order: ChannelOrder) -> bool:
    """Fulfilled or closed upstream: stored and counted as demand, never held or reserved."""
    return order.lifecycle in (Lifecycle.FULFILLED, Lifecycle.CLOSED)


def address_complete(address: Address | None) -> bool:
    """Name, street, city, country, and a postal code where the country uses one."""
    if address is None:
        return False
    needed = [address.name, address.street1, address.city, address.country]
    if address.country not in NO_POSTAL_CODE:
        needed.append(address.postal_code)
    return all(value and str(value).strip() for value in needed)


def expected_total(order: ChannelOrder) -> Decimal:
    """Lines + shipping + tax - discounts; tax is already inside prices when included."""
    lines = sum((line.unit_price * line.units for line in order.lines), Decimal(0))
    tax = Decimal(0) if order.taxes_included else order.tax
    return lines + order.shipping + tax - order.discounts


def price_explained(line: OrderLine, catalog: CatalogPrice, tolerance: PriceTolerance) -> bool:
    """The catalog price, or the catalog price once the line's discount is added back."""
    if tolerance.allows(line.unit_price, catalog.price):
        return True
    per_unit_discount = line.discount / line.units if line.units else Decimal(0)
    return tolerance.allows(line.unit_price + per_unit_discount, catalog.price)


def hold_reasons(
    order: ChannelOrder,
    catalog: Mapping[str, CatalogPrice],
    tolerance: PriceTolerance = PriceTolerance(),
) -> list[Hold]:
    """Every reason, stock aside, why a readable open order needs a person.

    Stock is decided across a whole batch by `domain.stock.allocate`, since orders
    compete for it.
    """
    reasons: list[Hold] = []
    if any(not line.sku or line.sku not in catalog for line in order.lines):
        reasons.append(Hold.UNKNOWN_SKU)
    for line in order.lines:
        entry = catalog.get(line.sku or "")
        if entry and entry.currency == order.currency and not price_explained(line, entry, tolerance):
            reasons.append(Hold.PRICE_MISMATCH)
            break
    if order.requires_shipping and not address_complete(order.ship_to):
        reasons.append(Hold.INCOMPLETE_ADDRESS)
    if abs(cents(expected_total(order)) - cents(order.total)) > Decimal("0.01"):
        reasons.append(Hold.TOTAL_MISMATCH)
    if order.risk == Risk.HIGH:
        reasons.append(Hold.HIGH_RISK)
    return reasons
