"""order-intake with Shopify, WooCommerce and Magento on at once, over one seeded store.

One warehouse sells on three storefronts: the store deals its orders among them, shares
the catalog, the stock and the customers, and gives each storefront a tricky order for
every contract reason code. Clerk must pull all three in one run, reach every code from
each channel, export them side by side, and know a buyer as one customer everywhere.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from deployments.cli import main
from domain.reasons import ALL_REASONS, Hold, Quarantine
from models import Order, OrderHold, QuarantinedPayload
from models.customers import CustomerAccount, CustomerPII
from models.db import unit_of_work
from models.intake import email_key
from tests.flows.conftest import CHANNELS, World

QUARANTINE_CODES = {r.value for r in Quarantine}
HOLD_CODES = {r.value for r in Hold}
EXPORT_KEYS = ("channel", "external_id", "number", "status", "reasons", "currency", "total", "placed_at", "lines",
               "ship_to_country")
DECIMAL = re.compile(r"-?\d+\.\d{2}")


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _run_json(capsys) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    assert main(["run", "order-intake", "--json"]) == 0
    [summary] = _json_lines(capsys.readouterr().out)
    return summary


def _utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def upstream(world: World, channel: str, order: Any) -> dict[str, Any]:
    """What the storefront itself says of one order, read off the sandbox's own rendering (total as text:
    a malformed order's may be anything)."""
    app = world.apps[channel]
    if channel == "shopify":
        from integrations.sandbox.shopify.render import gid

        return {"external_id": gid("Order", order.id), "number": f"#{order.number}", "currency": order.currency,
                "total": order.total, "placed_at": order.created_at}
    if channel == "woocommerce":
        payload = app.render_order(order)
        return {"external_id": str(payload["id"]), "number": payload["number"], "currency": payload["currency"],
                "total": payload["total"], "placed_at": _utc(payload["date_created_gmt"])}
    payload = app.render(order)
    return {"external_id": str(payload["entity_id"]), "number": payload["increment_id"],
            "currency": payload["order_currency_code"], "total": repr(payload["grand_total"]),
            "placed_at": datetime.strptime(payload["created_at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)}


def _findings(database_url: str) -> tuple[dict[tuple[str, str], set[str]], dict[tuple[str, str], set[str]]]:
    """Hold reasons and quarantine reasons Clerk stored, by (channel, external id)."""
    held: dict[tuple[str, str], set[str]] = defaultdict(set)
    quarantined: dict[tuple[str, str], set[str]] = defaultdict(set)
    with unit_of_work(database_url) as session:
        for channel, external_id, reason in session.execute(
            select(Order.channel, Order.external_id, OrderHold.reason).join(OrderHold, OrderHold.order_id == Order.id)
        ):
            held[(channel, external_id)].add(reason)
        for channel, external_id, reason in session.execute(
            select(QuarantinedPayload.channel, QuarantinedPayload.external_id, QuarantinedPayload.reason)
        ):
            quarantined[(channel, external_id or "")].add(reason)
    return held, quarantined


def test_three_channels_in_one_run_reach_every_reason_from_each_and_export_side_by_side(
    all_channels_world: World, capsys  # type: ignore[no-untyped-def]
) -> None:
    world = all_channels_world
    summary = _run_json(capsys)
    assert (summary["flow"], summary["state"]) == ("order-intake", "Completed")
    assert set(summary["channels"]) == set(CHANNELS)

    held, quarantined = _findings(world.database_url)
    for channel in CHANNELS:
        counts, view = summary["channels"][channel], world.view(channel)
        assert counts["fetched"] == len(view.orders) > 200, (channel, counts)
        assert counts["created"] + counts["updated"] + counts["unchanged"] + counts["quarantined"] == counts["fetched"]
        assert (counts["updated"], counts["unchanged"]) == (0, 0), (channel, counts)

        expected = world.apps[channel].expected_reasons()
        assert set(expected.values()) == set(ALL_REASONS), f"{channel}'s storefront lacks a tricky order for some code"
        missed = {ext: reason for ext, reason in expected.items()
                  if reason not in held.get((channel, ext), set()) | quarantined.get((channel, ext), set())}
        assert missed == {}, (channel, missed)
        reached = set().union(*(reasons for (ch, _), reasons in held.items() if ch == channel),
                              *(reasons for (ch, _), reasons in quarantined.items() if ch == channel))
        assert reached == set(ALL_REASONS), (channel, sorted(set(ALL_REASONS) - reached))
        # Nothing is quarantined but the tricky payloads made for it; a hold nobody asked for
        # can only be stock (a few SKUs are tight, and three storefronts draw on them).
        assert counts["quarantined"] == sum(1 for r in expected.values() if r in QUARANTINE_CODES), (channel, counts)
        stray = {ext: reasons for (ch, ext), reasons in held.items()
                 if ch == channel and ext not in expected and reasons != {Hold.INSUFFICIENT_STOCK.value}}
        assert stray == {}, (channel, stray)
        assert counts["held"] == sum(1 for (ch, _) in held if ch == channel)

    for key in ("fetched", "created", "quarantined", "held"):
        assert summary[key] == sum(summary["channels"][c][key] for c in CHANNELS), key
    assert all(summary["reasons"][code] >= len(CHANNELS) for code in ALL_REASONS), summary["reasons"]
    assert summary["alerts_sent"] == 1 and len(world.slack.messages) == 1

    assert main(["export", "orders", "--format", "jsonl"]) == 0
    text = capsys.readouterr().out
    rows = _json_lines(text)
    assert Counter(row["channel"] for row in rows) == {c: summary["channels"][c]["created"] for c in CHANNELS}
    exported = {(row["channel"], row["external_id"]): row for row in rows}
    assert len(exported) == len(rows), "an order exported twice"
    for row in rows:
        assert all(key in row for key in EXPORT_KEYS), row
        assert "email" not in row and "ship_to" not in row
        assert row["status"] in ("accepted", "held", "cancelled", "fulfilled"), row["status"]
        assert (row["status"] == "held") == bool(row["reasons"]) and set(row["reasons"]) <= HOLD_CODES, row
        assert isinstance(row["total"], str) and DECIMAL.fullmatch(row["total"]), row["total"]
        assert row["lines"] and all({"sku", "quantity", "unit_price"} <= set(line) for line in row["lines"]), row
        assert all(isinstance(line["quantity"], int) and line["quantity"] > 0 for line in row["lines"]), row
        assert all(DECIMAL.fullmatch(line["unit_price"]) for line in row["lines"]), row
        assert row["ship_to_country"] is None or re.fullmatch(r"[A-Z]{2}", row["ship_to_country"]), row
        _utc(row["placed_at"])
    for channel in CHANNELS:
        # Each row says what the storefront says: number, currency, total and placing time.
        for order in world.view(channel).orders:
            truth = upstream(world, channel, order)
            row = exported.get((channel, truth["external_id"]))
            if row is None:
                assert order.reason in QUARANTINE_CODES, (channel, truth["external_id"], order.reason)
                continue
            assert (row["number"], row["currency"]) == (truth["number"], truth["currency"]), (channel, row)
            assert Decimal(row["total"]) == Decimal(truth["total"]).quantize(Decimal("0.01")), (channel, row, truth)
            assert _utc(row["placed_at"]) == truth["placed_at"], (channel, row, truth)
            if order.reason in HOLD_CODES:
                assert row["status"] == "held" and order.reason in row["reasons"], (channel, row)
    assert len({row["currency"] for row in rows}) > 1, "Magento's storefront sells in its buyers' currencies"
    people = {v for c in world.store.customers for v in (c.email, c.phone) if v}
    people |= {v for c in world.store.customers for a in c.addresses for v in (a.street1, a.street2) if v and len(v) > 5}
    assert sorted(p for p in people if p in text) == []

    again = _run_json(capsys)
    assert again["state"] == "Completed"
    assert (again["created"], again["updated"], again["alerts_sent"]) == (0, 0, 0), again
    for channel in CHANNELS:
        counts = again["channels"][channel]
        assert (counts["created"], counts["updated"]) == (0, 0), (channel, counts)
        assert counts["created"] + counts["updated"] + counts["unchanged"] + counts["quarantined"] == counts["fetched"]
    assert len(world.slack.messages) == 1


def _external_id(world: World, channel: str, order: Any) -> str:
    if channel == "shopify":
        from integrations.sandbox.shopify.render import gid

        return gid("Order", order.id)
    if channel == "magento":
        from integrations.sandbox.magento.render import entity_id

        return str(entity_id(order))
    return str(order.id)


def test_one_buyer_on_several_channels_is_one_customer(all_channels_world: World) -> None:
    from deployments.runs import run_flow

    world = all_channels_world
    summary, ok = run_flow("order-intake", {})
    assert ok, summary
    # Who placed what, as the store knows it (the email is the buyer's, guest or not).
    buyer = {(channel, _external_id(world, channel, order)): order.email.strip().casefold()
             for channel in CHANNELS for order in world.view(channel).orders if order.email}
    with unit_of_work(world.database_url) as session:
        stored = session.execute(select(Order.channel, Order.external_id, Order.customer_id)).all()
        accounts = session.execute(select(CustomerAccount.customer_id, CustomerAccount.channel)).all()
        pii = dict(session.execute(select(CustomerPII.customer_id, CustomerPII.email_key)).all())
    customers_of: dict[str, set[int | None]] = defaultdict(set)
    channels_of: dict[str, set[str]] = defaultdict(set)
    for channel, external_id, customer_id in stored:
        email = buyer[(channel, external_id)]
        customers_of[email].add(customer_id)
        channels_of[email].add(channel)
    shared = sorted(email for email, channels in channels_of.items() if len(channels) > 1)
    assert len(shared) >= 20, "the store should reuse customers across storefronts"
    assert any(len(channels_of[email]) == 3 for email in shared)
    split = {email: customers_of[email] for email in shared if len(customers_of[email]) != 1 or None in customers_of[email]}
    assert split == {}, f"{len(split)} buyers have orders under several customers (or none)"
    owners = Counter(next(iter(ids)) for ids in customers_of.values() if len(ids) == 1)
    assert [c for c, n in owners.items() if n > 1] == [], "two buyers merged into one customer"
    accounts_by_customer: dict[int, set[str]] = defaultdict(set)
    for customer_id, channel in accounts:
        accounts_by_customer[customer_id].add(channel)
    for email in shared:
        [customer_id] = customers_of[email]
        assert accounts_by_customer[customer_id] == channels_of[email], email
        assert pii[customer_id] == email_key(email)
