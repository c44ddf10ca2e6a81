"""Stripe API (version 2023-08-16) to and from Clerk's payment types: pure functions, no I/O.

`client.py` builds every request with the `build_*` functions and reads every answer
with the `parse_*` ones. Stripe takes form-encoded bodies (`metadata[clerk_key]=...`),
answers JSON, and counts money in integer minor units of the currency: cents for USD,
yen for JPY, fils for KWD. Clerk's amounts are `Decimal`s in the currency's own units;
they are turned into minor units here and nowhere else.

A refund carries Clerk's key twice: as the request's `Idempotency-Key`, which Stripe may
prune after 24 hours, and as `metadata[clerk_key]`, which stays on the refund, so a refund
whose answer was lost can be found again by listing the payment's refunds.

Webhooks: `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256>` over `"{t}.{raw body}"`
under the endpoint's secret, as Stripe's own libraries check it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from integrations.protocols import Payload, Payment, Refund, RefundState
from integrations.reading import UnexpectedAnswer, answer_object as _object, answer_text as _text

API_VERSION = "2023-08-16"
MAX_PAGE_SIZE = 100  # Stripe's largest list page
MAX_KEY_LENGTH = 255  # Stripe's limit on an Idempotency-Key
MAX_METADATA_VALUE = 500
KEY_FIELD = "clerk_key"
REASON_FIELD = "clerk_reason"
# The `reason`s Stripe takes on a refund; Clerk's other words travel in metadata.
REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})

# Stripe's own tables, which differ from ISO 4217's minor units: Stripe counts ISK in
# hundredths (whole krónur only since 2023) and three-decimal amounts must end in 0.
ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())
_STEP = {"ISK": 100} | dict.fromkeys(THREE_DECIMAL, 10)

# Stripe's refund statuses in Clerk's words: `requires_action` still waits on the buyer
# (a bank-transfer refund), `canceled` never paid out.
STATUS_TO_CLERK: dict[str, RefundState] = {
    "pending": RefundState.PENDING,
    "requires_action": RefundState.PENDING,
    "succeeded": RefundState.SUCCEEDED,
    "failed": RefundState.FAILED,
    "canceled": RefundState.FAILED,
}
# A status Stripe adds later is followed as pending: taken as failed, a clerk would pay
# the buyer again another way while the refund may still land.
UNLISTED_STATUS = RefundState.PENDING

SIGNATURE_SCHEME = "v1"
DEFAULT_TOLERANCE = 300  # seconds, as Stripe's libraries allow


@dataclass(frozen=True, slots=True)
class ApiError:
    """Stripe's `{"error": {...}}` body; empty strings where a field is absent."""

    type: str
    code: str
    message: str
    param: str

    @property
    def reason(self) -> str:
        """What a refusal is known by: the `code`, else the `type` (`idempotency_error` has no code)."""
        return self.code or self.type


# ---------------------------------------------------------------------------- money


def decimals(currency: str) -> int:
    """Places after the point in Stripe's minor unit of `currency`: 0 for JPY, 3 for KWD, else 2."""
    code = currency.upper()
    return 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2


def to_minor(amount: Decimal, currency: str) -> int:
    """`amount` of `currency` in Stripe's integer minor units.

    Raises:
        ValueError: for an amount finer than the currency's minor unit, or one Stripe does
            not take (a three-decimal amount not ending in 0, fractional krónur).
    """
    if not amount.is_finite():
        raise ValueError("an amount must be a finite number")
    code = currency.upper()
    units = amount.scaleb(decimals(code))
    if units != units.to_integral_value():
        raise ValueError(f"{code} amounts have at most {decimals(code)} places")
    whole = int(units)
    if whole % _STEP.get(code, 1):
        raise ValueError(f"Stripe takes {code} amounts in steps of {_STEP[code]} minor units")
    return whole


def from_minor(units: int, currency: str) -> Decimal:
    """Stripe's integer minor units of `currency` as a `Decimal` in the currency's own units."""
    return Decimal(units).scaleb(-decimals(currency))


# ---------------------------------------------------------------------------- requests


def form_pairs(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """`params` flattened as Stripe reads a form: `a[b]=` for objects, `a[0]=` for lists,
    `true`/`false` for booleans; None is left out."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        field = f"{prefix}[{name}]" if prefix else str(name)
        if value is None:
            continue
        if isinstance(value, Mapping):
            pairs += form_pairs(value, field)
        elif isinstance(value, list | tuple):
            pairs += form_pairs({str(i): item for i, item in enumerate(value)}, field)
        elif isinstance(value, bool):
            pairs.append((field, "true" if value else "false"))
        else:
            pairs.append((field, str(value)))
    return pairs


def payment_field(reference: str) -> str:
    """The parameter naming a payment: `payment_intent` for `pi_...`, `charge` for `ch_...`.

    Raises:
        ValueError: for a reference that is neither.
    """
    if reference.startswith("pi_"):
        return "payment_intent"
    if reference.startswith("ch_"):
        return "charge"
    raise ValueError("a Stripe payment reference starts with pi_ or ch_")


def build_refund(payment: str, amount: Decimal, currency: str, key: str, reason: str | None = None) -> Payload:
    """Body of `POST /v1/refunds`: `amount` of `payment`, carrying `key` in its metadata.

    A `reason` Stripe knows is its `reason`; any other is kept in `metadata[clerk_reason]`.

    Raises:
        ValueError: for an amount that is not positive or not payable in `currency`, or a
            key that is blank or longer than Stripe takes.
    """
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"a refund key must be 1 to {MAX_KEY_LENGTH} characters")
    if not amount > 0:
        raise ValueError("a refund's amount must be positive")
    metadata = {KEY_FIELD: key}
    body: Payload = {payment_field(payment): payment, "amount": to_minor(amount, currency), "metadata": metadata}
    if reason in REASONS:
        body["reason"] = reason
    elif reason:
        metadata[REASON_FIELD] = reason[:MAX_METADATA_VALUE]
    return body


def build_refunds_query(payment: str, starting_after: str | None = None) -> dict[str, Any]:
    """Query of `GET /v1/refunds`: one payment's refunds, newest first, a full page at a time."""
    query: dict[str, Any] = {payment_field(payment): payment, "limit": MAX_PAGE_SIZE}
    if starting_after:
        query["starting_after"] = starting_after
    return query


# ---------------------------------------------------------------------------- answers


def _integer(payload: Mapping[str, Any], field: str) -> int:
    value = payload.get(field)
    if not isinstance(value, int) or isinstance(value, bool):
        raise UnexpectedAnswer(f"{field} is not an integer")
    return value


def _id(value: Any) -> str | None:
    """An expandable field's id, whether Stripe sent the id or the whole object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def parse_error(body: Any) -> ApiError:
    """Stripe's error body, read as far as it goes."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    return ApiError(*(str(error.get(name) or "") for name in ("type", "code")),
                    str(error.get("message") or "")[:300], str(error.get("param") or ""))


def refund_state(status: Any) -> RefundState:
    """A Stripe refund status in Clerk's words (see `STATUS_TO_CLERK`)."""
    return STATUS_TO_CLERK.get(status, UNLISTED_STATUS) if isinstance(status, str) else UNLISTED_STATUS


def parse_payment(body: Any) -> Payment:
    """A PaymentIntent (its `latest_charge` expanded) or a Charge, as what was captured and refunded."""
    payment = _object(body, "payment")
    kind = payment.get("object")
    currency = _text(payment, "currency").upper()
    if kind == "payment_intent":
        captured = _integer(payment, "amount_received")
        charge = payment.get("latest_charge")
        if charge is not None and not isinstance(charge, dict):
            raise UnexpectedAnswer("latest_charge is not expanded")
        refunded = 0 if charge is None else _integer(charge, "amount_refunded")
    elif kind == "charge":
        captured, refunded = _integer(payment, "amount_captured"), _integer(payment, "amount_refunded")
    else:
        raise UnexpectedAnswer("object is neither a payment_intent nor a charge")
    return Payment(reference=_text(payment, "id"), currency=currency, captured=from_minor(captured, currency),
                   refunded=from_minor(refunded, currency))


def parse_refund(body: Any) -> Refund:
    """One refund object."""
    refund = _object(body, "refund")
    if refund.get("object") != "refund":
        raise UnexpectedAnswer("object is not a refund")
    payment = _id(refund.get("payment_intent")) or _id(refund.get("charge"))
    if payment is None:
        raise UnexpectedAnswer("refund names neither payment_intent nor charge")
    currency = _text(refund, "currency").upper()
    metadata = refund.get("metadata") if isinstance(refund.get("metadata"), dict) else {}
    key, failure = metadata.get(KEY_FIELD), refund.get("failure_reason")
    return Refund(reference=_text(refund, "id"), payment=payment,
                  amount=from_minor(_integer(refund, "amount"), currency), currency=currency,
                  state=refund_state(refund.get("status")), key=key if isinstance(key, str) else None,
                  failure_reason=failure if isinstance(failure, str) and failure else None)


def parse_list(body: Any) -> tuple[list[dict[str, Any]], bool]:
    """The objects of one list page, and whether more pages follow."""
    page = _object(body, "list")
    data = page.get("data")
    if page.get("object") != "list" or not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise UnexpectedAnswer("data is not a list of objects")
    return data, page.get("has_more") is True


def find_refund(refunds: Iterable[Any], key: str) -> Refund | None:
    """The first refund carrying `key` in its metadata."""
    for refund in refunds:
        metadata = refund.get("metadata") if isinstance(refund, dict) else None
        if isinstance(metadata, dict) and metadata.get(KEY_FIELD) == key:
            return parse_refund(refund)
    return None


# ---------------------------------------------------------------------------- webhooks


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex `v1` signature Stripe sends for `body` sent at `timestamp` (unix seconds)."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify_webhook(secret: str, header: str | None, body: bytes, now: datetime,
                   tolerance: int = DEFAULT_TOLERANCE) -> bool:
    """True when `header` (`Stripe-Signature`) signs the raw `body` under `secret`, sent
    within `tolerance` seconds of `now` either way.

    Any one `v1` signature may match (Stripe sends one per secret while a secret is rolled).
    Signatures compare in constant time; a blank secret (anyone could sign with it), a
    missing timestamp, or one further off than `tolerance` (a replay, or a clock far
    wrong) never verifies.
    """
    if not secret.strip() or not header:
        return False
    timestamps, signatures = [], []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamps.append(value)
        elif name == SIGNATURE_SCHEME:
            signatures.append(value)
    if len(timestamps) != 1 or not timestamps[0].isascii() or not timestamps[0].isdigit():
        return False
    sent = int(timestamps[0])
    if abs(now.timestamp() - sent) > tolerance:
        return False
    expected = webhook_signature(secret, sent, body).encode()
    return any(hmac.compare_digest(expected, given.encode("utf-8", "replace")) for given in signatures)
