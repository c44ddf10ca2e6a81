"""sync-stock end to end on Shopify, WooCommerce and Magento: only changed counts are pushed, a
rerun pushes nothing, a count changed on a channel is told once and never overwritten, and
under faults every channel ends with the right numbers, each change written at most once."""

from __future__ import annotations

import json
from collections import Counter
from contextlib import ExitStack
from typing import Any

from sqlalchemy import select

from deployments.runs import run_flow
from integrations.sandbox.faults import Faults
from models import ChannelStock, StockMovement
from models.db import unit_of_work
from models.stock_store import set_on_hand
from models.stock_sync import available_by_sku
from tests.flows.conftest import CHANNELS, World, start_world
from tests.stock_shelf import Shelf, shelf

MAX_RUNS = 4  # a run that gives up on a channel is rerun, as the schedule would


def _sync(**params: Any) -> dict[str, Any]:
    summary, ok = run_flow("sync-stock", params)
    assert ok, summary
    return summary


def _shelves(world: World) -> dict[str, Shelf]:
    return {channel: shelf(channel, world.apps[channel]) for channel in CHANNELS}


def _count(url: str, counts: dict[str, int]) -> None:
    """A cycle count sets these SKUs' on-hand units."""
    with unit_of_work(url) as session:
        set_on_hand(session, [(sku, "main", units) for sku, units in counts.items()], "count", "test count")


def _wanted(url: str) -> dict[str, int]:
    with unit_of_work(url) as session:
        return {sku: max(units, 0) for sku, units in available_by_sku(session).items()}


def _counts(pushed: int, unchanged: int, conflicts: int = 0, behind: int = 0) -> dict[str, int]:
    return {"pushed": pushed, "unchanged": unchanged, "conflicts": conflicts, "behind": behind, "unknown": 0}


def test_changed_counts_only_a_quiet_rerun_and_a_change_made_on_a_channel_told_once(
    all_channels_world: World, database_url: str
) -> None:
    shelves = _shelves(all_channels_world)
    skus = sorted(v.sku for v in all_channels_world.store.variants)
    total = len(skus)

    first = _sync()  # Clerk's counts came from the store: every channel already shows them
    assert first["channels"] == {channel: _counts(0, total) for channel in CHANNELS}
    assert (first["pushed"], first["conflicts"], first["alerts_sent"]) == (0, 0, 0)

    a, b, c, d, e, f = skus[:6]
    on_hand = _wanted(database_url)
    _count(database_url, {a: 0, b: on_hand[b] + 5, c: on_hand[c] + 1})
    with unit_of_work(database_url) as session:  # orders claim more of D than there is: it shows 0
        session.add(StockMovement(sku=d, location="main", kind="reservation", reserved_delta=on_hand[d] + 3))
    second = _sync()
    assert second["channels"] == {channel: _counts(4, total - 4) for channel in CHANNELS}
    wanted = {a: 0, b: on_hand[b] + 5, c: on_hand[c] + 1, d: 0}
    for stock in shelves.values():
        assert sorted(stock.writes()) == sorted(wanted.items())
        assert all(stock.shown(sku) == units for sku, units in wanted.items())

    third = _sync()
    assert third["channels"] == {channel: _counts(0, total) for channel in CHANNELS}
    assert all(len(stock.writes()) == 4 for stock in shelves.values()), "nothing written again"

    shelves["shopify"].edit(e, 77)  # a merchant recounts E in Shopify's admin
    _count(database_url, {e: on_hand[e] + 2, f: on_hand[f] + 2})
    fourth = _sync()
    assert fourth["channels"] == {"shopify": _counts(1, total - 2, conflicts=1),
                                  "woocommerce": _counts(2, total - 2), "magento": _counts(2, total - 2)}
    assert (fourth["conflicts"], fourth["alerts_sent"]) == (1, 1)
    assert shelves["shopify"].shown(e) == 77 and shelves["shopify"].written(e) == []
    [message] = all_channels_world.slack.messages
    assert f"{e} on shopify: the channel shows 77" in json.dumps(message.to_json())

    fifth = _sync()  # still there, looked at again, not told twice
    assert (fifth["channels"]["shopify"], fifth["alerts_sent"]) == (_counts(0, total - 1, conflicts=1), 0)
    assert len(all_channels_world.slack.messages) == 1

    _count(database_url, {e: 77})  # the clerks take Shopify's count: the two sides agree again
    sixth = _sync()
    assert sixth["channels"] == {"shopify": _counts(0, total), "woocommerce": _counts(1, total - 1),
                                 "magento": _counts(1, total - 1)}
    with unit_of_work(database_url) as session:
        assert session.scalars(select(ChannelStock).where(ChannelStock.conflict_seen.is_not(None))).all() == []
        rows = session.scalars(select(ChannelStock).where(ChannelStock.sku == e)).all()
        assert {row.channel: row.pushed_available for row in rows} == {channel: 77 for channel in CHANNELS}


def _sell_on_shopify(url: str, sku: str, units: int) -> None:
    """What intake stores for a Shopify order it has read: the order, its line, its reservation."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from models import Order, OrderLine

    now = datetime.now(UTC)
    with unit_of_work(url) as session:
        order = Order(channel="shopify", external_id=f"gid://shopify/Order/{sku}", number=f"#S-{sku}", status="accepted",
                      lifecycle="open", currency="USD", total=Decimal(0), shipping=Decimal(0), tax=Decimal(0),
                      discounts=Decimal(0), taxes_included=False, requires_shipping=True, risk="low", placed_at=now,
                      upstream_updated_at=now, fingerprint="-")
        session.add(order)
        session.flush()
        session.add(OrderLine(order_id=order.id, position=0, sku=sku, title=sku, quantity=units, unit_price=Decimal(1),
                              discount=Decimal(0)))
        session.add(StockMovement(sku=sku, location="main", kind="reservation", reserved_delta=units, order_id=order.id))


def test_a_channel_selling_its_own_stock_is_no_conflict(all_channels_world: World, database_url: str) -> None:
    shelves = _shelves(all_channels_world)
    total = len(all_channels_world.store.variants)
    sku = sorted(v.sku for v in all_channels_world.store.variants)[0]
    _count(database_url, {sku: 20})
    assert _sync()["pushed"] == 3
    shelves["shopify"].edit(sku, 18)  # Shopify sold two and lowered its count; intake has not read the order yet
    _count(database_url, {sku: 25})  # meanwhile a delivery came in
    behind = _sync()
    assert behind["channels"]["shopify"] == _counts(0, total - 1, behind=1) and behind["alerts_sent"] == 0
    assert shelves["shopify"].shown(sku) == 18, "not overwritten while Clerk has not read the sale"
    _sell_on_shopify(database_url, sku, 2)  # intake reads the order: 25 on hand, 2 reserved
    caught_up = _sync()
    assert caught_up["channels"]["shopify"] == _counts(1, total - 1) and caught_up["conflicts"] == 0
    assert {channel: stock.shown(sku) for channel, stock in shelves.items()} == {channel: 23 for channel in CHANNELS}
    assert caught_up["alerts_sent"] == 0 and all_channels_world.slack.messages == []


def _sync_until_completed(**params: Any) -> list[dict[str, Any]]:
    """Runs the sync until one run completes; every run's summary."""
    summaries = []
    for _ in range(MAX_RUNS):
        summary, ok = run_flow("sync-stock", params)
        summaries.append(summary)
        if ok:
            return summaries
    raise AssertionError(f"sync-stock did not complete in {MAX_RUNS} runs: {summaries}")


def _lose_write_answers(world: World, count: int) -> None:
    world.apps["shopify"].write_backs.lose_write_responses(count)
    world.apps["woocommerce"].drop_next_writes(count)
    world.apps["magento"].lose_write_responses(count)


def test_under_faults_every_channel_ends_right_and_each_change_is_written_at_most_once(
    database_url: str, use_env  # type: ignore[no-untyped-def]
) -> None:
    # A timed-out write lands 1.2 s after it was sent: after the client gave up (1 s), well before it
    # has waited as long again and reads the count back.
    faults = {channel: Faults(error_rate=0.05, timeout_rate=0.02, throttle_rate=0.04, malformed_rate=0.03,
                              drop_rate=0.03, timeout_seconds=1.2, seed=7 + n) for n, channel in enumerate(CHANNELS)}
    with ExitStack() as stack:
        world = start_world(stack, database_url, orders=40, channels=CHANNELS, faults=faults)
        use_env(world.env | {"CLERK_HTTP_MAX_ATTEMPTS": "12"})
        shelves = _shelves(world)
        skus = sorted(v.sku for v in world.store.variants)
        first_counts = {sku: units + 7 + n % 5 for n, (sku, units) in enumerate(sorted(_wanted(database_url).items()))}
        _count(database_url, first_counts)
        _lose_write_answers(world, 2)
        _sync_until_completed(batch_size=10)

        recounted = {sku: 0 if n % 2 else first_counts[sku] + 11 for n, sku in enumerate(skus[::9])}
        _count(database_url, recounted)
        _lose_write_answers(world, 2)
        last = _sync_until_completed(batch_size=10)[-1]
        wanted = _wanted(database_url)
        injected = {channel: sum(faults[channel].injected.values()) for channel in CHANNELS}
        answers_left = (world.apps["shopify"].write_backs._lose, world.apps["woocommerce"]._drop_writes,
                        world.apps["magento"].lost_responses)

    assert answers_left == (0, 0, 0), "every answer meant to be lost was lost"
    assert all(injected[channel] >= 5 for channel in CHANNELS), injected
    assert last["conflicts"] == 0
    for channel, stock in shelves.items():
        assert {sku: stock.shown(sku) for sku in skus} == wanted, channel
        changes = Counter(sku for sku, _ in stock.writes())
        assert changes == Counter({sku: 2 if sku in recounted else 1 for sku in skus}), channel
        assert [stock.written(sku)[-1] for sku in skus] == [wanted[sku] for sku in skus]
