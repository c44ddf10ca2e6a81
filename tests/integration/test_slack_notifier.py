"""SlackNotifier (real slack_sdk client) against the Slack sandbox over loopback."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from integrations.protocols import Alert
from integrations.sandbox.faults import Faults
from integrations.sandbox.server import RunningServer, serve_in_thread
from integrations.sandbox.slack import SlackSandbox, create_slack_app
from integrations.slack import SlackError, SlackNotifier, build_message

TOKEN = "xoxb-sandbox"
ALERT = Alert(
    incident="intake:run-1",
    title="3 orders need a person",
    lines=["#1042 unknown_sku SKU-00012", "#1043 price_mismatch for jane@example.com"],
    counts={"unknown_sku": 2, "price_mismatch": 1},
    link="http://127.0.0.1:4200/runs/flow-run/3f2a1b4c",
)


@pytest.fixture(scope="module")
def _served() -> Iterator[tuple[SlackSandbox, RunningServer]]:
    app = create_slack_app(token=TOKEN)
    with serve_in_thread(app) as server:
        yield app, server


@pytest.fixture
def sandbox(_served: tuple[SlackSandbox, RunningServer]) -> tuple[SlackSandbox, RunningServer]:
    """The default sandbox, shared by the module and reset for each test."""
    _served[0].reset()
    return _served


def _notifier(server: RunningServer, token: str = TOKEN, channel: str = "#clerk-alerts", **kwargs) -> SlackNotifier:
    return SlackNotifier(token, channel, f"{server.url}/api/", backoff_seconds=0.01, **kwargs)


def _seed_faulting_only_the_first_request(rate: float) -> int:
    # Faults draws one number per request for each kind with a non-zero rate.
    return next(s for s in range(10_000) if (rng := random.Random(s)).random() < rate <= rng.random())


def test_message_is_recorded_with_its_blocks(sandbox: tuple[SlackSandbox, RunningServer]) -> None:
    app, server = sandbox
    ts = _notifier(server).send(ALERT)
    (posted,) = app.messages
    expected = build_message(ALERT)
    assert posted.ts == ts
    assert posted.channel == "#clerk-alerts"
    assert posted.channel_id.startswith("C")
    assert posted.text == expected["text"]
    assert posted.blocks == expected["blocks"]
    assert "jane@example.com" not in str(posted)
    listed = httpx.get(f"{server.url}/sandbox/messages").json()["messages"]
    assert [m["ts"] for m in listed] == [ts]
    assert httpx.post(f"{server.url}/sandbox/reset").json() == {"ok": True}
    assert app.messages == []


def test_rate_limited_post_is_retried_and_delivered_once(sandbox: tuple[SlackSandbox, RunningServer]) -> None:
    app, server = sandbox
    notifier = _notifier(server)
    second = Alert("intake:run-2", "1 order needs a person", counts={"high_risk": 1})
    started = time.monotonic()
    notifier.send(ALERT)
    notifier.send(second)  # within a second on the same channel: Slack answers 429
    assert time.monotonic() - started >= 1.0  # the client waited out Retry-After
    assert [m.text for m in app.messages] == [build_message(ALERT)["text"], build_message(second)["text"]]
    assert [(r.error, r.status) for r in app.refusals] == [("ratelimited", 429)]


def test_invalid_token_names_the_token_setting(sandbox: tuple[SlackSandbox, RunningServer]) -> None:
    app, server = sandbox
    with pytest.raises(SlackError) as caught:
        _notifier(server, token="xoxb-not-the-one").send(ALERT)
    assert caught.value.code == "invalid_auth"
    assert caught.value.setting == "CLERK_SLACK_BOT_TOKEN"
    assert "CLERK_SLACK_BOT_TOKEN" in str(caught.value)
    assert "xoxb-not-the-one" not in str(caught.value)
    assert app.messages == []


def test_unknown_channel_names_the_channel_setting() -> None:
    app = create_slack_app(token=TOKEN, channels={"#ops"})
    with serve_in_thread(app) as server:
        with pytest.raises(SlackError) as caught:
            _notifier(server, channel="#nowhere").send(ALERT)
        assert _notifier(server, channel="#ops").send(ALERT)
    assert caught.value.code == "channel_not_found"
    assert caught.value.setting == "CLERK_SLACK_CHANNEL"
    assert "CLERK_SLACK_CHANNEL" in str(caught.value) and "#nowhere" in str(caught.value)
    assert [m.channel for m in app.messages] == ["#ops"]


@pytest.mark.parametrize("fault", ["error", "malformed", "drop"])
def test_a_failed_answer_is_retried_and_delivered_once(fault: str) -> None:
    faults = Faults(**{f"{fault}_rate": 0.5}, seed=_seed_faulting_only_the_first_request(0.5))
    app = create_slack_app(token=TOKEN, faults=faults)
    with serve_in_thread(app) as server:
        ts = _notifier(server).send(ALERT)
    assert faults.injected == {fault: 1}
    assert [m.ts for m in app.messages] == [ts]


def test_a_server_that_keeps_failing_gives_up_after_the_retries() -> None:
    faults = Faults(error_rate=1.0)
    app = create_slack_app(token=TOKEN, faults=faults)
    with serve_in_thread(app) as server:
        with pytest.raises(SlackError) as caught:
            _notifier(server, max_retries=2).send(ALERT)
    assert caught.value.code.startswith("http_5")
    assert caught.value.setting is None
    assert faults.injected == {"error": 3}
    assert app.messages == []


def test_an_unreachable_api_names_the_url_setting() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    notifier = SlackNotifier(TOKEN, "#ops", f"http://127.0.0.1:{port}/api/", max_retries=1, backoff_seconds=0.01)
    with pytest.raises(SlackError) as caught:
        notifier.send(ALERT)
    assert caught.value.code == "unreachable"
    assert caught.value.setting == "CLERK_SLACK_API_URL"


def test_a_wrong_base_url_names_the_url_setting(sandbox: tuple[SlackSandbox, RunningServer]) -> None:
    _, server = sandbox
    with pytest.raises(SlackError) as caught:
        SlackNotifier(TOKEN, "#ops", f"{server.url}/not-slack/").send(ALERT)
    assert caught.value.code == "http_404"
    assert caught.value.setting == "CLERK_SLACK_API_URL"


def test_the_largest_alert_passes_the_sandbox_block_kit_checks(sandbox: tuple[SlackSandbox, RunningServer]) -> None:
    app, server = sandbox
    huge = Alert("i" * 300, "T" * 300, lines=["<&>" * 2000] * 100, counts={f"r{n}": n for n in range(99)}, link="http://x/y")
    assert _notifier(server).send(huge)
    assert len(app.messages) == 1


def test_injected_throttling_answers_like_slack() -> None:
    app = create_slack_app(token=TOKEN, faults=Faults(throttle_rate=1.0))
    with serve_in_thread(app) as server:
        response = httpx.post(
            f"{server.url}/api/chat.postMessage",
            json={"channel": "#ops", "text": "hi"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.json() == {"ok": False, "error": "ratelimited"}


@pytest.mark.parametrize(
    ("request_kwargs", "error"),
    [
        ({"data": {"channel": "#ops", "text": "hi"}}, "not_authed"),
        ({"data": {"token": "xoxb-wrong", "channel": "#ops", "text": "hi"}}, "invalid_auth"),
        ({"data": {"token": TOKEN, "channel": "ops", "text": "hi"}}, "channel_not_found"),
        ({"data": {"token": TOKEN, "channel": "#ops"}}, "no_text"),
        ({"data": {"token": TOKEN, "channel": "#ops", "blocks": "[{"}}, "invalid_blocks_format"),
        (
            {"data": {"token": TOKEN, "channel": "#ops", "blocks": '[{"type": "header", "text": {"type": "plain_text", "text": "' + "x" * 151 + '"}}]'}},
            "invalid_blocks",
        ),
        ({"content": b"{", "headers": {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}}, "invalid_json"),
    ],
)
def test_sandbox_refuses_like_slack(sandbox: tuple[SlackSandbox, RunningServer], request_kwargs: dict, error: str) -> None:
    app, server = sandbox
    response = httpx.post(f"{server.url}/api/chat.postMessage", **request_kwargs)
    assert (response.status_code, response.json()) == (200, {"ok": False, "error": error})
    assert app.messages == []


def test_sandbox_accepts_form_posts_and_auth_test(sandbox: tuple[SlackSandbox, RunningServer]) -> None:
    app, server = sandbox
    posted = httpx.post(f"{server.url}/api/chat.postMessage", data={"token": TOKEN, "channel": "C0123456789", "text": "hi"})
    assert posted.json()["ok"] and posted.json()["channel"] == "C0123456789"
    assert app.messages[0].text == "hi"
    auth = httpx.post(f"{server.url}/api/auth.test", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert auth["ok"] and auth["bot_id"]
