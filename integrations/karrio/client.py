"""The Karrio REST API client: the only code here that talks to a Karrio server.

`_attempt` is the one transport seam; everything it sends is built, and everything it
receives is read, by the pure functions of `mapping.py`. The API key travels as
`Authorization: Token <key>`, over https (or plain http to loopback, for a server
beside Clerk).

Reads, address checks, shipment creation (rates) and tracking are retried on transient
failures (5xx, 429, timeouts, drops, garbled bodies): repeating them costs nothing. A
label costs money, so the purchase is never repeated blindly: every attempt first reads
the shipment back, and one already bought is its own answer. Karrio documents no
idempotency header, so Clerk's key is kept in the shipment's metadata instead.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from domain.orders import Address
from integrations.http import (
    HttpClient,
    TransientFailure,
    raise_for_transient,
    required_settings,
    transport_settings,
    web_url,
)
from integrations.karrio import mapping
from integrations.protocols import AddressCheck, Label, Parcel, Rate, TrackingEvent, UpstreamError
from integrations.woocommerce.client import is_loopback

if TYPE_CHECKING:
    from integrations.settings import Settings

T = TypeVar("T")

URL = "CLERK_KARRIO_URL"
KEY = "CLERK_KARRIO_API_KEY"
WHAT = "Karrio"


class NotFound(UpstreamError):
    """Karrio answered 404 for a record it was asked for by id or number."""


class NotSupported(UpstreamError):
    """Karrio answered 406: none of its carrier connections can do what was asked
    (e.g. "address validation is not supported by carrier: 'clerk-generic'")."""


class KarrioClient(HttpClient):
    """Address checks, rates, labels and tracking from one Karrio server."""

    vendor = WHAT
    url_setting = URL

    carrier = "karrio"

    def __init__(
        self,
        url: str,
        api_key: str,
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
            raise UpstreamError(f"The Karrio API key would travel in the clear over http://; use https:// ({URL})",
                                setting=URL)
        self._key = api_key
        self._connect(timeout, max_attempts, http, sleep, rng)
        self._no_validation: str | None = None  # Karrio's words, once it said it has no address validation

    @classmethod
    def from_settings(cls, settings: Settings) -> KarrioClient:
        """A client from CLERK_KARRIO_URL and CLERK_KARRIO_API_KEY.

        Raises:
            UpstreamError: naming the variable that is missing or unusable.
        """
        url, key = required_settings((settings.karrio_url, URL), (settings.karrio_api_key, KEY))
        return cls(url, key, **transport_settings(settings))

    # ------------------------------------------------------------------ transport

    def _refusal(self, response: httpx.Response, method: str, path: str) -> UpstreamError:
        code, message = mapping.parse_error(_json_or_none(response))
        status = response.status_code
        if status == 401 or (status == 403 and code in ("", "authentication_failed", "not_authenticated")):
            return UpstreamError(f"Karrio refused the API key ({KEY})", setting=KEY)
        if status == 404 and not code:
            return UpstreamError(f"No Karrio API at {self.api} (HTTP 404); check {URL}", setting=URL)
        if 300 <= status < 400:
            return UpstreamError(f"Karrio redirected {method} {path}; set {URL} to the server's own address",
                                 setting=URL)
        return UpstreamError(f"Karrio rejected {method} {path} (HTTP {status} {code}: {message})")

    def _attempt(self, method: str, path: str, params: Mapping[str, Any] | None = None, body: Any = None) -> Any:
        """One request, read to the end: its JSON body, numbers with a point read as `Decimal`.

        Raises NotFound for a 404 naming what is missing, TransientFailure (or lets an
        httpx.TransportError through) for what is worth another attempt, UpstreamError
        for refusals.
        """
        response = self._http.request(
            method, self.api.join(path), params=params, json=body, timeout=self._timeout,
            headers={"Accept": "application/json", "Authorization": f"Token {self._key}"},
        )
        raise_for_transient(response)
        if response.status_code == 404 and mapping.parse_error(_json_or_none(response))[0] == "not_found":
            raise NotFound(f"Karrio has no {path}")
        if response.status_code == 406:
            said = mapping.parse_error(_json_or_none(response))[1] or f"{method} {path} is not supported"
            raise NotSupported(f"Karrio cannot do that here: {said}")
        if response.status_code >= 300:
            raise self._refusal(response, method, path)
        try:
            return json.loads(response.content, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError) as exc:
            raise TransientFailure("response body is not valid JSON") from exc

    def _read(self, method: str, path: str, parse: Callable[[Any], T], **request: Any) -> T:
        """A request that is safe to repeat, retried, its answer parsed."""
        return self._retrying(lambda: self._parsed(parse, self._attempt(method, path, **request)))

    @staticmethod
    def _parsed(parse: Callable[[Any], T], body: Any) -> T:
        try:
            return parse(body)
        except mapping.UnexpectedAnswer as exc:
            raise UpstreamError(f"Karrio answered without what it should carry ({exc})") from exc

    def _label(self, body: Any) -> Label | None:
        return mapping.parse_label(body, self.url)

    # ------------------------------------------------------------------ the port

    def verify_address(self, address: Address) -> AddressCheck:
        """Creates the address with `validate_location`; Karrio asks its configured validator.

        A server whose carriers offer no address validation (the `generic` carrier; Karrio
        answers 406 "address validation is not supported by carrier") gives
        `AddressCheck.unchecked` with its words: not refused, not verified. This client
        remembers that answer and does not ask again.
        """
        if self._no_validation is not None:
            return AddressCheck.unchecked(self._no_validation)
        try:
            return self._read("POST", "addresses", mapping.parse_address_check,
                              body=mapping.build_address_validation(address))
        except NotSupported as exc:
            self._no_validation = str(exc)
            return AddressCheck.unchecked(self._no_validation)

    def rates(self, ship_from: Address, ship_to: Address, parcel: Parcel, reference: str) -> tuple[str, list[Rate]]:
        """Creates a draft shipment carrying `reference`; returns its id and its rates.

        A retried create may leave an extra draft upstream; one not bought costs nothing.
        """
        body = mapping.build_shipment(ship_from, ship_to, parcel, reference)
        return self._read("POST", "shipments", mapping.parse_rates, body=body)

    def buy_label(self, shipment_id: str, rate_id: str, key: str) -> Label:
        """Buys the label once: each attempt reads the shipment first, and a shipment
        already bought (by this call's lost answer, or an earlier run) gives its label."""
        path = f"shipments/{shipment_id}"

        def purchase() -> Label:
            bought = self._attempt("POST", f"{path}/purchase", body=mapping.build_purchase(rate_id, key))
            label = self._parsed(self._label, bought)
            if label is None:
                raise TransientFailure("the purchase answered without a label")  # read back next attempt
            return label

        return self._write_once(lambda: self._parsed(self._label, self._attempt("GET", path)), purchase)

    def find_label(self, reference: str) -> Label | None:
        """The label bought for a shipment created with `reference`, newest first, page by page."""
        offset = 0
        while True:
            params = mapping.build_reference_params(reference, offset)
            shipments, more = self._read("GET", "shipments", mapping.parse_shipments_page, params=params)
            found = mapping.find_label(shipments, reference, self.url)
            if found is not None or not more or not shipments:
                return found
            offset += len(shipments)

    def track(self, tracking_numbers: Sequence[str]) -> list[TrackingEvent]:
        """The latest status of each number, read from the tracker Karrio keeps for it.

        Karrio makes a tracker after the purchase for carriers that track; a number it
        holds none for is reported as not scanned yet (`mapping.untracked`).
        """
        events = []
        for number in tracking_numbers:
            try:
                events.append(self._read("GET", f"trackers/{number}", mapping.parse_tracker))
            except NotFound:
                events.append(mapping.untracked(number))
        return events

    def download_label(self, url: str) -> bytes:
        """The label PDF. Karrio serves it from its own API, so the key goes with it, but only there.

        Raises:
            UpstreamError: for a URL outside this Karrio server, or a file that is not there.
        """
        if not url.startswith(self.url + "/"):
            raise UpstreamError(f"A Karrio label URL must be on {self.url} ({URL}); the key is not sent elsewhere",
                                setting=URL)

        def attempt() -> bytes:
            response = self._http.get(url, timeout=self._timeout, headers={"Authorization": f"Token {self._key}"})
            raise_for_transient(response)
            if response.status_code >= 300:
                raise UpstreamError(f"Karrio's label file could not be fetched (HTTP {response.status_code})")
            if not mapping.is_pdf(response.content):
                raise TransientFailure("the label file came back cut short or as something else")
            return response.content

        return self._retrying(attempt)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
