"""Karrio JSON to and from Clerk's shipping types (pure; the real server is in tests/integration)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.orders import Address
from integrations.karrio import mapping
from integrations.protocols import Parcel, TrackerStatus


def test_parcel_goes_in_grams_and_centimetres() -> None:
    body = mapping.build_parcel(Parcel(1500, (Decimal("20"), Decimal("15.5"), Decimal("10"))))

    assert body == {"weight": 1500, "weight_unit": "G", "length": 20.0, "width": 15.5, "height": 10.0,
                    "dimension_unit": "CM"}
    assert mapping.build_parcel(Parcel(200)) == {"weight": 200, "weight_unit": "G"}


@pytest.mark.parametrize("parcel", [Parcel(0), Parcel(100, (Decimal("1"), Decimal("0"), Decimal("1")))])
def test_a_parcel_without_positive_measures_is_refused(parcel: Parcel) -> None:
    with pytest.raises(ValueError, match="positive"):
        mapping.build_parcel(parcel)


def test_address_leaves_out_what_clerk_does_not_know() -> None:
    assert mapping.build_address(Address(name="Ada", country="US", postal_code="98101")) == {
        "person_name": "Ada", "country_code": "US", "postal_code": "98101"}


def shipment(reference: str, status: str = "created", **extra: object) -> dict:
    return {"id": "shp_1", "reference": reference, "status": status, "tracking_number": "T1",
            "label_url": "/v1/shipments/shp_1/label.pdf",
            "selected_rate": {"id": "rat_1", "carrier_name": "ups", "service": "ups_ground", "currency": "USD",
                              "total_charge": Decimal("7.58")}, **extra}


def test_label_url_is_made_absolute_and_money_stays_decimal() -> None:
    label = mapping.parse_label(shipment("order-1"), "http://127.0.0.1:5002/")

    assert label is not None
    assert label.label_url == "http://127.0.0.1:5002/v1/shipments/shp_1/label.pdf"
    assert label.cost == Decimal("7.58") and label.carrier == "ups"


def test_a_float_amount_is_unexpected_rather_than_rounded() -> None:
    body = shipment("order-1")
    body["selected_rate"]["total_charge"] = 7.58
    with pytest.raises(mapping.UnexpectedAnswer, match="total_charge"):
        mapping.parse_label(body, "http://k")


@pytest.mark.parametrize("status", ["draft", "cancelled"])
def test_a_draft_or_voided_shipment_holds_no_label(status: str) -> None:
    assert mapping.parse_label(shipment("order-1", status), "http://k") is None


def test_find_label_wants_the_reference_exactly() -> None:
    found = [shipment("order-10"), shipment("order-1", "draft"), shipment("order-1", id="shp_2")]

    label = mapping.find_label(found, "order-1", "http://k")

    assert label is not None and label.shipment_id == "shp_2"


def test_tracker_gives_the_newest_event_and_clerks_status() -> None:
    event = mapping.parse_tracker({"tracking_number": "T1", "status": "ready_for_pickup", "events": [
        {"date": "2026-11-27", "time": "08:00 AM", "description": "At pickup point"},
        {"date": "2026-11-27", "time": "08:00 AM", "description": "Same minute, listed later"},
        {"date": "2026-11-26", "time": "11:30 PM", "description": "In transit"},
    ], "estimated_delivery": "2026-11-28"}, )

    assert (event.status, event.carrier_status, event.detail) == (
        TrackerStatus.OUT_FOR_DELIVERY, "ready_for_pickup", "At pickup point")
    assert event.occurred_at is not None and event.occurred_at.isoformat() == "2026-11-27T08:00:00+00:00"
    assert event.estimated_delivery is not None and event.estimated_delivery.day == 28


def test_an_unlisted_tracker_status_is_shown_to_a_clerk() -> None:
    assert mapping.clerk_status("teleported") is TrackerStatus.EXCEPTION
    assert mapping.clerk_status("pending") is TrackerStatus.PRE_TRANSIT


def test_errors_and_messages_are_both_read() -> None:
    assert mapping.parse_error({"errors": [{"code": "not_found", "message": "Tracking not found"}]}) == (
        "not_found", "Tracking not found")
    assert mapping.parse_error({"messages": [{"code": "shipping_error", "message": "No rate"}]}) == (
        "shipping_error", "No rate")
    assert mapping.parse_error("<html>") == ("", "")


def test_only_a_whole_pdf_is_a_label() -> None:
    assert mapping.is_pdf(b"%PDF-1.4\n...\n%%EOF")
    assert not mapping.is_pdf(b"%PDF-1.4\n...cut")
    assert not mapping.is_pdf(b'{"errors": []}')
