"""ship-orders end to end: one label per order at the carrier, one fulfillment per order on its
channel, papers printed, bad orders held with a named reason and nothing bought for them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from deployments.runs import run_flow
from integrations.sandbox.easypost import EasyPostSandbox, create_easypost_app
from integrations.sandbox.faults import Faults
from integrations.sandbox.server import serve_in_thread
from models import Order, OrderAddress, OrderHold, Shipment, SideEffect, Variant
from models.db import unit_of_work
from models.exports import EXPORTS
from tests.flows.conftest import CHANNELS, World, start_world
from tests.flows.state import rows_in
from tests.integration.test_order_writers import _woo_kind

ROOT = Path(__file__).resolve().parents[2]
KINDS = {"shopify": "fulfillment", "magento": "shipment"}


class Depot:
    """A three-channel store after intake, an EasyPost sandbox, and Clerk's shipping settings."""

    def __init__(self, world: World, carrier: EasyPostSandbox, url: str, env: dict[str, str]):
        self.world, self.carrier, self.url, self.env = world, carrier, url, env

    def fulfillments(self, channel: str) -> int:
        app = self.world.apps[channel]
        if channel == "shopify":
            return sum(w["kind"] == "fulfillment" for w in app.write_backs.writes)
        if channel == "magento":
            return sum(w["kind"] == "shipment" for w in app.writes)
        return sum(_woo_kind(m, p) == "status" for m, p, _ in app.writes)


def _open_a_depot(stack: ExitStack, database_url: str, tmp_path: Path, use_env: Any, faults: Faults | None = None) -> Depot:
    world = start_world(stack, database_url, orders=30, channels=CHANNELS)
    for app in world.apps.values():
        app.add_orders(6)  # today's orders: open, waiting for labels
    config = tmp_path / "clerk.toml"
    config.write_text(f'[shipping]\nlabels_dir = "{tmp_path / "labels"}"\ndocuments_dir = "{tmp_path / "papers"}"\n'
                      'batch_size = 10\n')
    use_env(world.env | {"CLERK_CONFIG": str(config)})
    summary, ok = run_flow("order-intake", {})
    assert ok, summary
    carrier = create_easypost_app(faults=faults)
    server = stack.enter_context(serve_in_thread(carrier))
    env = world.env | {"CLERK_CONFIG": str(config), "CLERK_CARRIER": "easypost", "CLERK_EASYPOST_API_URL": server.url,
                       "CLERK_EASYPOST_API_KEY": carrier.api_key}
    use_env(env)
    return Depot(world, carrier, database_url, env)


@pytest.fixture
def depot(database_url: str, tmp_path: Path, use_env: Any) -> Iterator[Depot]:
    with ExitStack() as stack:
        yield _open_a_depot(stack, database_url, tmp_path, use_env)


def _ship() -> dict[str, Any]:
    summary, ok = run_flow("ship-orders", {})
    assert ok, summary
    return summary


def _shipped(url: str) -> dict[int, str]:
    with unit_of_work(url) as session:
        return dict(session.execute(select(Shipment.order_id, Shipment.label_key)).all())


def _ready(url: str) -> int:
    with unit_of_work(url) as session:
        return len(session.scalars(select(Order.id).where(Order.status == "accepted", Order.requires_shipping.is_(True),
                                                          Order.lifecycle == "open")).all())


def _held(url: str) -> dict[int, list[str]]:
    with unit_of_work(url) as session:
        found: dict[int, list[str]] = {}
        for order_id, reason in session.execute(
            select(OrderHold.order_id, OrderHold.reason).join(Order, Order.id == OrderHold.order_id)
            .where(Order.status == "held")
        ):
            found.setdefault(order_id, []).append(reason)
        return found


def test_every_ready_order_gets_one_label_one_fulfillment_and_its_papers(depot: Depot) -> None:
    with unit_of_work(depot.url) as session:
        ready = set(session.scalars(select(Order.id).where(Order.status == "accepted", Order.lifecycle == "open",
                                                            Order.requires_shipping.is_(True))))
    held_before = set(_held(depot.url))
    assert len(ready) >= 10
    runs = [_ship() for _ in range(2)]  # a batch the gate stopped goes on the next run, without its bad orders
    shipped = _shipped(depot.url)
    newly_held = {order_id: reasons for order_id, reasons in _held(depot.url).items() if order_id not in held_before}
    assert set(shipped) | set(newly_held) == ready and not set(shipped) & set(newly_held)
    assert all(set(reasons) <= {"impossible_weight", "duplicate_order", "incomplete_address", "missing_weight"}
               for reasons in newly_held.values())
    assert sum(run["labels_bought"] for run in runs) == len(shipped) == sum(run["fulfillments_written"] for run in runs)
    assert runs[0]["orders_considered"] == len(ready)
    assert all(depot.carrier.labels_bought(key) == 1 for key in shipped.values())
    with unit_of_work(depot.url) as session:
        statuses = set(session.scalars(select(Order.status).where(Order.id.in_(list(shipped)))))
        paths = list(session.scalars(select(Shipment.label_path)))
        by_channel: dict[str, int] = {}
        for channel, in session.execute(select(Order.channel).join(Shipment, Shipment.order_id == Order.id)):
            by_channel[channel] = by_channel.get(channel, 0) + 1
    assert statuses == {"fulfilled"}
    assert all(path and Path(path).read_bytes()[:4] in (b"%PDF", b"\x89PNG") for path in paths)
    assert {channel: depot.fulfillments(channel) for channel in CHANNELS} == {c: by_channel.get(c, 0) for c in CHANNELS}
    papers = [Path(p) for run in runs for p in run["documents"]]
    assert any(p.name == "packing-slips.pdf" and p.read_bytes().startswith(b"%PDF") for p in papers)
    _papers_carry_every_shipped_order(depot.url, papers, set(shipped))

    with unit_of_work(depot.url) as session:
        exported = list(EXPORTS["shipments"](session))
    assert len(exported) == len(shipped) and {row["status"] for row in exported} == {"pre_transit"}
    assert all(row["tracking_number"] and row["label_cost"] and row["late"] is False for row in exported)

    buys = depot.carrier.stats["buy_requests"]
    again = _ship()
    assert (again["orders_considered"], again["labels_bought"], again["fulfillments_written"]) == (0, 0, 0)
    assert depot.carrier.stats["buy_requests"] == buys


def _papers_carry_every_shipped_order(url: str, papers: list[Path], shipped: set[int]) -> None:
    """A packing slip per shipped order (its number on it) and the order on a pick list; every page renders."""
    if not (shutil.which("pdftotext") and shutil.which("pdftoppm")):
        return
    with unit_of_work(url) as session:
        numbers = set(session.scalars(select(Order.number).where(Order.id.in_(list(shipped)))))
    slip_pages, picked = [], ""
    for path in papers:
        text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                              text=True).stdout
        pages = [page for page in text.split("\f") if page.strip()]
        if path.name == "packing-slips.pdf":
            slip_pages += pages
        else:
            picked += text
        rendered = subprocess.run(["pdftoppm", "-r", "15", "-png", str(path), str(path.with_suffix(""))],
                                  check=True, capture_output=True)
        assert rendered.returncode == 0 and len(list(path.parent.glob(f"{path.stem}-*.png"))) == len(pages)
    on_slips = [next((n for n in numbers if f"Order {n} (" in page), None) for page in slip_pages]
    assert sorted(n for n in on_slips if n) == sorted(numbers)  # one slip page each (no slip runs over here)
    assert all(number in picked for number in numbers)


def test_bad_orders_are_held_with_a_named_reason_and_nothing_is_bought_for_them(depot: Depot) -> None:
    from models import OrderLine

    with unit_of_work(depot.url) as session:
        no_weight, bad_address = session.scalars(
            select(Order.id).where(Order.status == "accepted", Order.lifecycle == "open", Order.requires_shipping.is_(True))
            .order_by(Order.id.desc()).limit(2))
        weightless = session.scalars(select(OrderLine.sku).where(OrderLine.order_id == no_weight)).first()
        session.execute(update(Variant).where(Variant.sku == weightless).values(weight_grams=None))
        session.execute(update(OrderAddress).where(OrderAddress.order_id == bad_address).values(postal_code="00000"))
    runs = [_ship() for _ in range(2)]  # the second, in case a batch was stopped by the gate
    with unit_of_work(depot.url) as session:
        holds = {(h.order_id, h.reason): h.detail for h in session.scalars(select(OrderHold))}
        shipped = set(session.scalars(select(Shipment.order_id)))
    assert weightless in holds[(no_weight, "missing_weight")]
    assert "00000" not in holds[(bad_address, "incomplete_address")] and holds[(bad_address, "incomplete_address")]
    assert not {no_weight, bad_address} & shipped
    assert depot.carrier.labels_bought(f"label:{no_weight}:1") == depot.carrier.labels_bought(f"label:{bad_address}:1") == 0
    assert sum(run["reasons"].get("incomplete_address", 0) for run in runs) >= 1
    assert runs[0]["alerts_sent"] >= 1

    with unit_of_work(depot.url) as session:  # the clerk adds the weight: the order goes on the next run
        session.execute(update(Variant).where(Variant.sku == weightless).values(weight_grams=250))
    assert _ship()["released"] >= 1
    assert no_weight in _shipped(depot.url)


def test_an_impossible_weight_stops_its_batch_before_any_money_is_spent(depot: Depot) -> None:
    with unit_of_work(depot.url) as session:
        first = session.scalar(select(Order.id).where(Order.status == "accepted", Order.lifecycle == "open").order_by(Order.id))
        from models import OrderLine

        heavy = session.scalars(select(OrderLine.sku).where(OrderLine.order_id == first)).first()
        session.execute(update(Variant).where(Variant.sku == heavy).values(weight_grams=900_000))
    summary = _ship()
    assert summary["batches_stopped"] >= 1
    assert first not in _shipped(depot.url)
    assert summary["alerts_sent"] >= 1


def test_lost_answers_and_a_sigkill_part_way_still_buy_one_label_per_order(
    database_url: str, tmp_path: Path, use_env: Any
) -> None:
    from prefect.settings import PREFECT_API_URL

    with ExitStack() as stack:
        depot = _open_a_depot(stack, database_url, tmp_path, use_env, Faults(drop_rate=0.1, error_rate=0.05, seed=5))
        ready = _ready(database_url)
        depot.carrier.lose_buy_responses(max(ready // 5, 2))  # a fifth of the buys: bought, the answer lost
        depot.carrier.delay_buys(1000, 0.15)  # slow enough to kill the run part-way
        child = subprocess.Popen(
            [sys.executable, "-m", "deployments.cli", "run", "ship-orders", "--json"], cwd=tmp_path,
            env=os.environ | depot.env | {"PYTHONPATH": str(ROOT), "PREFECT_API_URL": PREFECT_API_URL.value() or ""},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 180
        while rows_in(database_url, Shipment) < 3:
            assert child.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no label was bought"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait()
        depot.carrier.delay_buys(0, 0)
        for _ in range(4):  # the schedule runs it again; a run that met too many faults is run again too
            summary, ok = run_flow("ship-orders", {})
            if ok and summary["labels_bought"] == 0:
                break
        shipped = _shipped(database_url)
        assert len(shipped) == _shipped_total(database_url) and shipped
        assert all(depot.carrier.labels_bought(key) == 1 for key in shipped.values())
        with unit_of_work(database_url) as session:
            pending = session.scalars(select(SideEffect.key).where(SideEffect.state != "done")).all()
            by_channel: dict[str, int] = {}
            for channel, in session.execute(select(Order.channel).join(Shipment, Shipment.order_id == Order.id)):
                by_channel[channel] = by_channel.get(channel, 0) + 1
        assert pending == []
        assert depot.carrier._lose_buys == 0, "every answer meant to be lost was lost"
        assert {channel: depot.fulfillments(channel) for channel in CHANNELS} == {c: by_channel.get(c, 0) for c in CHANNELS}


def _shipped_total(url: str) -> int:
    with unit_of_work(url) as session:
        return len(session.scalars(select(Order.id).where(Order.status == "fulfilled", Order.id.in_(select(Shipment.order_id)))).all())


def _track() -> dict[str, Any]:
    summary, ok = run_flow("track-shipments", {})
    assert ok, summary
    return summary


def test_tracking_follows_parcels_to_delivery_and_tells_exceptions_and_late_ones_once(depot: Depot) -> None:
    _ship()
    _ship()
    with unit_of_work(depot.url) as session:
        numbers = list(session.scalars(select(Shipment.tracking_number).order_by(Shipment.id)))
    stuck, late = numbers[0], numbers[1]
    first = _track()  # trackers made: every parcel is known to the carrier now
    assert first["trackers_polled"] == len(numbers)
    depot.carrier.route_tracker(stuck, "failure")
    with unit_of_work(depot.url) as session:  # this one was promised for yesterday
        session.execute(update(Shipment).where(Shipment.tracking_number == late)
                        .values(promised_by=datetime.now(UTC).date() - timedelta(days=1)))
    slack_before = len(depot.world.slack.messages)
    runs = [_track() for _ in range(5)]
    with unit_of_work(depot.url) as session:
        statuses = dict(session.execute(select(Shipment.tracking_number, Shipment.status)).all())
        delivered_at = session.scalar(select(Shipment.delivered_at).where(Shipment.tracking_number == numbers[2]))
    assert statuses[stuck] == "exception" and statuses[numbers[2]] == "delivered" and delivered_at is not None
    assert sum(run["delivered"] for run in runs) + first["delivered"] == len(numbers) - 1
    told = [m.to_json() for m in depot.world.slack.messages[slack_before:]]
    assert any("exception" in json.dumps(m) for m in told)
    assert all("@" not in json.dumps(m) for m in told)  # no email addresses, no personal data
    assert runs[-1]["alerts_sent"] == 0 and runs[-1]["exceptions"] == 1
    with unit_of_work(depot.url) as session:
        figures = list(EXPORTS["carrier-performance"](session))
        exported = {row["tracking_number"]: row for row in EXPORTS["shipments"](session)}
    assert sum(row["parcels"] for row in figures) == len(numbers)
    assert exported[late]["late"] is True and exported[numbers[2]]["late"] is False


def _use_label_format(depot: Depot, tmp_path: Path, use_env: Any, label_format: str) -> None:
    config = Path(depot.env["CLERK_CONFIG"])
    config.write_text(config.read_text() + f'label_format = "{label_format}"\n')
    use_env(depot.env)


def test_pdf_labels_are_bought_stored_as_pdf_and_render(depot: Depot, tmp_path: Path, use_env: Any) -> None:
    _use_label_format(depot, tmp_path, use_env, "PDF")
    runs = [_ship() for _ in range(2)]
    assert sum(run["labels_bought"] for run in runs) > 0
    assert {s.label_format for s in depot.carrier.shipments.values()} == {"PDF"}
    with unit_of_work(depot.url) as session:
        stored = dict(session.execute(select(Shipment.tracking_number, Shipment.label_path)).all())
    assert stored and all(path and path.endswith(".pdf") for path in stored.values())
    number, path = next(iter(stored.items()))
    content = Path(path).read_bytes()
    assert content.startswith(b"%PDF-") and b"%%EOF" in content[-1024:]
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: the PDF is not rendered")
    page = tmp_path / "label"
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-singlefile", path, str(page)], check=True, capture_output=True)
    assert (tmp_path / "label.png").read_bytes().startswith(b"\x89PNG")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", path, "-"], check=True, capture_output=True, text=True).stdout
        assert number in text


def test_zpl_labels_are_stored_as_zpl(depot: Depot, tmp_path: Path, use_env: Any) -> None:
    _use_label_format(depot, tmp_path, use_env, "ZPL")
    _ship()
    with unit_of_work(depot.url) as session:
        paths = list(session.scalars(select(Shipment.label_path)))
    assert paths and all(p and p.endswith(".zpl") and Path(p).read_bytes().startswith(b"^XA") for p in paths)


@pytest.mark.karrio
@pytest.mark.slow
def test_on_karrio_without_address_validation_labels_are_bought_once_unverified(
    database_url: str, tmp_path: Path, use_env: Any
) -> None:
    import httpx

    from tests.karrio_server import KarrioUnavailable, running_karrio

    with ExitStack() as stack:
        try:
            karrio = stack.enter_context(running_karrio())
        except KarrioUnavailable as exc:
            pytest.skip(f"karrio-server is not available here: {exc}")
        depot = _open_a_depot(stack, database_url, tmp_path, use_env)
        env = depot.env | {"CLERK_CARRIER": "karrio", "CLERK_KARRIO_URL": karrio.url,
                           "CLERK_KARRIO_API_KEY": karrio.token}
        use_env(env)
        runs = [_ship() for _ in range(2)]  # a batch the gate stopped goes on the next run
        shipped = _shipped(database_url)
        assert shipped and sum(run["labels_bought"] for run in runs) == len(shipped)
        assert sum(run["addresses_unverified"] for run in runs) == len(shipped)
        assert sum(run["fulfillments_written"] for run in runs) == len(shipped)

        def bought_at_karrio(reference: str) -> int:
            found = httpx.get(karrio.url + "/v1/shipments", params={"reference": reference},
                              headers={"Authorization": f"Token {karrio.token}"}).json()["results"]
            return sum(1 for s in found if s["reference"] == reference and s["status"] not in ("draft", "cancelled"))

        assert all(bought_at_karrio(key) == 1 for key in shipped.values())
        with unit_of_work(database_url) as session:
            paths = list(session.scalars(select(Shipment.label_path)))
            results = list(session.scalars(select(SideEffect.result).where(SideEffect.kind == "label")))
        assert all(path and Path(path).read_bytes().startswith(b"%PDF-") for path in paths)
        assert results and all(result["address_verified"] is False for result in results)

        again = _ship()
        assert (again["orders_considered"], again["labels_bought"], again["addresses_unverified"]) == (0, 0, 0)
        assert all(bought_at_karrio(key) == 1 for key in shipped.values())
