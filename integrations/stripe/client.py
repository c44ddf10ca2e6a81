"""The Stripe API client: the only code here that talks to Stripe.

`_attempt` is the one transport seam; everything it sends is built, and everything it
receives is read, by the pure functions of `mapping.py`. The secret key travels as a
Bearer token, over https (or plain http to loopback, for the sandbox), pinned to API
version `mapping.API_VERSION`; it is never put in a message or a log line.

Reads are retried on transient failures (5xx, 429, 409, timeouts, drops, garbled bodies).
A refund is money out, so it is made once: each attempt first lists the payment's refunds
for one carrying Clerk's key (`metadata[clerk_key]`), and only then checks what is left to
refund and posts, with the key as `Idempotency-Key`. Stripe replays a retried post with
the same key, but prunes keys after 24 hours, so the read-back, not the header, is what
keeps a refund whose answer was lost from being made twice on a later run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from integrations.http import (
    HttpClient,
    TransientFailure,
    decode_json,
    raise_for_transient,
    required_settings,
    transport_settings,
    web_url,
)
from integrations.protocols import Payment, Refund, RefundRefused, UpstreamError
from integrations.stripe import mapping
from integrations.woocommerce.client import is_loopback

if TYPE_CHECKING:
    from integrations.settings import Settings

T = TypeVar("T")

URL = "CLERK_STRIPE_API_URL"
KEY = "CLERK_STRIPE_API_KEY"
WHAT = "Stripe"
DEFAULT_URL = "https://api.stripe.com"
# Answers to a refund that are Stripe's word on that refund (over the amount left, already
# refunded, disputed, the key used with other parameters), not a fault of Clerk's setup.
REFUSING_STATUSES = frozenset({400, 402, 404})


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class StripeClient(HttpClient):
    """Payments read and refunded through one Stripe account."""

    vendor = WHAT
    url_setting = URL

    name = "stripe"

    def __init__(
        self,
        api_key: str,
        url: str = DEFAULT_URL,
        *,
        timeout: float = 30.0,
        max_attempts: int = 6,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        self.url = url.rstrip("/")
        self.api = web_url(self.url + "/v1/", URL, WHAT)
        if self.api.scheme == "http" and not is_loopback(self.api.host):
            raise UpstreamError(f"The Stripe API key would travel in the clear over http://; use https:// ({URL})",
                                setting=URL)
        self._key = api_key
        self._connect(timeout, max_attempts, http, sleep, rng)

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeClient:
        """A client from CLERK_STRIPE_API_KEY and CLERK_STRIPE_API_URL.

        Raises:
            UpstreamError: naming the variable that is missing or unusable.
        """
        (key,) = required_settings((settings.stripe_api_key, KEY))
        return cls(key, settings.stripe_api_url, **transport_settings(settings))

    # ------------------------------------------------------------------ transport

    def _refusal(self, response: httpx.Response, method: str, path: str, refund: bool) -> Exception:
        error = mapping.parse_error(_json_or_none(response))
        status = response.status_code
        if status == 401:
            return UpstreamError(f"Stripe refused the API key ({KEY})", setting=KEY)
        if status == 403:
            return UpstreamError(f"Stripe's API key may not {method} {path}; give the key that permission ({KEY})",
                                 setting=KEY)
        if status == 404 and not error.type:
            return UpstreamError(f"No Stripe API at {self.api} (HTTP 404); check {URL}", setting=URL)
        if 300 <= status < 400:
            return UpstreamError(f"Stripe redirected {method} {path}; set {URL} to the API's own address", setting=URL)
        if refund and status in REFUSING_STATUSES:
            return RefundRefused(error.reason or f"http_{status}", error.message)
        return UpstreamError(f"Stripe refused {method} {path} (HTTP {status} {error.reason}: {error.message})")

    def _attempt(self, method: str, path: str, params: Mapping[str, Any] | None = None,
                 form: Mapping[str, Any] | None = None, key: str | None = None) -> Any:
        """One request, read to the end: its JSON body. A POST with `key` is a refund.

        Raises TransientFailure (or lets an httpx.TransportError through) for what is
        worth another attempt, RefundRefused or UpstreamError for refusals.
        """
        headers = {"Authorization": f"Bearer {self._key}", "Stripe-Version": mapping.API_VERSION,
                   "Accept": "application/json"}
        if key is not None:
            headers["Idempotency-Key"] = key
        response = self._http.request(
            method, self.api.join(path), params=mapping.form_pairs(params or {}),
            data=dict(mapping.form_pairs(form)) if form is not None else None,
            headers=headers, timeout=self._timeout,
        )
        raise_for_transient(response)
        if response.status_code == 409:
            # Stripe's 409s (idempotency_key_in_use, lock_timeout) mean another request on the
            # same key or object is running: it has not finished, so ask again.
            raise TransientFailure(f"HTTP 409 {mapping.parse_error(_json_or_none(response)).reason}")
        if response.status_code >= 300:
            raise self._refusal(response, method, path, refund=key is not None)
        return decode_json(response)

    def _parsed(self, parse: Callable[[Any], T], body: Any) -> T:
        try:
            return parse(body)
        except mapping.UnexpectedAnswer as exc:
            raise UpstreamError(f"Stripe answered without what it should carry ({exc})") from exc

    def _payment_now(self, reference: str) -> Payment:
        """One attempt at `payment`: a PaymentIntent is read with its latest charge, whose
        `amount_refunded` it does not carry itself."""
        if mapping.payment_field(reference) == "payment_intent":
            body = self._attempt("GET", f"payment_intents/{reference}", params={"expand": ["latest_charge"]})
        else:
            body = self._attempt("GET", f"charges/{reference}")
        return self._parsed(mapping.parse_payment, body)

    def _find_now(self, payment: str, key: str) -> Refund | None:
        """One attempt at `find_refund`: the payment's refunds, newest first, a page at a time."""
        after: str | None = None
        while True:
            body = self._attempt("GET", "refunds", params=mapping.build_refunds_query(payment, after))
            refunds, more = self._parsed(mapping.parse_list, body)
            found = self._parsed(lambda page: mapping.find_refund(page, key), refunds)
            if found is not None or not more or not refunds:
                return found
            after = str(refunds[-1].get("id"))

    # ------------------------------------------------------------------ the port

    def payment(self, reference: str) -> Payment:
        """What was captured and what is already refunded (pending or succeeded) of a
        PaymentIntent (`pi_...`) or a Charge (`ch_...`)."""
        return self._retrying(lambda: self._payment_now(reference))

    def refund(self, payment: str, amount: Decimal, currency: str, key: str, reason: str | None = None) -> Refund:
        """Refunds `amount` of `payment` once per `key`.

        Every attempt looks for a refund carrying `key` first (the answer to a post whose
        answer was lost, or an earlier run's), then reads the payment and posts only what
        is left to refund, with `key` as the `Idempotency-Key`.

        Raises:
            ValueError: for an amount or key Stripe could never take (nothing is sent).
            RefundRefused: `amount_too_large` (checked before posting), `currency_mismatch`,
                `idempotency_error` (the key already refunded another amount or payment),
                or Stripe's own refusal code.
        """
        form = mapping.build_refund(payment, amount, currency, key, reason)
        wanted = currency.upper()

        def look() -> Refund | None:
            found = self._find_now(payment, key)
            if found is not None and (found.amount, found.currency) != (amount, wanted):
                raise RefundRefused("idempotency_error",
                                    f"the key already refunded {found.amount} {found.currency} ({found.reference})")
            return found

        def write() -> Refund:
            held = self._payment_now(payment)
            if held.currency != wanted:
                raise RefundRefused("currency_mismatch", f"{payment} was paid in {held.currency}, not {wanted}")
            left = held.captured - held.refunded
            if amount > left:
                raise RefundRefused("amount_too_large", f"{amount} {wanted} is more than the {left} left to refund")
            return self._parsed(mapping.parse_refund, self._attempt("POST", "refunds", form=form, key=key))

        return self._write_once(look, write)

    def find_refund(self, payment: str, key: str) -> Refund | None:
        """The refund of `payment` carrying `key`, if any."""
        return self._retrying(lambda: self._find_now(payment, key))

    def refund_status(self, reference: str) -> Refund:
        """The refund `re_...` as it stands now."""
        return self._retrying(lambda: self._parsed(mapping.parse_refund, self._attempt("GET", f"refunds/{reference}")))
