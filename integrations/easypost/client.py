"""The EasyPost API v2 client: the only code here that talks to EasyPost.

`_attempt` is the one transport seam; everything it sends is built, and everything it
receives is read, by the pure functions of `mapping.py`. The API key travels as the
HTTP Basic user (no password), over https (or plain http to loopback, for the sandbox).

Reads, address checks, shipment creation (rates) and trackers are retried on transient
failures (5xx, 429, timeouts, drops, garbled bodies): repeating them costs nothing, and
EasyPost answers a tracker asked for twice with the one it has. A label costs money, so
the buy is never repeated blindly: every attempt first reads the shipment back, and one
already bought (`postage_label` and `tracking_code` set) is its own answer. The buy also
carries Clerk's key as `Idempotency-Key`; EasyPost does not document that header, so
the read-back, not the header, is what keeps a lost answer from buying twice.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from domain.orders import Address
from integrations.easypost import mapping
from integrations.http import (
    HttpClient,
    TransientFailure,
    decode_json,
    raise_for_transient,
    required_settings,
    transport_settings,
    web_url,
)
from integrations.protocols import AddressCheck, Label, Parcel, Rate, TrackingEvent, UpstreamError
from integrations.woocommerce.client import is_loopback

if TYPE_CHECKING:
    from integrations.settings import Settings

T = TypeVar("T")

URL = "CLERK_EASYPOST_API_URL"
KEY = "CLERK_EASYPOST_API_KEY"
WHAT = "EasyPost"
DEFAULT_URL = "https://api.easypost.com"
# How far back `find_label` looks: a label is looked for again within the hour it was
# lost, and a month is far beyond any retry while keeping the search a few pages long.
LOOKBACK = timedelta(days=31)


class EasyPostClient(HttpClient):
    """Address checks, rates, labels and tracking from one EasyPost account."""

    vendor = WHAT
    url_setting = URL

    carrier = "easypost"

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
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        label_format: str = "PNG",
    ):
        if label_format not in mapping.LABEL_FORMATS:
            raise UpstreamError(f"[shipping] label_format must be one of {', '.join(mapping.LABEL_FORMATS)}")
        self.label_format = label_format
        self.url = url.rstrip("/")
        self.api = web_url(self.url + "/v2/", URL, WHAT)
        if self.api.scheme == "http" and not is_loopback(self.api.host):
            raise UpstreamError(f"The EasyPost API key would travel in the clear over http://; use https:// ({URL})",
                                setting=URL)
        self._key = api_key
        self._auth = httpx.BasicAuth(api_key, "")
        self._base = str(self.api)  # ends in "/v2/": paths are ours, or EasyPost's ids, appended
        self._connect(timeout, max_attempts, http, sleep, rng, cookies=False)  # the key authenticates each call
        self._clock = clock
        self._trackers: dict[str, str] = {}  # tracking number -> EasyPost tracker id, once learnt

    @classmethod
    def from_settings(cls, settings: Settings) -> EasyPostClient:
        """A client from CLERK_EASYPOST_API_KEY and CLERK_EASYPOST_API_URL.

        Raises:
            UpstreamError: naming the variable that is missing or unusable.
        """
        (key,) = required_settings((settings.easypost_api_key, KEY))
        return cls(key, settings.easypost_api_url, label_format=settings.toml.shipping.label_format,
                   **transport_settings(settings))

    # ------------------------------------------------------------------ transport

    def _refusal(self, response: httpx.Response, method: str, path: str) -> UpstreamError:
        try:
            body = response.json()
        except ValueError:
            body = None
        code, message = mapping.parse_error(body)
        status = response.status_code
        if status == 401:
            return UpstreamError(f"EasyPost refused the API key ({KEY})", setting=KEY)
        if status == 404 and not code:
            return UpstreamError(f"No EasyPost API at {self.api} (HTTP 404); check {URL}", setting=URL)
        if 300 <= status < 400:
            return UpstreamError(f"EasyPost redirected {method} {path}; set {URL} to the API's own address",
                                 setting=URL)
        if status == 402:
            return UpstreamError(f"EasyPost will not charge the account for {method} {path} ({code}: {message})")
        return UpstreamError(f"EasyPost rejected {method} {path} (HTTP {status} {code}: {message})")

    def _attempt(self, method: str, path: str, params: Mapping[str, Any] | None = None,
                 body: Any = None, headers: Mapping[str, str] | None = None) -> Any:
        """One request, read to the end: its JSON body.

        Raises TransientFailure (or lets an httpx.TransportError through) for what is
        worth another attempt, UpstreamError for refusals.
        """
        response = self._http.request(
            method, self._base + path, params=params, json=body, auth=self._auth,
            timeout=self._timeout, headers={"Accept": "application/json", **(headers or {})},
        )
        raise_for_transient(response)
        if response.status_code >= 300:
            raise self._refusal(response, method, path)
        return decode_json(response)

    def _read(self, method: str, path: str, parse: Callable[[Any], T], **request: Any) -> T:
        """A request that is safe to repeat, retried, its answer parsed."""
        return self._retrying(lambda: self._parsed(parse, self._attempt(method, path, **request)))

    @staticmethod
    def _parsed(parse: Callable[[Any], T], body: Any) -> T:
        try:
            return parse(body)
        except mapping.UnexpectedAnswer as exc:
            raise UpstreamError(f"EasyPost answered without what it should carry ({exc})") from exc

    # ------------------------------------------------------------------ the port

    def verify_address(self, address: Address) -> AddressCheck:
        """Creates the address with `verify`; the carrier's reasons come back when it fails."""
        return self._read("POST", "addresses", mapping.parse_address_check,
                          body=mapping.build_address_verification(address))

    def rates(self, ship_from: Address, ship_to: Address, parcel: Parcel, reference: str) -> tuple[str, list[Rate]]:
        """Creates a shipment carrying `reference` (and the label format to make); returns its
        id and its rates.

        A retried create may leave an extra shipment upstream; one not bought costs nothing.
        """
        body = mapping.build_shipment(ship_from, ship_to, parcel, reference,
                                      None if self.label_format == "PNG" else self.label_format)
        return self._read("POST", "shipments", mapping.parse_rates, body=body)

    def buy_label(self, shipment_id: str, rate_id: str, key: str) -> Label:
        """Buys the label once: each attempt reads the shipment first, and a shipment
        already bought (by this call's lost answer, or an earlier run) gives its label."""
        path = f"shipments/{shipment_id}"

        def buy() -> Label:
            bought = self._attempt("POST", f"{path}/buy", body=mapping.build_buy(rate_id), headers={"Idempotency-Key": key})
            label = self._parsed(self._label, bought)
            if label is None:
                raise TransientFailure("the buy answered without a label")  # read back next attempt
            return label

        return self._write_once(lambda: self._parsed(self._label, self._attempt("GET", path)), buy)

    def _label(self, body: Any) -> Label | None:
        return mapping.parse_label(body, self.label_format)

    def find_label(self, reference: str) -> Label | None:
        """The label bought for a shipment created with `reference` within `LOOKBACK`.

        EasyPost lists shipments but cannot filter them by reference, so bought ones are
        read newest first, a page at a time, until one matches.
        """
        since = self._clock() - LOOKBACK
        before: str | None = None
        while True:
            params = mapping.build_purchased_params(before, since)
            shipments, more = self._read("GET", "shipments", mapping.parse_shipments_page, params=params)
            found = mapping.find_label(shipments, reference, self.label_format)
            if found is not None or not more or not shipments:
                return found
            before = str(shipments[-1].get("id"))

    def track(self, tracking_numbers: Sequence[str]) -> list[TrackingEvent]:
        """The latest status of each number: its tracker read back when this client knows
        it, else asked for (EasyPost answers a number it already tracks with its tracker)."""
        events = []
        for number in tracking_numbers:
            known = self._trackers.get(number)
            if known:
                tracker_id, event = self._read("GET", f"trackers/{known}", mapping.parse_tracker)
            else:
                tracker_id, event = self._read("POST", "trackers", mapping.parse_tracker,
                                               body=mapping.build_tracker(number))
            self._trackers[number] = tracker_id
            events.append(event)
        return events

    def download_label(self, url: str) -> bytes:
        """The label file. Label URLs are storage links, not the API: the key is not sent."""

        def attempt() -> bytes:
            response = self._http.get(url, timeout=self._timeout)
            raise_for_transient(response)
            if response.status_code >= 300:
                raise UpstreamError(f"EasyPost's label file could not be fetched (HTTP {response.status_code})")
            if not mapping.is_label_file(response.headers.get("content-type", ""), response.content):
                raise TransientFailure("the label file came back cut short or as something else")
            return response.content

        return self._retrying(attempt)
