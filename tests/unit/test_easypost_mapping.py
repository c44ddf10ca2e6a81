"""EasyPost's JSON to and from Clerk's shipping types, against payloads in EasyPost's documented
shapes, the tracker status table row by row, and webhook signatures against an RFC vector."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.orders import Address
from integrations.easypost import mapping
from integrations.protocols import AddressCheck, Label, Parcel, Rate, TrackerStatus

HOME = Address(name="Dr. Steve Brule", street1="179 N Harbor Dr", city="Redondo Beach", province="CA",
               postal_code="90277", country="US", phone="310-808-5243")
DOCK = Address(company="EasyPost", street1="118 2nd Street", street2="4th Floor", city="San Francisco",
               province="CA", postal_code="94105", country="US")

RATE = {"id": "rate_0b152f9e3b1c4ba6a3b7ea3c2a2ff0c5", "object": "Rate", "mode": "test",
        "service": "GroundAdvantage", "carrier": "USPS", "rate": "7.58", "currency": "USD",
        "retail_rate": "9.20", "delivery_days": 3, "delivery_date": "2025-05-14T00:00:00Z",
        "delivery_date_guaranteed": False, "est_delivery_days": 3,
        "shipment_id": "shp_a9b97f431c00435cb16ec2d6a14ed109", "carrier_account_id": "ca_b25657e9896e4d63ac8"}
SHIPMENT = {"id": "shp_a9b97f431c00435cb16ec2d6a14ed109", "object": "Shipment", "mode": "test",
            "reference": "ORD-1001", "status": "unknown", "tracking_code": None, "postage_label": None,
            "selected_rate": None, "created_at": "2025-05-09T20:40:06Z", "messages": [],
            "rates": [RATE, {**RATE, "id": "rate_2", "service": "Express", "rate": "31.25", "delivery_days": None,
                             "delivery_date": None}]}
BOUGHT = {**SHIPMENT, "tracking_code": "9400100208271109469521", "selected_rate": RATE,
          "postage_label": {"object": "PostageLabel", "id": "pl_5b9a", "label_file_type": "image/png",
                            "label_url": "https://easypost-files.s3.us-west-2.amazonaws.com/files/postage_label/x.png"}}


# ------------------------------------------------------------------------ requests


def test_an_address_is_spelt_as_easypost_spells_it() -> None:
    assert mapping.build_address(DOCK) == {"company": "EasyPost", "street1": "118 2nd Street",
                                           "street2": "4th Floor", "city": "San Francisco", "state": "CA",
                                           "zip": "94105", "country": "US"}
    assert mapping.build_address_verification(HOME) == {"address": mapping.build_address(HOME), "verify": True}


def test_a_parcel_goes_in_ounces_and_inches_rounded_up_to_a_tenth() -> None:
    body = mapping.build_parcel(Parcel(1000, (Decimal("30"), Decimal("20"), Decimal("10.1"))))
    # 1000 g = 35.27 oz; 30 cm = 11.81 in; 20 cm = 7.87 in; 10.1 cm = 3.976 in.
    assert body == {"weight": 35.3, "length": 11.9, "width": 7.9, "height": 4.0}
    assert mapping.build_parcel(Parcel(1)) == {"weight": 0.1}


@pytest.mark.parametrize("parcel", [Parcel(0), Parcel(-5), Parcel(100, (Decimal(1), Decimal(0), Decimal(1)))])
def test_a_parcel_without_positive_size_is_refused(parcel: Parcel) -> None:
    with pytest.raises(ValueError, match="positive"):
        mapping.build_parcel(parcel)


def test_a_shipment_carries_clerks_reference() -> None:
    body = mapping.build_shipment(DOCK, HOME, Parcel(500), "ORD-1001")
    assert body == {"shipment": {"reference": "ORD-1001", "from_address": mapping.build_address(DOCK),
                                 "to_address": mapping.build_address(HOME), "parcel": {"weight": 17.7}}}


def test_buy_list_and_tracker_bodies() -> None:
    assert mapping.build_buy("rate_1") == {"rate": {"id": "rate_1"}}
    since = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert mapping.build_purchased_params(None, since) == {"purchased": "true", "page_size": 100,
                                                           "start_datetime": "2026-01-02T03:04:05Z"}
    assert mapping.build_purchased_params("shp_9", since)["before_id"] == "shp_9"
    assert mapping.build_tracker("EZ1000000001") == {"tracker": {"tracking_code": "EZ1000000001"}}


# ------------------------------------------------------------------------- answers


def test_a_deliverable_address() -> None:
    body = {"id": "adr_1", "object": "Address", "verifications": {
        "zip4": {"success": True, "errors": [], "details": None},
        "delivery": {"success": True, "errors": [], "details": {"latitude": 33.8, "longitude": -118.4}}}}
    assert mapping.parse_address_check(body) == AddressCheck(ok=True, message=None)


def test_an_undeliverable_address_keeps_the_carriers_words() -> None:
    body = {"id": "adr_2", "object": "Address", "verifications": {"delivery": {"success": False, "errors": [
        {"code": "E.ADDRESS.NOT_FOUND", "field": "address", "message": "Address not found", "suggestion": None},
        {"code": "E.HOUSE_NUMBER.MISSING", "field": "street1", "message": "House number is missing",
         "suggestion": None}], "details": None}}}
    assert mapping.parse_address_check(body) == AddressCheck(False, "Address not found; House number is missing")


def test_an_address_answer_without_a_verdict_is_named() -> None:
    with pytest.raises(mapping.UnexpectedAnswer, match="verifications.delivery"):
        mapping.parse_address_check({"id": "adr_3", "verifications": {}})


def test_rates_are_read_as_decimals() -> None:
    shipment_id, rates = mapping.parse_rates(SHIPMENT)
    assert shipment_id == SHIPMENT["id"]
    assert rates == [
        Rate(RATE["id"], "USPS", "GroundAdvantage", Decimal("7.58"), "USD", 3, datetime(2025, 5, 14, tzinfo=UTC)),
        Rate("rate_2", "USPS", "Express", Decimal("31.25"), "USD", None, None),
    ]
    assert mapping.parse_rates({**SHIPMENT, "rates": []}) == (SHIPMENT["id"], [])


@pytest.mark.parametrize("amount", [None, "", "seven", 7.58, "NaN"])
def test_a_rate_that_is_not_an_amount_is_named(amount: object) -> None:
    with pytest.raises(mapping.UnexpectedAnswer, match="rate.rate"):
        mapping.parse_rate({**RATE, "rate": amount})


def test_a_shipment_not_bought_has_no_label() -> None:
    assert mapping.parse_label(SHIPMENT) is None
    assert mapping.parse_label({**BOUGHT, "postage_label": None}) is None
    assert mapping.parse_label({**BOUGHT, "tracking_code": None}) is None


def test_a_bought_shipment_gives_its_label() -> None:
    assert mapping.parse_label(BOUGHT) == Label(
        shipment_id=SHIPMENT["id"], tracking_number="9400100208271109469521", carrier="USPS",
        service="GroundAdvantage", label_url=BOUGHT["postage_label"]["label_url"], cost=Decimal("7.58"),
        currency="USD", reference="ORD-1001")


def test_the_label_format_goes_as_a_shipment_option_and_picks_the_buys_file() -> None:
    args = (Address(street1="1 Dock Rd", country="US"), Address(street1="5 Main St", country="US"), Parcel(500), "R-1")
    assert "options" not in mapping.build_shipment(*args)["shipment"]
    assert mapping.build_shipment(*args, "PDF")["shipment"]["options"] == {"label_format": "PDF"}
    assert mapping.build_shipment(*args, "ZPL")["shipment"]["options"] == {"label_format": "ZPL"}
    with pytest.raises(ValueError, match="label format"):
        mapping.build_shipment(*args, "GIF")

    postage = {**BOUGHT["postage_label"], "label_pdf_url": "https://files.example/l.pdf",
               "label_zpl_url": "https://files.example/l.zpl", "label_file_type": "application/pdf"}
    bought = {**BOUGHT, "postage_label": postage}
    assert mapping.parse_label(bought, "PDF").label_url == "https://files.example/l.pdf"
    assert mapping.parse_label(bought, "ZPL").label_url == "https://files.example/l.zpl"
    assert mapping.parse_label(bought, "PNG").label_url == postage["label_url"]
    # Bought before the setting changed: EasyPost made only its PNG, which is what there is.
    assert mapping.parse_label({**BOUGHT, "postage_label": {**postage, "label_pdf_url": None}}, "PDF"
                               ).label_url == postage["label_url"]
    assert mapping.find_label([bought], "ORD-1001", "PDF").label_url == "https://files.example/l.pdf"


def test_a_label_is_found_by_reference_among_bought_shipments() -> None:
    other = {**BOUGHT, "id": "shp_other", "reference": "ORD-2002"}
    unbought_twin = {**SHIPMENT, "id": "shp_twin"}
    page = {"shipments": [other, unbought_twin, BOUGHT], "has_more": True}
    shipments, more = mapping.parse_shipments_page(page)
    assert more is True
    found = mapping.find_label(shipments, "ORD-1001")
    assert found is not None and found.shipment_id == SHIPMENT["id"]
    assert mapping.find_label(shipments, "ORD-3003") is None
    assert mapping.parse_shipments_page({"shipments": []}) == ([], False)
    with pytest.raises(mapping.UnexpectedAnswer):
        mapping.parse_shipments_page({"shipments": None})


@pytest.mark.parametrize(("easypost", "clerk"), [
    ("unknown", TrackerStatus.PRE_TRANSIT),
    ("pre_transit", TrackerStatus.PRE_TRANSIT),
    ("in_transit", TrackerStatus.IN_TRANSIT),
    ("out_for_delivery", TrackerStatus.OUT_FOR_DELIVERY),
    ("available_for_pickup", TrackerStatus.OUT_FOR_DELIVERY),
    ("delivered", TrackerStatus.DELIVERED),
    ("return_to_sender", TrackerStatus.RETURNED_TO_SENDER),
    ("failure", TrackerStatus.EXCEPTION),
    ("cancelled", TrackerStatus.EXCEPTION),
    ("error", TrackerStatus.EXCEPTION),
    ("teleported", TrackerStatus.EXCEPTION),  # a status EasyPost adds later goes to a clerk
])
def test_status_table(easypost: str, clerk: TrackerStatus) -> None:
    assert mapping.clerk_status(easypost) is clerk


def test_the_table_covers_every_documented_status() -> None:
    documented = {"unknown", "pre_transit", "in_transit", "out_for_delivery", "delivered", "available_for_pickup",
                  "return_to_sender", "failure", "cancelled", "error"}
    assert set(mapping.STATUS_TO_CLERK) == documented


def test_a_tracker_gives_its_newest_detail() -> None:
    body = {"id": "trk_1", "object": "Tracker", "tracking_code": "EZ4000000004", "status": "delivered",
            "status_detail": "arrived_at_destination", "carrier": "USPS", "est_delivery_date": "2025-05-12T00:00:00Z",
            "tracking_details": [
                {"status": "in_transit", "message": "Arrived at facility", "datetime": "2025-05-10T08:00:00Z"},
                {"status": "delivered", "message": "Delivered, in/at mailbox", "datetime": "2025-05-11T16:20:00Z"},
                {"status": "pre_transit", "message": "Label created", "datetime": "2025-05-09T10:00:00Z"}]}
    tracker_id, event = mapping.parse_tracker(body)
    assert tracker_id == "trk_1"
    assert event.tracking_number == "EZ4000000004" and event.status is TrackerStatus.DELIVERED
    assert event.carrier_status == "delivered" and event.detail == "Delivered, in/at mailbox"
    assert event.occurred_at == datetime(2025, 5, 11, 16, 20, tzinfo=UTC)
    assert event.estimated_delivery == datetime(2025, 5, 12, tzinfo=UTC)


def test_of_scans_in_one_second_the_later_listed_is_newest() -> None:
    same = "2025-05-11T16:20:00Z"
    _, event = mapping.parse_tracker({"id": "trk_3", "tracking_code": "EZ3", "status": "out_for_delivery",
                                      "tracking_details": [{"message": "Sorted", "datetime": same},
                                                           {"message": "Out for delivery", "datetime": same}]})
    assert event.detail == "Out for delivery"


def test_a_tracker_without_details_says_its_status_detail() -> None:
    _, event = mapping.parse_tracker({"id": "trk_2", "tracking_code": "EZ1", "status": "unknown",
                                      "status_detail": "label_created", "tracking_details": []})
    assert event.status is TrackerStatus.PRE_TRANSIT and event.detail == "label_created"
    assert event.occurred_at is None and event.estimated_delivery is None


def test_error_bodies() -> None:
    body = {"error": {"code": "ADDRESS.VERIFY.FAILURE", "message": "Address not found", "errors": []}}
    assert mapping.parse_error(body) == ("ADDRESS.VERIFY.FAILURE", "Address not found")
    assert mapping.parse_error("Bad gateway") == ("", "")
    assert mapping.parse_error({"error": "nope"}) == ("", "")


# ------------------------------------------------------------------------ webhooks

# RFC 4231, test case 2: HMAC-SHA256 with key "Jefe".
RFC4231_HEX = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
EVENT = b'{"object":"Event","description":"tracker.updated","result":{"status":"delivered"}}'


def test_the_signature_is_prefixed_hex_hmac_sha256() -> None:
    assert mapping.webhook_signature("Jefe", b"what do ya want for nothing?") == "hmac-sha256-hex=" + RFC4231_HEX


def test_a_signed_delivery_verifies_and_one_changed_byte_does_not() -> None:
    headers = {"X-Hmac-Signature": mapping.webhook_signature("s3cret", EVENT)}
    assert mapping.verify_webhook("s3cret", headers, EVENT)
    assert mapping.verify_webhook("s3cret", {"x-hmac-signature": headers["X-Hmac-Signature"]}, EVENT)
    changed = EVENT.replace(b"delivered", b"delivereD")
    assert len(changed) == len(EVENT) and not mapping.verify_webhook("s3cret", headers, changed)
    assert not mapping.verify_webhook("s3creT", headers, EVENT)


def test_the_secret_is_nfkd_normalised() -> None:
    composed, decomposed = "caf\u00e9-\ufb01", "cafe\u0301-fi"  # é and the ﬁ ligature, then as NFKD spells them
    signed = {"X-Hmac-Signature": mapping.webhook_signature(decomposed, EVENT)}
    assert mapping.verify_webhook(composed, signed, EVENT)


@pytest.mark.parametrize("headers", [{}, {"X-Hmac-Signature": ""}, {"X-Hmac-Signature": RFC4231_HEX},
                                     {"X-Hmac-Signature": "hmac-sha256-hex=zz\u00e9"}])
def test_a_missing_or_malformed_signature_does_not_verify(headers: dict[str, str]) -> None:
    assert not mapping.verify_webhook("s3cret", headers, EVENT)


def test_a_blank_secret_verifies_nothing() -> None:
    assert not mapping.verify_webhook(" ", {"X-Hmac-Signature": mapping.webhook_signature(" ", EVENT)}, EVENT)


# ---------------------------------------------------------------------- label files

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20 + b"\x00\x00\x00\x00IEND\xaeB`\x82"
PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"


@pytest.mark.parametrize(("content_type", "content", "whole"), [
    ("image/png", PNG, True),
    ("image/png", PNG[:-6], False),  # cut short
    ("application/pdf", PDF, True),
    ("application/pdf; charset=binary", PDF, True),
    ("application/pdf", PDF[:20], False),
    ("application/zpl", b"^XA^FO50,50^FDClerk^FS^XZ", True),
    ("application/json", b'{"data": {"orders"', False),
    ("text/html", b"<html>502 Bad Gateway</html>", False),
    ("image/png", b"", False),
])
def test_a_label_file_is_whole_and_what_it_claims(content_type: str, content: bytes, whole: bool) -> None:
    assert mapping.is_label_file(content_type, content) is whole
