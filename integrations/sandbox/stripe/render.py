"""Stripe's JSON shapes (API version 2023-08-16) for the sandbox's payments and refunds.

Only the fields Stripe documents are sent, each in the type the spec gives it; fields the
spec makes optional and not nullable (`failure_reason`) are left out rather than null.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 24  # characters after the prefix, as Stripe's own ids have


def stripe_id(prefix: str, seed: str) -> str:
    """A Stripe-looking id (`pi_` and 24 letters and digits) that `seed` always gives."""
    number = int.from_bytes(hashlib.sha256(f"{prefix}:{seed}".encode()).digest(), "big")
    letters = []
    for _ in range(ID_LENGTH):
        number, digit = divmod(number, len(_ALPHABET))
        letters.append(_ALPHABET[digit])
    return f"{prefix}_{''.join(letters)}"


def charge_id(payment: str) -> str:
    """The Charge of the PaymentIntent `payment`."""
    return stripe_id("ch", payment)


@dataclass
class Charge:
    """A succeeded card payment; `payment_intent` is None for one made with the Charges API."""

    id: str
    amount: int  # minor units, all captured
    currency: str  # lower-case, as Stripe writes it
    created: int
    payment_intent: str | None
    disputed: bool = False
    refunds: list[RefundRecord] = field(default_factory=list)

    @property
    def amount_refunded(self) -> int:
        """Pending and succeeded refunds: a failed one gives its money back to the charge."""
        return sum(r.amount for r in self.refunds if r.status in ("pending", "succeeded"))

    def render(self) -> dict[str, Any]:
        refunded = self.amount_refunded
        return {
            "id": self.id, "object": "charge", "amount": self.amount, "amount_captured": self.amount,
            "amount_refunded": refunded, "balance_transaction": "txn_" + self.id[3:],
            "billing_details": {"address": None, "email": None, "name": None, "phone": None},
            "captured": True, "created": self.created, "currency": self.currency, "description": None,
            "disputed": self.disputed, "failure_code": None, "failure_message": None, "livemode": False,
            "metadata": {}, "paid": True, "payment_intent": self.payment_intent,
            "refunded": refunded == self.amount, "status": "succeeded",
        }

    def render_payment_intent(self, expand_charge: bool) -> dict[str, Any]:
        """The PaymentIntent this charge paid, with the charge as `latest_charge` (its id,
        or the whole charge when expanded)."""
        return {
            "id": self.payment_intent, "object": "payment_intent", "amount": self.amount, "amount_capturable": 0,
            "amount_received": self.amount, "canceled_at": None, "cancellation_reason": None,
            "capture_method": "automatic", "confirmation_method": "automatic", "created": self.created,
            "currency": self.currency, "description": None, "last_payment_error": None,
            "latest_charge": self.render() if expand_charge else self.id, "livemode": False, "metadata": {},
            "next_action": None, "payment_method_types": ["card"], "status": "succeeded",
        }


@dataclass
class RefundRecord:
    """One refund as the sandbox keeps it; it settles as it is read (see the sandbox)."""

    id: str
    charge: Charge
    amount: int
    created: int
    born: float  # monotonic seconds, for settling by age
    metadata: dict[str, str]
    reason: str | None
    status: str = "pending"
    failure_reason: str | None = None
    reads: int = 0

    def render(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id, "object": "refund", "amount": self.amount, "balance_transaction": "txn_" + self.id[3:],
            "charge": self.charge.id, "created": self.created, "currency": self.charge.currency,
            "metadata": dict(self.metadata), "payment_intent": self.charge.payment_intent, "reason": self.reason,
            "receipt_number": None, "source_transfer_reversal": None, "status": self.status,
            "transfer_reversal": None,
        }
        if self.failure_reason:
            body["failure_reason"] = self.failure_reason
            body["failure_balance_transaction"] = "txn_f" + self.id[3:]
        return body


def error_body(kind: str, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """Stripe's `{"error": {...}}`; `code` and `param` only where there is one."""
    error = {"type": kind, "message": message}
    if code:
        error |= {"code": code, "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"}
    if param:
        error["param"] = param
    return {"error": error}
