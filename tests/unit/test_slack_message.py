"""build_message (pure), LogNotifier and build_notifier."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from domain.redact import contains_pii
from integrations.protocols import Alert
from integrations.settings import Settings
from integrations.slack import LogNotifier, SlackError, SlackNotifier, build_message, build_notifier

PII_ALERT = Alert(
    incident="intake:jane@example.com",
    title="Order for jane@example.com held",
    lines=[
        "#1042 unknown_sku SKU-00012: ship to 221B Baker Street, call +44 20 7946 0958",
        "#1043 price_mismatch: customer j.doe@mail.example.org, (503) 555-0100",
        "#1044 incomplete_address: Hauptstraße 5, 10115 Berlin",
    ],
    counts={"unknown_sku": 1, "price_mismatch": 1, "incomplete_address": 1},
    link="http://127.0.0.1:4200/runs/flow-run/3f2a1b4c-1234-5678-9abc-def012345678?tel=+15035550100",
)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _blocks_of(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [b for b in message["blocks"] if b["type"] == kind]


def test_header_carries_title_and_severity() -> None:
    message = build_message(Alert("i", "3 orders need a person", severity="error"))
    assert message["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": ":rotating_light: 3 orders need a person", "emoji": True},
    }


def test_counts_are_fields_largest_first_and_in_the_fallback() -> None:
    message = build_message(Alert("i", "Holds", counts={"price_mismatch": 1, "unknown_sku": 3, "high_risk": 1}))
    fields = [f["text"] for b in _blocks_of(message, "section") for f in b.get("fields", [])]
    assert fields == ["unknown_sku: *3*", "high_risk: *1*", "price_mismatch: *1*"]
    assert message["text"] == "Holds: 3 unknown_sku, 1 high_risk, 1 price_mismatch"


def test_lines_are_listed() -> None:
    message = build_message(Alert("i", "Holds", lines=["#1042 unknown_sku", "#1043 high_risk"]))
    texts = [b["text"]["text"] for b in _blocks_of(message, "section")]
    assert texts == ["• #1042 unknown_sku\n• #1043 high_risk"]


def test_link_to_the_flow_run_is_in_the_context() -> None:
    message = build_message(Alert("intake-2024-05-01", "Holds", link="http://prefect.local/runs/flow-run/abc?a=1&b=2"))
    (context,) = _blocks_of(message, "context")
    texts = [e["text"] for e in context["elements"]]
    assert "<http://prefect.local/runs/flow-run/abc?a=1&amp;b=2|Open the flow run>" in texts
    assert any("intake-2024-05-01" in t for t in texts)


def test_no_link_no_link_element() -> None:
    (context,) = _blocks_of(build_message(Alert("i", "Holds")), "context")
    assert not any("<" in e["text"] for e in context["elements"])
    assert _blocks_of(build_message(Alert("i", "Holds")), "section") == []


def test_no_personal_data_leaves_even_when_the_alert_carries_it() -> None:
    message = build_message(PII_ALERT)
    leaked = [s for s in _strings(message) if contains_pii(s)]
    assert leaked == []
    dumped = json.dumps(message, ensure_ascii=False)
    for secret in ("jane@example.com", "Baker Street", "7946 0958", "555-0100", "Hauptstraße 5", "15035550100"):
        assert secret not in dumped
    # what clerks need survives
    for kept in ("#1042", "SKU-00012", "unknown_sku", "10115 Berlin", "3f2a1b4c-1234-5678-9abc-def012345678"):
        assert kept in dumped


def test_mentions_and_links_in_order_text_are_escaped() -> None:
    message = build_message(Alert("i", "Note <!channel>", lines=["gift note: <!here> & <http://evil|click>"]))
    (section,) = _blocks_of(message, "section")
    assert section["text"]["text"] == "• gift note: &lt;!here&gt; &amp; &lt;http://evil|click&gt;"
    assert "<!channel>" not in message["text"]


def test_a_huge_alert_stays_within_block_kit_limits() -> None:
    alert = Alert(
        "i" * 500,
        "T" * 500,
        lines=[f"#{n} " + "&" * 4000 for n in range(500)],
        counts={f"reason_{n}": n for n in range(100)},
        link="http://x/" + "y" * 2000,
    )
    message = build_message(alert)
    blocks = message["blocks"]
    assert len(blocks) <= 50
    assert len(message["text"]) <= 3000
    assert len(blocks[0]["text"]["text"]) <= 150
    for block in _blocks_of(message, "section"):
        assert len(block.get("text", {}).get("text", "")) <= 3000
        assert len(block.get("fields", [])) <= 10
        assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
    dumped = json.dumps(message, ensure_ascii=False)
    assert "• #0 &amp;&amp;" in dumped  # clipped lines keep their start
    assert "…and 480 more" in dumped
    assert "other: *" in dumped  # the smallest counts are summed, not dropped  # the smallest counts are summed, not dropped


def test_log_notifier_logs_redacted_and_returns_no_reference(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="clerk.alerts"):
        assert LogNotifier().send(PII_ALERT) is None
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "unknown_sku: 1" in record.getMessage()
    assert "#1042" in record.getMessage()
    assert not contains_pii(record.getMessage())


def _settings(**values: Any) -> Settings:
    base = {"slack_bot_token": None, "slack_channel": None, "_env_file": None}
    return Settings(**{**base, **values})


def test_build_notifier_logs_when_slack_is_unset() -> None:
    assert isinstance(build_notifier(_settings()), LogNotifier)


def test_build_notifier_uses_slack_when_configured() -> None:
    notifier = build_notifier(_settings(slack_bot_token="xoxb-1", slack_channel="#ops", slack_api_url="http://h/api/"))
    assert isinstance(notifier, SlackNotifier)
    assert (notifier.channel, notifier.base_url) == ("#ops", "http://h/api/")


@pytest.mark.parametrize(
    ("values", "missing"),
    [({"slack_bot_token": "xoxb-1"}, "CLERK_SLACK_CHANNEL"), ({"slack_channel": "#ops"}, "CLERK_SLACK_BOT_TOKEN")],
)
def test_build_notifier_refuses_half_a_configuration(values: dict[str, str], missing: str) -> None:
    with pytest.raises(SlackError) as caught:
        build_notifier(_settings(**values))
    assert caught.value.setting == missing
    assert missing in str(caught.value)
