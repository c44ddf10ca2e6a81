"""The shared retry helper: what is retried, how long it waits, and when it gives up."""

from __future__ import annotations

import random

import httpx
import pytest

from integrations.http import RetryPolicy, TransientFailure, call_with_retry, request_json
from integrations.protocols import UpstreamError

URL = "https://vendor.example/api/thing"


class Script:
    """A MockTransport handler answering from a list: responses, or exceptions to raise."""

    def __init__(self, *steps: object):
        self.steps = list(steps)
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        step = self.steps[min(self.calls, len(self.steps) - 1)]
        self.calls += 1
        if isinstance(step, Exception):
            raise step
        assert isinstance(step, httpx.Response)
        return step


def policy(max_attempts: int = 6) -> tuple[RetryPolicy, list[float]]:
    slept: list[float] = []
    return RetryPolicy(max_attempts=max_attempts, sleep=slept.append, rng=random.Random(7)), slept


def fetch(script: Script, retry: RetryPolicy) -> tuple[httpx.Response, object]:
    with httpx.Client(transport=httpx.MockTransport(script)) as client:
        return request_json(client, "GET", URL, policy=retry, what="Vendor")


OK = httpx.Response(200, json={"ok": True})


def test_5xx_then_success() -> None:
    retry, slept = policy()
    script = Script(httpx.Response(503), httpx.Response(502), OK)
    response, body = fetch(script, retry)
    assert (response.status_code, body, script.calls, len(slept)) == (200, {"ok": True}, 3, 2)


def test_dropped_connections_and_timeouts_are_retried() -> None:
    retry, slept = policy()
    dropped = httpx.RemoteProtocolError("peer closed connection without sending complete message body")
    script = Script(dropped, httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), httpx.ReadError("reset"), OK)
    assert fetch(script, retry)[1] == {"ok": True}
    assert script.calls == 5 and len(slept) == 4


def test_a_body_that_is_not_json_is_retried() -> None:
    retry, slept = policy()
    truncated = httpx.Response(200, content=b'{"data": {"orders": {"nodes": [{"id": "gid://')
    html = httpx.Response(200, content=b"<html>Bad gateway</html>")
    script = Script(truncated, html, OK)
    assert fetch(script, retry)[1] == {"ok": True}
    assert script.calls == 3


def test_gives_up_after_max_attempts_with_a_clear_line() -> None:
    retry, slept = policy(max_attempts=4)
    script = Script(httpx.Response(500))
    with pytest.raises(UpstreamError) as caught:
        fetch(script, retry)
    assert script.calls == 4 and len(slept) == 3
    assert str(caught.value) == "Vendor kept failing after 4 attempts: HTTP 500"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(status: int) -> None:
    retry, slept = policy()
    script = Script(httpx.Response(status, json={"errors": "no"}), OK)
    response, body = fetch(script, retry)
    assert (response.status_code, body, script.calls, slept) == (status, None, 1, [])


def test_429_is_retried_honouring_retry_after() -> None:
    retry, slept = policy()
    script = Script(httpx.Response(429, headers={"Retry-After": "2"}), OK)
    assert fetch(script, retry)[1] == {"ok": True}
    assert slept == [2.0]


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    retry = RetryPolicy(base=0.2, cap=10.0, rng=random.Random(1))
    for failures in range(1, 12):
        ceiling = min(10.0, 0.2 * 2 ** (failures - 1))
        delays = [retry.delay(failures) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8, "full jitter spans the whole range"
    assert retry.delay(1, retry_after=30) == 10.0, "a server's hint never pushes past the cap"


def test_only_transient_failures_are_retried() -> None:
    retry, slept = policy()
    calls = []

    def operation() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise TransientFailure("first try")
        raise UpstreamError("refused", setting="CLERK_X")

    with pytest.raises(UpstreamError) as caught:
        call_with_retry(operation, retry, "Vendor")
    assert caught.value.setting == "CLERK_X" and len(calls) == 2 and len(slept) == 1
