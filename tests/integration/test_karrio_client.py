"""The Karrio client against a real karrio-server from PyPI (SQLite, the `generic` carrier,
127.0.0.1): rates, a label bought once and its PDF, the lookup that stops a second
purchase, and tracking. Select with `-m karrio`; the first run installs the server
(see tests/karrio_server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from domain.orders import Address
from integrations.karrio import KarrioClient
from integrations.protocols import Carrier, Parcel, TrackerStatus, UpstreamError
from tests.karrio_server import KarrioServer, KarrioUnavailable, running_karrio

pytestmark = [pytest.mark.karrio, pytest.mark.slow]

WAREHOUSE = Address(name="Warehouse", street1="1 Dock Rd", city="Portland", province="OR", postal_code="97201",
                    country="US", phone="+15035550100")
BUYER = Address(name="Ada Buyer", street1="5 Main St", city="Seattle", province="WA", postal_code="98101",
                country="US")
BOX = Parcel(weight_grams=1500, dimensions_cm=(Decimal("20"), Decimal("15"), Decimal("10")))


@pytest.fixture(scope="module")
def karrio() -> Iterator[KarrioServer]:
    try:
        with running_karrio() as server:
            yield server
    except KarrioUnavailable as exc:
        pytest.skip(f"karrio-server is not available here: {exc}")


@pytest.fixture
def client(karrio: KarrioServer) -> Iterator[KarrioClient]:
    with KarrioClient(karrio.url, karrio.token, max_attempts=2) as client:
        yield client


def shipments_on_server(karrio: KarrioServer, **params: str) -> list[dict]:
    """The server's own count, read apart from the client under test."""
    response = httpx.get(karrio.url + "/v1/shipments", params=params,
                         headers={"Authorization": f"Token {karrio.token}"})
    response.raise_for_status()
    return response.json()["results"]


def test_client_implements_the_port(client: KarrioClient) -> None:
    assert isinstance(client, Carrier)


def test_rates_for_a_parcel(client: KarrioClient) -> None:
    shipment_id, rates = client.rates(WAREHOUSE, BUYER, BOX, "order-R1")

    assert shipment_id.startswith("shp_")
    [rate] = rates
    assert (rate.carrier, rate.service, rate.currency, rate.delivery_days) == ("clerk_test", "standard_service",
                                                                              "USD", 1)
    assert isinstance(rate.amount, Decimal) and rate.amount == Decimal("0")


def test_a_label_is_bought_once_and_its_pdf_fetched(client: KarrioClient, karrio: KarrioServer) -> None:
    assert client.find_label("order-B1") is None
    shipment_id, [rate] = client.rates(WAREHOUSE, BUYER, BOX, "order-B1")

    label = client.buy_label(shipment_id, rate.id, key="label:order-B1:1")

    assert (label.shipment_id, label.reference, label.carrier, label.service) == (
        shipment_id, "order-B1", "clerk_test", "standard_service")
    assert label.tracking_number and label.cost == Decimal("0") and label.currency == "USD"
    pdf = client.download_label(label.label_url)
    assert pdf.startswith(b"%PDF-")
    [stored] = shipments_on_server(karrio, reference="order-B1")
    assert stored["status"] == "created"
    assert stored["metadata"] == {"clerk_key": "label:order-B1:1"}

    # A rerun asks first, finds the label, and buys nothing.
    assert client.find_label("order-B1") == label
    # A buy repeated on the same shipment (its answer lost) reads the label back.
    assert client.buy_label(shipment_id, rate.id, key="label:order-B1:1") == label
    assert len(shipments_on_server(karrio, reference="order-B1")) == 1


def test_find_label_matches_the_reference_exactly_and_skips_drafts(client: KarrioClient) -> None:
    shipment_id, [rate] = client.rates(WAREHOUSE, BUYER, BOX, "order-F10")
    bought = client.buy_label(shipment_id, rate.id, key="label:order-F10:1")
    client.rates(WAREHOUSE, BUYER, BOX, "order-F1")  # a draft: rated, never bought

    # Karrio's filter is "contains": order-F1 also lists order-F10's shipment.
    assert client.find_label("order-F1") is None
    assert client.find_label("order-F10") == bought


def test_tracking_reads_the_servers_tracker(client: KarrioClient, karrio: KarrioServer) -> None:
    shipment_id, [rate] = client.rates(WAREHOUSE, BUYER, BOX, "order-T1")
    label = client.buy_label(shipment_id, rate.id, key="label:order-T1:1")
    # The generic carrier does not track: before a tracker exists, nothing is scanned.
    [untracked] = client.track([label.tracking_number])
    assert (untracked.status, untracked.carrier_status) == (TrackerStatus.PRE_TRANSIT, "no_tracker")

    tracker_id = karrio.plant_tracker(label.tracking_number)
    moved = httpx.post(f"{karrio.url}/v1/trackers/{tracker_id}/inject-events",
                       headers={"Authorization": f"Token {karrio.token}"},
                       json={"status": "in_transit", "events": [
                           {"date": "2026-11-27", "time": "09:15 AM", "description": "Arrived at sort facility",
                            "code": "AR", "status": "in_transit"},
                           {"date": "2026-11-26", "time": "04:02 PM", "description": "Picked up",
                            "code": "PU", "status": "picked_up"}]})
    assert moved.status_code == 200

    [event] = client.track([label.tracking_number])
    assert (event.tracking_number, event.status, event.carrier_status) == (
        label.tracking_number, TrackerStatus.IN_TRANSIT, "in_transit")
    assert event.detail == "Arrived at sort facility"
    assert event.occurred_at is not None and event.occurred_at.isoformat() == "2026-11-27T09:15:00+00:00"


def test_address_check_without_a_validator_is_not_checked_rather_than_refused(client: KarrioClient) -> None:
    first = client.verify_address(BUYER)
    assert (first.ok, first.checked) == (True, False)
    assert first.message and "address validation is not supported" in first.message
    # Remembered: the next address is not sent to be refused again.
    assert client.verify_address(WAREHOUSE) == first


def test_a_wrong_api_key_names_the_variable(karrio: KarrioServer) -> None:
    with KarrioClient(karrio.url, "key_wrong", max_attempts=1) as client, pytest.raises(UpstreamError) as refused:
        client.rates(WAREHOUSE, BUYER, BOX, "order-K1")
    assert refused.value.setting == "CLERK_KARRIO_API_KEY"


def test_the_key_is_not_sent_to_a_label_url_elsewhere(client: KarrioClient) -> None:
    with pytest.raises(UpstreamError, match="CLERK_KARRIO_URL"):
        client.download_label("https://elsewhere.example.com/v1/shipments/shp_1/label.pdf")
