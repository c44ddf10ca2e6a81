"""Tracking rules, each test named for the rule it shows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from domain.tracking import Shipped, Watched, is_late, performance, recommend, summarise_tracking

TODAY = date(2026, 11, 26)


def test_a_parcel_is_late_when_delivered_after_the_promise_or_not_delivered_past_it() -> None:
    assert is_late("in_transit", date(2026, 11, 25), TODAY, None)
    assert not is_late("in_transit", TODAY, TODAY, None)
    assert is_late("delivered", date(2026, 11, 20), TODAY, date(2026, 11, 21))
    assert not is_late("delivered", date(2026, 11, 20), TODAY, date(2026, 11, 20))
    assert not is_late("returned_to_sender", date(2026, 11, 1), TODAY, None)
    assert not is_late("in_transit", None, TODAY, None)


def test_one_alert_names_exceptions_and_late_parcels_by_order_and_carrier_only() -> None:
    watched = [Watched(1, "#1001", "USPS", "exception", False), Watched(2, "#1002", "UPS", "in_transit", True),
               Watched(3, "#1003", "USPS", "in_transit", False)]
    text = summarise_tracking("track-shipments", watched)
    assert text is not None and text.title == "track-shipments: 1 in exception, 1 late"
    assert text.lines == ("exception: #1001 (USPS)", "late: #1002 (UPS, in transit)")
    assert summarise_tracking("track-shipments", watched).incident == text.incident  # same picture: same incident
    onward = [watched[0], Watched(2, "#1002", "UPS", "out_for_delivery", True), watched[2]]
    assert summarise_tracking("track-shipments", onward).incident == text.incident  # still late: no news
    moved = [Watched(2, "#1002", "UPS", "exception", True)]
    assert summarise_tracking("track-shipments", moved).incident != text.incident
    assert summarise_tracking("track-shipments", [watched[2]]) is None


def _parcel(service: str, cost: str, days: float | None, promised_days: int = 3, status: str = "delivered") -> Shipped:
    shipped = datetime(2026, 11, 2, 15, tzinfo=UTC)
    delivered = shipped + timedelta(days=days) if days is not None else None
    return Shipped("USPS", service, "zone-5", Decimal(cost), shipped, delivered, shipped.date() + timedelta(days=promised_days),
                   status if delivered is None or status != "delivered" else "delivered")


def test_performance_gives_on_time_rate_transit_days_exceptions_and_cost_per_parcel() -> None:
    parcels = [_parcel("Priority", "8.00", d) for d in (1, 2, 2, 3, 5)] + [_parcel("Priority", "8.00", None, status="exception")]
    [figure] = performance(parcels)
    assert (figure.parcels, figure.delivered, figure.on_time_rate) == (6, 5, 0.8)
    assert (figure.mean_transit_days, figure.p90_transit_days) == (2.6, 5.0)
    assert (figure.exception_rate, figure.cost_per_parcel) == (round(1 / 6, 4), Decimal("8.00"))


def test_a_cheaper_service_as_punctual_on_a_lane_is_recommended() -> None:
    parcels = [_parcel("Priority", "8.70", 2) for _ in range(6)] + [_parcel("GroundAdvantage", "5.10", 3) for _ in range(6)] \
        + [_parcel("Express", "27.90", 1) for _ in range(2)]  # too few to judge
    [advice] = recommend(performance(parcels))
    assert (advice.zone, advice.instead_of, advice.use, advice.saving_per_parcel) == (
        "zone-5", "USPS Priority", "USPS GroundAdvantage", Decimal("3.60"))
    late_ground = [_parcel("GroundAdvantage", "5.10", 6) for _ in range(6)]
    assert recommend(performance([_parcel("Priority", "8.70", 2) for _ in range(6)] + late_ground)) == []
