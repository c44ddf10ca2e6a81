"""The written returns policy, as code: who may return what, who pays, what is refunded.

Every decision names the rule that made it (`Rule`), so a clerk reading `clerk export
returns` can see why, and each rule has a table test that names it. Amounts are worked
out to the currency's minor unit and never exceed what the payment captured less what
was refunded before.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Protocol

from domain.money import minor_unit


REFUND_GATEWAY = "stripe"  # the gateway Clerk pays refunds through; an order paid elsewhere is refunded by hand


class ReturnReason(StrEnum):
    DAMAGED = "damaged"
    DEFECTIVE = "defective"
    WRONG_ITEM = "wrong_item"
    NOT_AS_DESCRIBED = "not_as_described"
    CHANGED_MIND = "changed_mind"
    LATE_DELIVERY = "late_delivery"
    OTHER = "other"


# The shop's fault: it pays the return label and refunds the shipping it charged.
OUR_FAULT = frozenset({ReturnReason.DAMAGED, ReturnReason.DEFECTIVE, ReturnReason.WRONG_ITEM,
                       ReturnReason.NOT_AS_DESCRIBED, ReturnReason.LATE_DELIVERY})


class Resolution(StrEnum):
    REFUND = "refund"
    EXCHANGE = "exchange"
    STORE_CREDIT = "store_credit"


class Verdict(StrEnum):
    APPROVE = "approved"
    DECLINE = "declined"
    REVIEW = "awaiting_approval"


class Condition(StrEnum):
    RESELLABLE = "resellable"
    DAMAGED = "damaged"


class Payer(StrEnum):
    SHOP = "shop"
    CUSTOMER = "customer"


class Rule(StrEnum):
    """The rules of the policy; a decision records the one that settled it."""

    NOT_SHIPPED = "not_shipped"  # nothing has left the warehouse yet: cancel, do not return
    OUTSIDE_WINDOW = "outside_window"
    NON_RETURNABLE = "non_returnable_category"
    REASON_NEEDS_REVIEW = "reason_needs_review"
    REFUND_ABOVE_LIMIT = "refund_above_limit"
    OUR_FAULT = "our_fault"
    CUSTOMER_CHOICE = "customer_choice"
    RESELLABLE_ON_RECEIPT = "resellable_on_receipt"
    DAMAGED_IN_TRANSIT = "damaged_our_fault"  # our fault anyway: written off, refunded in full
    DAMAGED_BY_CUSTOMER = "damaged_by_customer"  # a customer-choice return that came back broken


class ReturnInputError(ValueError):
    """A return request that cannot be taken; `code` names why."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ReturnPolicy:
    """`[returns]` of clerk.toml, and `approvals.refund_above`."""

    window_days: int = 30
    restocking_fee_percent: Decimal = Decimal(0)
    non_returnable_categories: frozenset[str] = frozenset()
    review_reasons: frozenset[ReturnReason] = frozenset({ReturnReason.OTHER})
    refund_above: Decimal = Decimal("100.00")


@dataclass(frozen=True, slots=True)
class SoldLine:
    """A line of the order being returned, as sold and shipped."""

    sku: str
    shipped: int  # units that left the warehouse
    unit_price: Decimal
    discount: Decimal = Decimal(0)  # the line's own discount, for all its units
    category: str | None = None
    returned: int = 0  # units already on earlier returns


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What the policy needs to know about the order."""

    currency: str
    lines: Mapping[str, SoldLine]
    shipping: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    taxes_included: bool = False
    order_discount: Decimal = Decimal(0)  # beyond the lines' own discounts
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ReturnRequest:
    reason: ReturnReason
    lines: Mapping[str, int]  # SKU -> units
    requested_at: datetime
    resolution: Resolution = Resolution.REFUND


@dataclass(frozen=True, slots=True)
class RefundQuote:
    """What a return refunds, part by part, in the order's currency."""

    goods: Decimal
    tax: Decimal
    shipping: Decimal
    restocking_fee: Decimal
    label_fee: Decimal

    @property
    def total(self) -> Decimal:
        return max(Decimal(0), self.goods + self.tax + self.shipping - self.restocking_fee - self.label_fee)


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    rule: Rule
    label_paid_by: Payer
    resolution: Resolution
    quote: RefundQuote
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Receipt:
    """What happens to goods that came back, and to their refund."""

    restock: bool  # False: written off
    refund: Verdict  # APPROVE, or REVIEW when the condition calls the refund into question
    rule: Rule


def parse_reason(text: object) -> ReturnReason:
    """Clerk's reason code from `text`.

    Raises:
        ReturnInputError: `unknown_reason` for anything outside the list.
    """
    try:
        return ReturnReason(str(text).strip().lower())
    except ValueError:
        codes = ", ".join(r.value for r in ReturnReason)
        raise ReturnInputError("unknown_reason", f"{text!r} is not one of {codes}") from None


def check_request(request: ReturnRequest, order: OrderFacts) -> None:
    """Refuses a request the order cannot back.

    Raises:
        ReturnInputError: `no_lines`, `invalid_quantity`, `sku_not_on_order` or
            `more_than_shipped` (counting units already on earlier returns).
    """
    if not request.lines:
        raise ReturnInputError("no_lines", "a return needs at least one line")
    for sku, units in request.lines.items():
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise ReturnInputError("invalid_quantity", f"{sku}: {units!r} is not a positive whole number")
        sold = order.lines.get(sku)
        if sold is None:
            raise ReturnInputError("sku_not_on_order", f"{sku} is not on the order")
        if units > sold.shipped - sold.returned:
            raise ReturnInputError("more_than_shipped", f"{sku}: {units} asked, {sold.shipped} shipped, "
                                                        f"{sold.returned} already returned")


def decide(request: ReturnRequest, order: OrderFacts, policy: ReturnPolicy, label_cost: Decimal = Decimal(0)) -> Decision:
    """The policy's decision on a checked request (see `check_request`), the first rule
    that applies winning: not shipped, window, category, reason to review, refund limit,
    then approval as our fault or as the customer's choice.

    Args:
        label_cost: what the return label costs, deducted when the customer pays it.
    """
    ours = request.reason in OUR_FAULT
    payer = Payer.SHOP if ours else Payer.CUSTOMER
    quote = quote_refund(request, order, policy, label_cost if payer is Payer.CUSTOMER else Decimal(0))

    def verdict(kind: Verdict, rule: Rule, detail: str = "") -> Decision:
        return Decision(kind, rule, payer, request.resolution, quote, detail)

    started = order.delivered_at or order.shipped_at
    if started is None:
        return verdict(Verdict.DECLINE, Rule.NOT_SHIPPED, "nothing shipped yet; cancel the order instead")
    closes = started + timedelta(days=policy.window_days)
    if request.requested_at > closes:
        return verdict(Verdict.DECLINE, Rule.OUTSIDE_WINDOW,
                       f"window of {policy.window_days} days closed {closes.date().isoformat()}")
    barred = sorted(sku for sku in request.lines if order.lines[sku].category in policy.non_returnable_categories)
    if barred and not ours:
        return verdict(Verdict.DECLINE, Rule.NON_RETURNABLE, "not returnable: " + ", ".join(barred))
    if request.reason in policy.review_reasons:
        return verdict(Verdict.REVIEW, Rule.REASON_NEEDS_REVIEW, f"reason {request.reason.value} is reviewed by a person")
    if request.resolution is not Resolution.EXCHANGE and quote.total > policy.refund_above:
        return verdict(Verdict.REVIEW, Rule.REFUND_ABOVE_LIMIT, f"refund {quote.total} above {policy.refund_above}")
    return verdict(Verdict.APPROVE, Rule.OUR_FAULT if ours else Rule.CUSTOMER_CHOICE)


def quote_refund(request: ReturnRequest, order: OrderFacts, policy: ReturnPolicy,
                 label_fee: Decimal = Decimal(0)) -> RefundQuote:
    """The refund for the returned units: their price net of every discount, their share of
    tax (unless prices include it), the shipping share when the fault is ours, less the
    restocking fee on a customer's choice and the label when the customer pays it.

    Shares are of the order's goods after line discounts, so returning everything refunds
    exactly what was paid for goods, tax and shipping.
    """
    exponent = minor_unit(order.currency)

    def net(line: SoldLine, units: int) -> Decimal:
        return line.unit_price * units - line.discount * units / line.shipped if line.shipped else Decimal(0)

    sold = sum((net(line, line.shipped) for line in order.lines.values()), Decimal(0))
    returned = sum((net(order.lines[sku], units) for sku, units in request.lines.items()), Decimal(0))
    share = returned / sold if sold else Decimal(0)
    goods = returned - order.order_discount * share
    tax = Decimal(0) if order.taxes_included else order.tax * share
    shipping = order.shipping * share if request.reason in OUR_FAULT else Decimal(0)
    fee = Decimal(0)
    if request.reason is ReturnReason.CHANGED_MIND:
        fee = goods * policy.restocking_fee_percent / 100
    return RefundQuote(*(_round(v, exponent) for v in (goods, tax, shipping, fee, label_fee)))


def on_receipt(reason: ReturnReason, condition: Condition) -> Receipt:
    """Resellable goods go back on the shelf; damaged goods are written off. A damaged
    return the customer chose to make has its refund reviewed by a person."""
    if condition is Condition.RESELLABLE:
        return Receipt(restock=True, refund=Verdict.APPROVE, rule=Rule.RESELLABLE_ON_RECEIPT)
    if reason in OUR_FAULT:
        return Receipt(restock=False, refund=Verdict.APPROVE, rule=Rule.DAMAGED_IN_TRANSIT)
    return Receipt(restock=False, refund=Verdict.REVIEW, rule=Rule.DAMAGED_BY_CUSTOMER)


def refundable(quoted: Decimal, captured: Decimal, refunded: Decimal) -> Decimal:
    """The quote, capped by what the payment still holds: never more than captured less refunded."""
    return max(Decimal(0), min(quoted, captured - refunded))


class ReturnsSettings(Protocol):
    """`[returns]` of clerk.toml, as settings read it."""

    window_days: int
    restocking_fee_percent: Decimal
    non_returnable_categories: Collection[str]
    review_reasons: Collection[str]


def policy_from_settings(returns: ReturnsSettings, refund_above: Decimal) -> ReturnPolicy:
    """The policy from `[returns]` and `approvals.refund_above`.

    Raises:
        ReturnInputError: `unknown_reason` for a review reason outside the list.
    """
    return ReturnPolicy(
        window_days=returns.window_days,
        restocking_fee_percent=Decimal(returns.restocking_fee_percent),
        non_returnable_categories=frozenset(returns.non_returnable_categories),
        review_reasons=frozenset(map(parse_reason, returns.review_reasons)),
        refund_above=refund_above,
    )


def _round(amount: Decimal, exponent: int) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP)

