"""What every vendor client shares: its connection, its settings, and retries with backoff.

A transient failure is one that another attempt may cure: a 5xx, a 429, a timeout, a
connection refused or dropped mid-body, or a body that is not the JSON it claims to be.
Anything else (401, 404, 422...) is the caller's to judge and is never retried here.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Self, TypeVar

import httpx

from integrations.protocols import UpstreamError

if TYPE_CHECKING:
    from integrations.settings import Settings

T = TypeVar("T")


class TransientFailure(Exception):
    """A failure worth another attempt; `retry_after` is the server's own hint, in seconds."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter, a bounded number of attempts.

    `sleep` and `rng` are injectable so tests neither wait nor depend on chance.
    """

    max_attempts: int = 6
    base: float = 0.2
    cap: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the `failures`-th consecutive failure (1-based)."""
        ceiling = min(self.cap, self.base * 2 ** (failures - 1))
        jittered = self.rng.uniform(0, ceiling)
        # A server's Retry-After is a floor worth honouring, but never beyond the cap.
        return min(self.cap, max(jittered, retry_after or 0.0))


def is_transient_status(status: int) -> bool:
    """5xx and 429: worth another attempt."""
    return status >= 500 or status == 429


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The `Retry-After` header as seconds (delta or HTTP date), if readable."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def raise_for_transient(response: httpx.Response) -> None:
    """Raises `TransientFailure` for a 5xx or 429; other statuses pass through."""
    if is_transient_status(response.status_code):
        raise TransientFailure(f"HTTP {response.status_code}", retry_after_seconds(response))


def decode_json(response: httpx.Response) -> Any:
    """The body as JSON; a body that is not (truncated, HTML from a proxy) is transient."""
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TransientFailure("response body is not valid JSON") from exc


def describe(exc: BaseException) -> str:
    """A short, data-free description of a failure for messages and logs."""
    if isinstance(exc, TransientFailure):
        return str(exc)
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.TransportError):
        return f"connection failed ({type(exc).__name__})"
    return type(exc).__name__


def call_with_retry(operation: Callable[[], T], policy: RetryPolicy, what: str) -> T:
    """Runs `operation`, retrying transient failures; then gives up with `UpstreamError`.

    Args:
        operation: one complete attempt; raises `TransientFailure` or an
            `httpx.TransportError` when another attempt may succeed.
        policy: how often and how long to wait.
        what: names the upstream in the final error, e.g. "Shopify".

    Raises:
        UpstreamError: after `policy.max_attempts` transient failures in a row.
    """
    failures = 0
    while True:
        try:
            return operation()
        except (TransientFailure, httpx.TransportError) as exc:
            failures += 1
            if failures >= policy.max_attempts:
                raise UpstreamError(
                    f"{what} kept failing after {failures} attempts: {describe(exc)}"
                ) from exc
            retry_after = exc.retry_after if isinstance(exc, TransientFailure) else None
            policy.sleep(policy.delay(failures, retry_after))


def request_json(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    policy: RetryPolicy,
    what: str,
    **kwargs: Any,
) -> tuple[httpx.Response, Any]:
    """One HTTP request with retries; returns the final response and its JSON body.

    The body is None for a 4xx other than 429, which is returned unretried for the
    caller to turn into a clear refusal.
    """

    def attempt() -> tuple[httpx.Response, Any]:
        response = client.request(method, url, **kwargs)
        raise_for_transient(response)
        if response.is_error:
            return response, None
        return response, decode_json(response)

    return call_with_retry(attempt, policy, what)


def required_settings(*named: tuple[str | None, str]) -> list[str]:
    """The values of `(value, variable name)` pairs, each checked to be set, in order.

    Raises:
        UpstreamError: naming the first variable that is not set.
    """
    values = []
    for value, name in named:
        if not value:
            raise UpstreamError(f"{name} is not set", setting=name)
        values.append(value)
    return values


def transport_settings(settings: Settings) -> dict[str, Any]:
    """The `timeout` and `max_attempts` every client takes, from the CLERK_HTTP_* settings."""
    return {"timeout": settings.http_timeout_seconds, "max_attempts": settings.http_max_attempts}


def web_url(text: str, setting: str, vendor: str) -> httpx.URL:
    """`text` as an http(s) URL with a host.

    Raises:
        UpstreamError: naming `setting`, set but not such a URL.
    """
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise UpstreamError(f"{setting} is not a URL", setting=setting) from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise UpstreamError(f"{vendor}'s URL must start with https:// ({setting})", setting=setting)
    return url


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing: every response's cookies are dropped unread."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class CookielessClient(httpx.Client):
    """An httpx client that neither keeps nor sends cookies, for APIs that authenticate every
    request themselves (EasyPost's key, label storage links). httpx reads every response's
    cookies into its jar through urllib's cookie machinery (~0.05 ms a response); this skips it."""

    @property  # type: ignore[override]
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        if cookies:
            raise ValueError("a CookielessClient keeps no cookies")


_NO_COOKIES = _NoCookies()


class HttpClient:
    """A vendor client's HTTP connection (its own, or one lent to it), its retry policy, and closing.

    A client that sets `vendor` (its name in messages), `url_setting` (the variable naming its
    base URL) and `url` also gets `_retrying` and `_write_once`.
    """

    vendor: str
    url_setting: str
    url: str
    _timeout: float
    _owns_http: bool
    _http: httpx.Client
    _policy: RetryPolicy

    def _connect(self, timeout: float, max_attempts: int, http: httpx.Client | None,
                 sleep: Callable[[float], None], rng: random.Random | None, *, cookies: bool = True) -> None:
        """Opens a connection unless `http` is lent, closed then by its lender, not by `close()`.
        Without `cookies`, the connection opened keeps none (see `CookielessClient`)."""
        self._timeout = timeout
        self._owns_http = http is None
        self._http = http or (httpx.Client if cookies else CookielessClient)(timeout=timeout)
        self._policy = RetryPolicy(max_attempts=max_attempts, sleep=sleep, rng=rng or random.Random())

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """Runs `attempt` with retries; a host that never answered is a wrong URL."""
        try:
            return call_with_retry(attempt, self._policy, self.vendor)
        except UpstreamError as exc:
            if isinstance(exc.__cause__, httpx.ConnectError):
                raise UpstreamError(f"Cannot reach {self.vendor} at {self.url} ({self.url_setting})",
                                    setting=self.url_setting) from exc
            raise

    def _write_once(self, look: Callable[[], T | None], write: Callable[[], T]) -> T:
        """Looks, then writes; every retry looks again first, so a write whose answer was lost
        is found, never repeated. After a timeout it waits as long again before looking: the
        write may still be landing upstream."""
        late = False

        def attempt() -> T:
            nonlocal late
            if late:
                self._policy.sleep(self._timeout)
                late = False
            found = look()
            if found is not None:
                return found
            try:
                return write()
            except httpx.TimeoutException:
                late = True
                raise

        return self._retrying(attempt)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
