"""The EasyPost client against the EasyPost sandbox over loopback: address checks, rates, a label
bought exactly once (even when its answer is lost), retried reads, trackers and label files."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from domain.orders import Address
from integrations import wiring
from integrations.easypost import EasyPostClient
from integrations.protocols import Carrier, Label, Parcel, Rate, TrackerStatus, UpstreamError
from integrations.sandbox.easypost import EasyPostSandbox, create_easypost_app
from integrations.sandbox.faults import Faults
from integrations.sandbox.server import serve_in_thread
from integrations.settings import Settings

KEY = "EZTK_test"
DOCK = Address(company="Clerk Warehouse", street1="1 Dock Rd", city="Portland", province="OR", postal_code="97201",
               country="US", phone="+15035550100")
HOME = Address(name="Ada Buyer", street1="179 N Harbor Dr", city="Redondo Beach", province="CA",
               postal_code="90277", country="US")
BOX = Parcel(1000, (Decimal("30"), Decimal("20"), Decimal("10")))  # 35.3 oz: priced as 3 pounds


def no_wait(_seconds: float) -> None:
    """Backoff without waiting, so retried tests run at loopback speed."""


@pytest.fixture
def sandbox() -> Iterator[tuple[EasyPostSandbox, str]]:
    app = create_easypost_app(api_key=KEY, faults=Faults(timeout_seconds=0.6, seed=5), retry_after=0)
    with serve_in_thread(app) as server:
        yield app, server.url


@pytest.fixture
def client(sandbox: tuple[EasyPostSandbox, str]) -> Iterator[EasyPostClient]:
    with EasyPostClient(KEY, sandbox[1], timeout=5, max_attempts=8, sleep=no_wait, rng=random.Random(2)) as c:
        yield c


def bought(client: EasyPostClient, reference: str = "ORD-1001",
           key: str = "label:ORD-1001") -> tuple[str, Rate, Label]:
    """Quotes a shipment for `reference` and buys its cheapest rate."""
    shipment_id, rates = client.rates(DOCK, HOME, BOX, reference)
    cheapest = min(rates, key=lambda r: r.amount)
    return shipment_id, cheapest, client.buy_label(shipment_id, cheapest.id, key)


# ------------------------------------------------------------------------ setup


def test_the_client_is_a_carrier(client: EasyPostClient) -> None:
    assert isinstance(client, Carrier)


def test_from_settings_names_the_missing_key() -> None:
    with EasyPostClient.from_settings(Settings(easypost_api_key="k", http_max_attempts=2)) as built:
        assert str(built.api) == "https://api.easypost.com/v2/"
    with pytest.raises(UpstreamError) as caught:
        EasyPostClient.from_settings(Settings(easypost_api_key=None))
    assert caught.value.setting == "CLERK_EASYPOST_API_KEY"


@pytest.mark.parametrize("url", ["http://api.easypost.com", "api.easypost.com", "ftp://api.easypost.com"])
def test_a_url_that_would_leak_the_key_names_the_variable(url: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        EasyPostClient(KEY, url)
    assert caught.value.setting == "CLERK_EASYPOST_API_URL"


def test_a_wrong_key_names_the_variable(sandbox: tuple[EasyPostSandbox, str]) -> None:
    with EasyPostClient("EZTK_wrong", sandbox[1], sleep=no_wait) as wrong, pytest.raises(UpstreamError) as caught:
        wrong.verify_address(HOME)
    assert caught.value.setting == "CLERK_EASYPOST_API_KEY"


def test_wiring_builds_the_carrier_clerk_carrier_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_CARRIER", "easypost")
    monkeypatch.setenv("CLERK_EASYPOST_API_KEY", KEY)
    wiring.reset()
    try:
        built = wiring.carrier()
        assert isinstance(built, EasyPostClient) and wiring.carrier() is built
        for name, message in [(None, "CLERK_CARRIER is not set"), ("fedex", "names no carrier")]:
            with pytest.raises(UpstreamError, match=message) as caught:
                wiring.build_carrier(Settings(carrier=name))
            assert caught.value.setting == "CLERK_CARRIER"
        from integrations.karrio.client import KarrioClient

        karrio = wiring.build_carrier(Settings(carrier="karrio", karrio_url="http://127.0.0.1:5002", karrio_api_key="k"))
        assert isinstance(karrio, KarrioClient)
    finally:
        wiring.reset()


# ---------------------------------------------------------------- address checks


def test_a_deliverable_address_is_ok(client: EasyPostClient) -> None:
    check = client.verify_address(HOME)
    assert check.ok and check.message is None


@pytest.mark.parametrize(("address", "message"), [
    (Address(city="Redondo Beach", province="CA", postal_code="90277", country="US"), "House number is missing"),
    (Address(street1="1 Nowhere Ln", city="Nowhere", postal_code="00000", country="US"), "Address not found"),
])
def test_an_undeliverable_address_says_why(client: EasyPostClient, address: Address, message: str) -> None:
    check = client.verify_address(address)
    assert not check.ok and check.message == message


def test_the_sandbox_refuses_a_strict_verification_as_easypost_does(sandbox: tuple[EasyPostSandbox, str]) -> None:
    answer = httpx.post(f"{sandbox[1]}/v2/addresses", auth=(KEY, ""),
                        json={"address": {"street1": "1 Nowhere Ln", "zip": "00000"}, "verify_strict": True})
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "ADDRESS.VERIFY.FAILURE"


# -------------------------------------------------------------------------- rates


def test_rates_come_from_the_sandboxs_table(client: EasyPostClient, sandbox: tuple[EasyPostSandbox, str]) -> None:
    shipment_id, rates = client.rates(DOCK, HOME, BOX, "ORD-1001")
    assert shipment_id.startswith("shp_")
    quoted = {(r.carrier, r.service): (r.amount, r.currency, r.delivery_days) for r in rates}
    assert quoted == {("USPS", "GroundAdvantage"): (Decimal("7.10"), "USD", 5),
                      ("USPS", "Priority"): (Decimal("11.45"), "USD", 2),
                      ("USPS", "Express"): (Decimal("33.90"), "USD", 1),
                      ("UPS", "Ground"): (Decimal("13.10"), "USD", 4)}
    assert all(r.delivery_date is not None for r in rates)
    assert sandbox[0].shipments[shipment_id].reference == "ORD-1001"
    assert sandbox[0].shipments[shipment_id].request["parcel"]["weight"] == 35.3


# --------------------------------------------------------------------------- labels


def test_a_label_is_bought_once_with_clerks_key(client: EasyPostClient, sandbox: tuple[EasyPostSandbox, str]) -> None:
    app = sandbox[0]
    shipment_id, rate, label = bought(client)
    assert (label.shipment_id, label.carrier, label.service) == (shipment_id, rate.carrier, rate.service)
    assert (label.cost, label.currency, label.reference) == (rate.amount, "USD", "ORD-1001")
    assert label.tracking_number.startswith("9400")
    assert app.buy_requests[shipment_id] == 1 and app.buy_keys[shipment_id] == ["label:ORD-1001"]
    again = client.buy_label(shipment_id, rate.id, "label:ORD-1001")
    assert again == label and app.buy_requests[shipment_id] == 1, "a bought shipment is read, not bought again"


def test_a_lost_buy_answer_is_found_not_bought_again(client: EasyPostClient,
                                                     sandbox: tuple[EasyPostSandbox, str]) -> None:
    app = sandbox[0]
    shipment_id, rates = client.rates(DOCK, HOME, BOX, "ORD-2002")
    app.lose_buy_responses(1)
    label = client.buy_label(shipment_id, rates[0].id, "label:ORD-2002")
    assert app.shipments[shipment_id].tracking_code == label.tracking_number
    assert app.buy_requests[shipment_id] == 1
    assert app.labels_bought("ORD-2002") == 1


def test_a_buy_that_outlives_the_timeout_is_waited_for_not_repeated(sandbox: tuple[EasyPostSandbox, str]) -> None:
    app, url = sandbox
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with EasyPostClient(KEY, url, timeout=0.3, sleep=wait, rng=random.Random(1)) as client:
        shipment_id, rates = client.rates(DOCK, HOME, BOX, "ORD-2121")
        app.delay_buys(1, 0.45)  # applied after the client's 0.3 s, before its 0.3 s wait is over
        label = client.buy_label(shipment_id, rates[0].id, "label:ORD-2121")
    assert 0.3 in waits, "the client waited its own timeout before reading the shipment back"
    assert app.buy_requests[shipment_id] == 1 and app.labels_bought("ORD-2121") == 1
    assert app.shipments[shipment_id].tracking_code == label.tracking_number


def test_a_refused_buy_is_an_upstream_error(client: EasyPostClient) -> None:
    shipment_id, _ = client.rates(DOCK, HOME, BOX, "ORD-3003")
    with pytest.raises(UpstreamError, match="SHIPMENT.RATE.NOT_FOUND"):
        client.buy_label(shipment_id, "rate_not_quoted", "label:ORD-3003")


def test_find_label_looks_among_bought_shipments(client: EasyPostClient) -> None:
    client.rates(DOCK, HOME, BOX, "ORD-4004")  # quoted, never bought
    assert client.find_label("ORD-4004") is None
    _, _, label = bought(client, "ORD-4004", "label:ORD-4004")
    bought(client, "ORD-5005", "label:ORD-5005")  # newer, another order
    assert client.find_label("ORD-4004") == label
    assert client.find_label("ORD-9999") is None


def test_find_label_pages_until_it_matches() -> None:
    def shipment(n: int, reference: str) -> dict:
        rate = {"id": f"rate_{n}", "carrier": "USPS", "service": "Priority", "rate": "8.95", "currency": "USD"}
        return {"id": f"shp_{n:03d}", "reference": reference, "tracking_code": f"9400{n}", "selected_rate": rate,
                "postage_label": {"label_url": f"https://files.example/{n}.png"}}

    asked: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        before = request.url.params.get("before_id")
        asked.append(before)
        assert request.url.params["purchased"] == "true"
        if before is None:
            return httpx.Response(200, json={"shipments": [shipment(n, "ORD-X") for n in (9, 8)], "has_more": True})
        return httpx.Response(200, json={"shipments": [shipment(7, "ORD-1"), shipment(6, "ORD-X")],
                                         "has_more": True})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    found = EasyPostClient(KEY, http=http, sleep=no_wait).find_label("ORD-1")
    assert found is not None and found.shipment_id == "shp_007" and asked == [None, "shp_008"]


def test_the_label_file_downloads_without_the_key(client: EasyPostClient) -> None:
    _, _, label = bought(client)
    assert client.download_label(label.label_url).startswith(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(UpstreamError, match="HTTP 404"):
        client.download_label(label.label_url.replace(label.shipment_id, "shp_missing"))


# ------------------------------------------------------------------------- faults


def test_reads_are_retried_through_faults(client: EasyPostClient, sandbox: tuple[EasyPostSandbox, str]) -> None:
    app = sandbox[0]
    _, _, label = bought(client)
    app.set_faults(error_rate=0.2, throttle_rate=0.2, malformed_rate=0.15, drop_rate=0.15)
    for _ in range(5):
        assert client.verify_address(HOME).ok
        assert len(client.rates(DOCK, HOME, BOX, "ORD-6006")[1]) == 4
        assert client.find_label("ORD-1001") == label
        assert client.download_label(label.label_url).startswith(b"\x89PNG")
    assert set(app.faults.injected) == {"error", "throttle", "malformed", "drop"}


def test_a_label_is_bought_once_through_faults_on_every_request(sandbox: tuple[EasyPostSandbox, str]) -> None:
    app, url = sandbox
    app.set_faults(error_rate=0.1, timeout_rate=0.15, throttle_rate=0.05, drop_rate=0.05, malformed_rate=0.05)

    def wait_out_a_late_buy(seconds: float) -> None:
        # The client waits its own timeout (0.4 s) before reading back a buy that timed out:
        # that wait must be real, for the sandbox (0.6 s late) to finish the buy; backoff need not be.
        if seconds == 0.4:
            time.sleep(seconds)

    with EasyPostClient(KEY, url, timeout=0.4, max_attempts=20, sleep=wait_out_a_late_buy,
                        rng=random.Random(4)) as client:
        for n in range(4):
            reference = f"ORD-7{n:03d}"
            shipment_id, _, label = bought(client, reference, f"label:{reference}")
            assert app.buy_requests[shipment_id] == 1
            assert app.labels_bought(reference) == 1 and label.reference == reference
    assert app.faults.injected.get("timeout", 0) > 0


# ------------------------------------------------------------------------ tracking


def test_a_tracker_advances_to_delivered(client: EasyPostClient, sandbox: tuple[EasyPostSandbox, str]) -> None:
    _, _, label = bought(client)
    seen = [client.track([label.tracking_number])[0] for _ in range(6)]
    assert [e.status for e in seen] == [TrackerStatus.PRE_TRANSIT, TrackerStatus.PRE_TRANSIT,
                                        TrackerStatus.IN_TRANSIT, TrackerStatus.OUT_FOR_DELIVERY,
                                        TrackerStatus.DELIVERED, TrackerStatus.DELIVERED]
    assert [e.carrier_status for e in seen[:2]] == ["unknown", "pre_transit"]
    assert seen[-1].detail == "Delivered, in/at mailbox" and seen[-1].tracking_number == label.tracking_number
    assert sandbox[0].stats["trackers"] == 1, "the label's own tracker is used, not a second one"


@pytest.mark.parametrize(("route", "last"), [("failure", TrackerStatus.EXCEPTION),
                                             ("return_to_sender", TrackerStatus.RETURNED_TO_SENDER)])
def test_a_tracker_can_end_badly(client: EasyPostClient, sandbox: tuple[EasyPostSandbox, str], route: str,
                                 last: TrackerStatus) -> None:
    _, _, label = bought(client)
    sandbox[0].route_tracker(label.tracking_number, route)
    statuses = [client.track([label.tracking_number])[0].status for _ in range(5)]
    assert statuses[-1] is last and TrackerStatus.DELIVERED not in statuses


def test_several_numbers_are_tracked_in_order(client: EasyPostClient) -> None:
    first = bought(client, "ORD-8001", "k1")[2]
    second = bought(client, "ORD-8002", "k2")[2]
    events = client.track([second.tracking_number, "EZ1000000001", first.tracking_number])
    assert [e.tracking_number for e in events] == [second.tracking_number, "EZ1000000001", first.tracking_number]


def test_the_sandbox_is_steered_over_http_too(client: EasyPostClient, sandbox: tuple[EasyPostSandbox, str]) -> None:
    app, url = sandbox
    _, _, label = bought(client)
    assert httpx.post(f"{url}/sandbox/trackers/{label.tracking_number}/route", json={"route": "failure"}).is_success
    assert httpx.post(f"{url}/sandbox/trackers/nope/route", json={"route": "failure"}).status_code == 400
    assert httpx.post(f"{url}/sandbox/lose-buys", json={"count": 2}).json() == {"losing": 2}
    assert httpx.post(f"{url}/sandbox/faults", json={"error_rate": 0.0}).is_success
    stats = httpx.get(f"{url}/sandbox/stats").json()
    assert stats | {"faults": {}} == {"shipments": 1, "labels": 1, "buy_requests": 1, "trackers": 1, "faults": {}}
    statuses = [client.track([label.tracking_number])[0].status for _ in range(4)]
    assert statuses[-1] is TrackerStatus.EXCEPTION
