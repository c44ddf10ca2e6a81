"""`clerk import orders`: a marketplace file taken in exactly as order intake takes a channel's orders."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import models
from deployments.cli import main
from domain.orders import Lifecycle
from domain.reasons import ALL_REASONS, Quarantine
from integrations.sandbox.store import Order, Store, StoreSpec, generate_store
from models.db import unit_of_work
from models.intake import set_watermark, watermark
from models.orders import QuarantinedPayload
from tests.flows.state import seed_catalog_and_stock, snapshot

CHANNEL = "etsy"
COLUMNS = ["order_id", "order_number", "placed_at", "status", "currency", "sku", "title", "quantity", "unit_price",
           "line_discount", "shipping", "tax", "order_total", "taxes_included", "risk", "email", "customer_id",
           "phone", "ship_name", "ship_street1", "ship_street2", "ship_city", "ship_region", "ship_postal_code",
           "ship_country"]
SHIP_TO = {"ship_name": "name", "ship_street1": "street1", "ship_street2": "street2", "ship_city": "city",
           "ship_region": "province_code", "ship_postal_code": "postal_code", "ship_country": "country"}
STATUS_WORDS = {Lifecycle.OPEN: ("unshipped", "Paid", "pending"), Lifecycle.FULFILLED: ("shipped", "Delivered"),
                Lifecycle.CLOSED: ("closed", "refunded"), Lifecycle.CANCELLED: ("cancelled", "canceled")}


def _order_cells(order: Order, n: int) -> dict[str, str]:
    address, customer = order.ship_to, order.customer
    amounts = {"shipping": order.shipping, "tax": order.tax}
    if order.reason == Quarantine.MALFORMED:
        # A blank shipping or tax cell reads as zero in a file: write the unreadable kind of bad amount instead.
        amounts = {name: value or "N/A" for name, value in amounts.items()}
    placed = order.processed_at.astimezone(UTC)
    return {
        "order_id": str(order.id), "order_number": f"#{order.number}",
        # Half the file writes naive UTC times, as many exports do.
        "placed_at": placed.strftime("%Y-%m-%d %H:%M:%S") if n % 2 else placed.isoformat(),
        "status": STATUS_WORDS[order.lifecycle][n % len(STATUS_WORDS[order.lifecycle])],
        "currency": order.currency, **amounts, "order_total": order.total,
        "taxes_included": "yes" if order.taxes_included else "no", "risk": order.risk.value,
        "email": order.email or "", "customer_id": str(customer.id) if customer else "", "phone": order.phone or "",
        **{column: (getattr(address, attribute) if address else None) or "" for column, attribute in SHIP_TO.items()},
    }


def _rows(order: Order, n: int) -> list[dict[str, str]]:
    """One row a line (one without a line for an order that has none); odd orders say order fields once."""
    head = _order_cells(order, n)
    lines = [{"sku": line.sku or "", "title": line.title, "quantity": str(line.quantity),
              "unit_price": line.unit_price, "line_discount": line.discount} for line in order.lines] or [{}]
    rows = [head | lines[0]]
    blank = dict.fromkeys(head, "") | {"order_id": head["order_id"]}
    rows += [(blank if n % 2 else head) | line for line in lines[1:]]
    return rows


def write_orders_file(path: Path, store: Store) -> dict[str, int]:
    """The store's orders as a marketplace export, every order's rows dealt out through the file; bad rows
    last. Returns the bad rows' lines by what is wrong with them."""
    per_order = [_rows(order, n) for n, order in enumerate(store.orders)]
    rows = [rows[depth] for depth in range(max(map(len, per_order))) for rows in per_order if depth < len(rows)]
    template = _rows(store.orders[0], 0)[0] | {"sku": store.variants[0].sku, "quantity": "1",
                                                "unit_price": str(store.variants[0].price)}
    bad = {
        "no order id": template | {"order_id": ""},
        "quantity two": template | {"order_id": "BAD-TWO", "quantity": "two"},
        "half a unit": template | {"order_id": "BAD-HALF", "quantity": "1.5"},
        "first currency": template | {"order_id": "BAD-CURRENCY", "currency": "USD"},
        "second currency": template | {"order_id": "BAD-CURRENCY", "currency": "EUR"},
    }
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows + list(bad.values()))
    first_bad = len(rows) + 2  # the header is line 1
    return {what: first_bad + i for i, what in enumerate(bad)}


@pytest.fixture
def slack(use_env, database_url: str) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    from integrations.sandbox.server import serve_in_thread
    from integrations.sandbox.slack import create_slack_app

    app = create_slack_app(token="xoxb-test")
    with ExitStack() as stack:
        server = stack.enter_context(serve_in_thread(app))
        use_env({"CLERK_DATABASE_URL": database_url, "CLERK_SLACK_API_URL": f"{server.url}/api/",
                 "CLERK_SLACK_BOT_TOKEN": "xoxb-test", "CLERK_SLACK_CHANNEL": "#clerk-alerts"})
        yield app


def _quarantine(database_url: str) -> dict[str | None, list[tuple[str, str]]]:
    found: dict[str | None, list[tuple[str, str]]] = {}
    with unit_of_work(database_url) as session:
        for row in session.scalars(select(QuarantinedPayload).where(QuarantinedPayload.channel == CHANNEL)):
            found.setdefault(row.external_id, []).append((row.reason, row.detail))
    return found


def test_every_reason_code_is_reached_through_a_file_and_a_second_import_changes_nothing(
    database_url: str, slack: Any, tmp_path: Path
) -> None:
    from flows.order_import import import_orders
    from integrations.wiring import order_source

    # Three weeks of orders: open, fulfilled, closed and cancelled ones, and a tricky order for every reason.
    store = generate_store(StoreSpec(seed=6, orders=200, days=20, huge_orders=1))
    seed_catalog_and_stock(database_url, store)
    orders_file = tmp_path / "etsy-orders.csv"
    bad = write_orders_file(orders_file, store)
    synced = datetime(2026, 10, 30, 8, 0, tzinfo=UTC)
    with unit_of_work(database_url) as session:  # a real channel of the same name, part-way through a backfill
        set_watermark(session, CHANNEL, synced, {"backfill": {"job_id": "gid://bulk/1", "done": 5000}})

    summary = import_orders(path=str(orders_file), channel=CHANNEL)

    assert summary["fetched"] == len(store.orders) + 4  # BAD-TWO, BAD-HALF, BAD-CURRENCY and the row without an id
    assert summary["created"] + summary["updated"] + summary["unchanged"] + summary["quarantined"] == summary["fetched"]
    assert summary["channels"] == {CHANNEL: {k: summary[k] for k in summary["channels"][CHANNEL]}}
    assert all(summary["reasons"][code] >= 1 for code in ALL_REASONS), summary["reasons"]
    assert summary["alerts_sent"] == 1 and len(slack.messages) == 1

    state = snapshot(database_url)
    statuses = {external_id: status for (channel, external_id), (status, _) in state["orders"].items()}
    holds: dict[str, set[str]] = {}
    for external_id, reason in state["holds"]:
        holds.setdefault(external_id, set()).add(reason)
    quarantined = _quarantine(database_url)
    for order in store.orders:
        key = str(order.id)
        if order.reason in {q.value for q in Quarantine}:
            assert [reason for reason, _ in quarantined[key]] == [order.reason], (key, quarantined.get(key))
        elif order.reason:
            assert statuses[key] == "held" and order.reason in holds[key], (key, order.reason, holds.get(key))
        elif order.lifecycle is Lifecycle.OPEN and order.requires_shipping:
            assert statuses[key] == "accepted", (key, holds.get(key))
        elif order.lifecycle is Lifecycle.CANCELLED:
            assert statuses[key] == "cancelled"
        elif order.lifecycle is not Lifecycle.OPEN:
            assert statuses[key] == "fulfilled"
    assert set(statuses.values()) == {"accepted", "held", "cancelled", "fulfilled"}
    assert summary["held"] == sum(1 for status in statuses.values() if status == "held")

    assert quarantined[None] == [("malformed", f"line {bad['no order id']}: order_id is empty")]
    assert quarantined["BAD-TWO"] == [("malformed", f"line {bad['quantity two']}: quantity 'two' is not a number")]
    assert [reason for reason, _ in quarantined["BAD-HALF"]] == ["invalid_quantity"]
    assert quarantined["BAD-CURRENCY"] == [("malformed", f"lines {bad['first currency']} and "
                                                         f"{bad['second currency']}: currency differs ('USD', 'EUR')")]
    problems = {(p["line"], p["reason"]) for p in summary["problems"]}
    assert {(bad["no order id"], "malformed"), (bad["quantity two"], "malformed"), (bad["half a unit"], "invalid_quantity"),
            (bad["first currency"], "malformed")} <= problems
    assert len([p for p in summary["problems"] if p["reason"] in {q.value for q in Quarantine}]) == summary["quarantined"]

    again = import_orders(path=str(orders_file), channel=CHANNEL)
    assert (again["created"], again["updated"], again["alerts_sent"]) == (0, 0, 0)
    assert again["unchanged"] == summary["created"] and again["quarantined"] == summary["quarantined"]
    assert snapshot(database_url) == state and len(slack.messages) == 1

    with unit_of_work(database_url) as session:
        row = watermark(session, CHANNEL)
        assert row is not None and row.synced_through is not None
        through = row.synced_through if row.synced_through.tzinfo else row.synced_through.replace(tzinfo=UTC)
        assert (through, row.state) == (synced, {"backfill": {"job_id": "gid://bulk/1", "done": 5000}})
    with pytest.raises(ValueError, match="unknown channel"):
        order_source(CHANNEL)  # the file served this channel for the run only


def test_the_command_prints_bad_lines_on_stderr_and_one_summary_on_stdout(
    database_url: str, use_env, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from tests.unit.test_marketplace_csv_mapping import AMAZON_HEADER, AMAZON_ROWS

    use_env({"CLERK_DATABASE_URL": database_url})
    report = tmp_path / "amazon-orders.txt"
    broken = AMAZON_ROWS[3].replace("\t1\tUSD\t19.00", "\ttwo\tUSD\t19.00")
    report.write_text("\n".join([AMAZON_HEADER, *AMAZON_ROWS[:3], broken, *AMAZON_ROWS[4:]]) + "\n")

    assert main(["import", "orders", str(report), "--channel", "amazon", "--mapping", "amazon", "--json"]) == 0
    captured = capsys.readouterr()
    [summary] = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
    assert summary["flow"] == "import-orders" and summary["state"] == "Completed"
    assert (summary["fetched"], summary["created"], summary["quarantined"]) == (3, 2, 1)
    assert summary["held"] == 2 and summary["reasons"]["unknown_sku"] == 2  # nothing is in this catalog
    problems = [line for line in captured.err.splitlines() if line.startswith(f"{report}:")]
    assert f"{report}:5: malformed: line 5: quantity 'two' is not a number" in problems
    assert f"{report}:2: unknown_sku: order 114-3941689-8772232 held" in problems
    assert "x9k2@" not in captured.err + captured.out

    assert main(["import", "orders", str(report), "--channel", "amazon"]) == 2  # the generic mapping finds no order_id
    assert "no order id column" in capsys.readouterr().err
    assert main(["import", "orders", str(report), "--mapping", "amazon"]) == 2
    assert "--channel" in capsys.readouterr().err


def _shipped_orders_file(path: Path, orders: int, lines: int) -> int:
    """`orders` shipped orders of `lines` rows each, and order SPLIT with one row before them and one after,
    then one bad row (order BAD). Returns the bad row's line."""
    head = {"placed_at": "2026-10-01T10:00:00+00:00", "status": "shipped", "currency": "USD", "title": "Mug",
            "unit_price": "12.50", "quantity": "1", "shipping": "4.00", "tax": "0", "ship_name": "Ann Lee",
            "ship_street1": "1 Main St", "ship_city": "Portland", "ship_postal_code": "97201", "ship_country": "US"}
    total = str(Decimal("12.50") * lines + 4)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerow(head | {"order_id": "SPLIT", "sku": "MUG-0", "order_total": "29.00"})
        for n in range(orders):
            writer.writerows(head | {"order_id": f"L-{n}", "order_number": f"#{n}", "sku": f"MUG-{line}",
                                     "order_total": total} for line in range(lines))
        writer.writerow(head | {"order_id": "SPLIT", "sku": "MUG-1"})
        writer.writerow(head | {"order_id": "BAD", "sku": "MUG-0", "quantity": "two", "order_total": "16.50"})
    return orders * lines + 4


def test_an_import_holds_a_batch_of_the_file_never_the_whole_file(use_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import tracemalloc

    from flows.order_import import import_orders
    from integrations.marketplace_csv import OrderFile, OrderMapping
    from models.db import upgrade

    # Memory is the reader's and the flow's, whatever the database: SQLite only keeps this test short.
    database_url = f"sqlite:///{tmp_path / 'clerk.db'}"
    upgrade(database_url)
    config = tmp_path / "clerk.toml"
    config.write_text("[intake]\nbatch_size = 50\n")
    use_env({"CLERK_DATABASE_URL": database_url, "CLERK_CONFIG": str(config)})
    orders_file = tmp_path / "orders.csv"
    bad_line = _shipped_orders_file(orders_file, 500, 20)  # 10,003 rows
    warm_up = tmp_path / "small.csv"
    _shipped_orders_file(warm_up, 10, 2)
    import_orders(path=str(warm_up), channel="warm-up")  # what importing loads once per process is not the file's

    tracemalloc.start()
    try:
        # The baseline: every order's rows held at once, as the importer used to read the file.
        whole = list(OrderFile(orders_file, CHANNEL, OrderMapping()).payloads)
        held_whole = tracemalloc.get_traced_memory()[1]
        assert len(whole) == 502 and sum(len(payload["rows"]) for payload in whole) == 10_003
        del whole
        tracemalloc.reset_peak()
        summary = import_orders(path=str(orders_file), channel=CHANNEL)
        imported = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert (summary["fetched"], summary["created"], summary["quarantined"], summary["held"]) == (502, 501, 1, 0)
    assert [(p["line"], p["reason"], p["order_id"]) for p in summary["problems"]] == [(bad_line, "malformed", "BAD")]
    with unit_of_work(database_url) as session:
        split = select(models.OrderLine.sku).join(models.Order).where(
            models.Order.channel == CHANNEL, models.Order.external_id == "SPLIT")
        assert sorted(session.scalars(split)) == ["MUG-0", "MUG-1"]  # the file's first row and its last but one
    # A batch is 50 of the 502 orders (about 30% of the whole file's memory once checked, decided and stored);
    # an import that held the file would peak above the file itself.
    assert imported < held_whole / 2, (imported, held_whole)
