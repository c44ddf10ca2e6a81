"""Shipping rules, each test named for the rule it shows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from domain.shipping import (
    MAX_PARCEL_GRAMS,
    PACKAGING_GRAMS,
    Candidate,
    RateOption,
    batch_problems,
    check_packing,
    choose_rate,
    parcel_weight,
)

MONDAY = date(2026, 11, 23)
RATES = [
    RateOption("r-ground", "USPS", "GroundAdvantage", Decimal("5.10"), 5),
    RateOption("r-priority", "USPS", "Priority", Decimal("8.70"), 2),
    RateOption("r-express", "USPS", "Express", Decimal("27.90"), 1),
    RateOption("r-ups", "UPS", "Ground", Decimal("5.10"), 4),
]


def test_a_parcel_weighs_its_lines_plus_packaging() -> None:
    assert parcel_weight({"MUG-1": 2, "TEE-1": 1}, {"MUG-1": 350, "TEE-1": 180}).grams == 700 + 180 + PACKAGING_GRAMS


def test_a_missing_weight_is_named_never_guessed() -> None:
    weighed = parcel_weight({"MUG-1": 1, "CAP-1": 1, "BAG-1": 1}, {"MUG-1": 350, "CAP-1": None, "BAG-1": 0})
    assert (weighed.grams, weighed.missing) == (None, ("BAG-1", "CAP-1"))


def test_the_cheapest_rate_that_keeps_the_promise_wins() -> None:
    assert choose_rate(RATES, MONDAY, date(2026, 11, 25)).id == "r-priority"  # 2 days: Wednesday
    assert choose_rate(RATES, MONDAY, date(2026, 11, 30)).id == "r-ups"  # same price, a day sooner


def test_without_a_promise_the_cheapest_rate_wins() -> None:
    assert choose_rate(RATES, MONDAY, None).id == "r-ups"


def test_when_no_rate_keeps_the_promise_the_fastest_is_bought() -> None:
    assert choose_rate(RATES, MONDAY, date(2026, 11, 23)).id == "r-express"


def test_a_rate_without_an_estimate_never_counts_as_on_time() -> None:
    rates = [RateOption("r-cheap", "X", "Economy", Decimal("1.00"), None), RATES[1]]
    assert choose_rate(rates, MONDAY, date(2026, 11, 30)).id == "r-priority"
    assert choose_rate([], MONDAY, None) is None


def test_a_batch_with_an_impossible_weight_an_empty_address_or_a_repeated_order_stops() -> None:
    good = Candidate(1, "shopify #1", 900, "1 Main St", "US")
    assert batch_problems([good]) == []
    found = batch_problems([good, Candidate(2, "shopify #2", 0, "2 Main St", "US"),
                            Candidate(3, "shopify #3", MAX_PARCEL_GRAMS + 1, "3 Main St", "US"),
                            Candidate(4, "shopify #4", 500, " ", "US"), Candidate(5, "shopify #1", 900, "1 Main St", "US")])
    assert [(p.key, p.reason) for p in found] == [
        (1, "duplicate_order"), (2, "impossible_weight"), (3, "impossible_weight"), (4, "incomplete_address"),
        (5, "duplicate_order")]
    assert found[2].detail == f"shopify #3 weighs {MAX_PARCEL_GRAMS + 1} g"


def test_packing_names_what_is_missing_and_what_is_extra() -> None:
    check = check_packing({"MUG-1": 2, "TEE-1": 1}, ["MUG-1", "TEE-1", "CAP-9"])
    assert (check.matches, check.missing, check.extra) == (False, {"MUG-1": 1}, {"CAP-9": 1})
    assert check_packing({"MUG-1": 2}, ["MUG-1", "MUG-1"]).matches
    assert check_packing({"MUG-1": 1}, ["MUG-1", "MUG-1"]).extra == {"MUG-1": 1}


def test_the_lane_is_a_zips_national_area_or_the_country() -> None:
    from domain.shipping import lane

    assert (lane("US", "97201"), lane("CA", "M5V 2T6"), lane("US", None), lane(None, "97201")) == ("US-9", "CA", "US", "unknown")
