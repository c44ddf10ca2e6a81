"""order-intake end to end against the Shopify and Slack sandboxes, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from contextlib import ExitStack

import pytest

from domain.reasons import ALL_REASONS
from tests.flows.conftest import World, start_world
from tests.flows.state import snapshot


def personal_data(store) -> set[str]:  # type: ignore[no-untyped-def]
    """Emails, phone numbers and street lines of every customer in the seeded store."""
    found: set[str] = set()
    for customer in store.customers:
        found.update(v for v in (customer.email, customer.phone) if v)
        for address in customer.addresses:
            found.update(v for v in (address.street1, address.street2, address.phone) if v and len(v) > 5)
    return found


def run_intake() -> dict:
    from deployments.runs import run_flow

    summary, ok = run_flow("order-intake", {})
    assert ok, summary
    return summary


def assert_counts_add_up(summary: dict) -> None:
    parts = summary["created"] + summary["updated"] + summary["unchanged"] + summary["quarantined"]
    assert parts == summary["fetched"]


def test_first_run_backfills_and_reaches_every_reason(world: World) -> None:
    summary = run_intake()
    assert summary["state"] == "Completed" and summary["flow"] == "order-intake"
    assert_counts_add_up(summary)
    assert summary["created"] > 300 and summary["updated"] == 0
    assert summary["channels"]["shopify"]["fetched"] == summary["fetched"]
    missing = [code for code in ALL_REASONS if not summary["reasons"].get(code)]
    assert missing == []
    assert summary["alerts_sent"] == 1 and len(world.slack.messages) == 1
    expected = world.shop.expected_reasons()
    state = snapshot(world.database_url)
    held = {ext for ext, _ in state["holds"]}
    quarantined = {ext for _, ext, _, _ in state["quarantine"]}
    for external_id, reason in expected.items():
        assert external_id in held | quarantined, (external_id, reason)


def test_second_run_with_nothing_new_changes_nothing_and_stays_quiet(world: World) -> None:
    run_intake()
    before = snapshot(world.database_url)
    summary = run_intake()
    assert (summary["created"], summary["updated"], summary["alerts_sent"]) == (0, 0, 0)
    assert_counts_add_up(summary)
    assert len(world.slack.messages) == 1
    assert snapshot(world.database_url) == before


def test_edits_upstream_are_updates_and_new_orders_creations(world: World) -> None:
    run_intake()
    world.shop.edit(10)
    world.shop.add_orders(15)
    summary = run_intake()
    assert summary["created"] == 15
    assert 1 <= summary["updated"] <= 10
    assert_counts_add_up(summary)


def test_history_is_never_held_and_cancelled_orders_hold_no_stock(world: World) -> None:
    run_intake()
    from sqlalchemy import func, select

    from models import Order, OrderHold, StockMovement
    from models.db import unit_of_work

    with unit_of_work(world.database_url) as session:
        held_history = session.scalar(
            select(func.count()).select_from(OrderHold).join(Order, Order.id == OrderHold.order_id)
            .where(Order.lifecycle.in_(["fulfilled", "closed"]))
        )
        reserved_by_non_accepted = session.execute(
            select(Order.status, func.sum(StockMovement.reserved_delta))
            .join(StockMovement, StockMovement.order_id == Order.id)
            .where(Order.status != "accepted").group_by(Order.status)
        ).all()
    assert held_history == 0
    assert all(units == 0 for _, units in reserved_by_non_accepted)


def test_no_personal_data_reaches_slack_logs_or_artifacts(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    run_intake()
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts()
    texts = [json.dumps(m.to_json()) for m in world.slack.messages] + [caplog.text] + [json.dumps(a.data, default=str) for a in artifacts]
    secrets = personal_data(world.shop.store)
    assert secrets, "the store must have personal data to look for"
    leaked = sorted({s for s in secrets for text in texts if s and s in text})
    assert leaked == []


def _start_incremental(database_url: str) -> None:
    """A watermark far in the past makes the run page through `orders(query:)` instead of a bulk export."""
    from datetime import UTC, datetime

    from models.db import unit_of_work
    from models.intake import set_watermark

    with unit_of_work(database_url) as session:
        set_watermark(session, "shopify", datetime(2000, 1, 1, tzinfo=UTC), {})


@pytest.mark.parametrize("path", ["backfill", "incremental"])
def test_twenty_percent_faults_end_in_the_fault_free_state(path: str, database_url: str, tmp_path, use_env) -> None:  # type: ignore[no-untyped-def]
    from integrations.sandbox.faults import Faults
    from models.db import upgrade

    clean_url = f"sqlite:///{tmp_path / 'clean.db'}"
    upgrade(clean_url)
    with ExitStack() as stack:
        clean = start_world(stack, clean_url, orders=250)
        if path == "incremental":
            _start_incremental(clean_url)
        use_env(clean.env)
        run_intake()
    with ExitStack() as stack:
        faults = Faults.uniform(0.2, seed=3, timeout_seconds=1.5)
        faulty = start_world(stack, database_url, orders=250, faults=faults)
        if path == "incremental":
            _start_incremental(database_url)
        use_env(faulty.env | {"CLERK_HTTP_TIMEOUT_SECONDS": "0.5", "CLERK_HTTP_MAX_ATTEMPTS": "12"})
        summary = run_intake()
        injected = sum(faults.injected.values())
        requests = faulty.shop.stats["requests"]
    assert summary["state"] == "Completed"
    assert injected >= (5 if path == "incremental" else 1), (faults.injected, requests)
    assert injected / requests > 0.1, (faults.injected, requests)
    assert snapshot(database_url) == snapshot(clean_url)


def test_orders_held_for_stock_are_released_when_stock_arrives(world: World) -> None:
    from sqlalchemy import select

    from models import Order, OrderHold, StockMovement
    from models.db import unit_of_work
    from models.stock_store import set_on_hand

    first = run_intake()
    assert first["reasons"]["insufficient_stock"] >= 1 and first["released"] == 0
    with unit_of_work(world.database_url) as session:
        waiting = session.execute(
            select(Order.id, Order.external_id).join(OrderHold, OrderHold.order_id == Order.id)
            .where(OrderHold.reason == "insufficient_stock")
        ).all()
        skus = {s for s in session.scalars(select(StockMovement.sku).distinct())}
        set_on_hand(session, [(sku, "main", 100_000) for sku in skus], "receipt", "a big delivery")
    second = run_intake()
    assert second["released"] >= len(waiting)
    assert (second["created"], second["updated"], second["alerts_sent"]) == (0, 0, 0)
    with unit_of_work(world.database_url) as session:
        for order_id, _ in waiting:
            order = session.get(Order, order_id)
            reserved = session.scalars(select(StockMovement.reserved_delta).where(StockMovement.order_id == order_id)).all()
            assert session.scalar(select(OrderHold.id).where(OrderHold.order_id == order_id)) is None
            assert order.status == "accepted" and sum(reserved) > 0
    third = run_intake()
    assert third["released"] == 0


def test_alert_links_to_the_run_only_when_a_ui_is_configured(world: World) -> None:
    from prefect.settings import PREFECT_UI_URL, temporary_settings

    with temporary_settings(updates={PREFECT_UI_URL: "http://prefect.example:4200"}):
        run_intake()
    [message] = world.slack.messages
    assert "http://prefect.example:4200/flow-runs/flow-run/" in json.dumps(message.to_json())
    assert "None/flow-runs" not in json.dumps(message.to_json())
