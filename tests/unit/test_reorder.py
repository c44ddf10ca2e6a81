"""Reorder arithmetic, as worked examples computed by hand and as properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.reorder import (
    SEASONALITY_PRIOR_DAYS,
    Demand,
    ReorderInputError,
    days_of_cover,
    order_quantity,
    plan_restock,
    read_demand,
    safety_stock,
)

MONDAY, THURSDAY, FRIDAY, SATURDAY = 0, 3, 4, 5
ALWAYS = 0  # first active day: the SKU was on sale for the whole history


def demand_of(*sold: list[float], in_stock: list[list[bool]] | None = None, first_active: list[int] | None = None,
              first_weekday: int = MONDAY) -> Demand:
    """Demand of SKUs whose history starts on `first_weekday`, in stock every day unless told."""
    grid = np.array(sold)
    return read_demand(grid, np.ones(grid.shape, bool) if in_stock is None else np.array(in_stock),
                       np.full(len(sold), ALWAYS) if first_active is None else np.array(first_active), first_weekday)


def saturdays_only(weeks: int) -> list[int]:
    """A Monday-first history selling 7 units every Saturday and nothing else."""
    return [7 if day % 7 == SATURDAY else 0 for day in range(7 * weeks)]


def plan(demand: Demand, **overrides):  # type: ignore[no-untyped-def]
    supply = dict(lead_time=4, lead_time_std=1, available=30, incoming=20, moq=0, pack_size=10,
                  start_weekday=MONDAY, service_level=0.95, review_days=7)
    return plan_restock(demand, **(supply | overrides))


ORDERS = [
    # Odoo's min/max example (17/19 round up): 8 ≤ min 10 → max 40 − 8 = 32 → ⌈32/6⌉ = 6 packs = 36.
    ("odoo min/max rule orders max minus forecast in multiples", dict(position=8, reorder_point=10,
     order_up_to=40, moq=0, pack_size=6), 36),
    # 25 − 18 = 7 short, but the supplier sells no fewer than 50.
    ("moq dominates a small shortfall", dict(position=18, reorder_point=20, order_up_to=25, moq=50, pack_size=1), 50),
    # 7 short → moq 50 → ⌈50/12⌉ = 5 packs = 60.
    ("moq is rounded up to whole packs", dict(position=18, reorder_point=20, order_up_to=25, moq=50,
     pack_size=12), 60),
    # 30 − 5 = 25 → ⌈25/4⌉ = 7 packs = 28.
    ("shortfall is rounded up to whole packs", dict(position=5, reorder_point=10, order_up_to=30, moq=0,
     pack_size=4), 28),
    # 30 − 6 = 24 = 6 packs exactly: no extra pack.
    ("a shortfall of whole packs is not rounded further", dict(position=6, reorder_point=10, order_up_to=30,
     moq=0, pack_size=4), 24),
    # 10 ≤ 10: at the reorder point counts → 30 − 10 = 20.
    ("position at the reorder point orders", dict(position=10, reorder_point=10, order_up_to=30, moq=0,
     pack_size=1), 20),
    ("position above the reorder point orders nothing", dict(position=11, reorder_point=10, order_up_to=30,
     moq=5, pack_size=6), 0),
    # No demand, no stock: 0 ≤ 0 but nothing is short, so the moq is not bought.
    ("no shortfall orders nothing", dict(position=0, reorder_point=0, order_up_to=0, moq=5, pack_size=1), 0),
]


@pytest.mark.parametrize(("name", "figures", "expected"), ORDERS, ids=[c[0] for c in ORDERS])
def test_order_quantity_rules(name: str, figures: dict[str, int], expected: int) -> None:
    assert order_quantity(**figures) == expected


def test_order_quantity_is_one_vectorised_rule() -> None:
    figures = {key: [case[1][key] for case in ORDERS] for key in ORDERS[0][1]}
    assert order_quantity(**figures).tolist() == [case[2] for case in ORDERS]


def test_safety_stock_at_95_percent_covers_demand_and_lead_time_swings() -> None:
    # d = 10/day, σd = 3, LT = 4 days, σLT = 1 day, z(0.95) = 1.645:
    # √(4·3² + 10²·1²) = √136 = 11.662 → 1.645 × 11.662 = 19.18 units.
    assert safety_stock(10, 3, 4, 1, 0.95) == pytest.approx(19.18, abs=0.01)
    # A punctual supplier leaves only the demand term: 1.645 × 3 × √4 = 9.87.
    assert safety_stock(10, 3, 4, 0, 0.95) == pytest.approx(9.87, abs=0.01)


def test_reorder_point_is_lead_time_demand_plus_safety_stock_rounded_up() -> None:
    # 10 a day for 4 weeks: mean 10, σd 0, every factor (40 + 4·10) / ((4 + 4)·10) = 1.
    # Safety stock 1.645 × √(4·0 + 10²·1²) = 16.45. Reorder point ⌈4·10 + 16.45⌉ = 57;
    # order-up-to ⌈(4 + 7)·10 + 16.45⌉ = 127. Position 30 + 20 incoming = 50 ≤ 57 →
    # 127 − 50 = 77 → 8 packs of 10 = 80. Cover 30 / 10 = 3 days < 4 days lead time.
    result = plan(demand_of([10] * 28))
    assert result.safety_stock[0] == pytest.approx(16.45, abs=0.01)
    assert (result.reorder_point[0], result.order_up_to[0], result.order[0]) == (57, 127, 80)
    assert result.days_of_cover[0] == 3.0
    assert result.at_risk[0]


def test_incoming_units_count_in_the_position() -> None:
    # Same SKU with nothing on order: position 30 → 127 − 30 = 97 → 10 packs = 100.
    assert plan(demand_of([10] * 28), incoming=0).order[0] == 100


def test_position_above_reorder_point_orders_nothing_and_is_not_at_risk() -> None:
    # Position 40 + 20 = 60 > 57; cover 40 / 10 = 4 days, the lead time exactly: not short of it.
    result = plan(demand_of([10] * 28), available=40)
    assert result.order[0] == 0
    assert not result.at_risk[0]


def test_days_before_first_active_are_not_zero_demand() -> None:
    # Launched on day 14 of 28, then 2, 6, 2, 6…: counting the 14 dark days would halve
    # the mean to 2. From launch: mean 4, deviations ±2 over 14 days → σ = √(14·4 / 13) = 2.075.
    sold = [0] * 14 + [2, 6] * 7
    launched = demand_of(sold, first_active=[14])
    assert launched.observed_days[0] == 14
    assert launched.mean[0] == 4.0
    assert launched.std[0] == pytest.approx(2.075, abs=0.001)
    assert demand_of(sold).mean[0] == 2.0


def test_stockout_days_do_not_lower_demand() -> None:
    # 6 a day for 4 weeks, except days 10–16 (one of each weekday) with no stock and so no
    # sales. Counting them: 6·21 / 28 = 4.5. Left out: mean 6, σ 0, every weekday 1, a week 42.
    sold = [6] * 10 + [0] * 7 + [6] * 11
    in_stock = [[not 10 <= day <= 16 for day in range(28)]]
    demand = demand_of(sold, in_stock=in_stock)
    assert (demand.observed_days[0], demand.mean[0], demand.std[0]) == (21, 6.0, 0.0)
    assert demand.weekday_factors[0].tolist() == [1.0] * 7
    assert demand.over(7, MONDAY)[0] == 42.0
    assert demand_of(sold).mean[0] == 4.5


SATURDAY_SELLER = [
    # 8 weeks of 7 units each Saturday: mean 56 / 56 = 1. Saturday factor (56 + 4·1) / ((8 + 4)·1)
    # = 5; any other day (0 + 4) / 12 = 1/3; so a week is 5 + 6 × 1/3 = 7.
    ("a week forecasts a week of sales", 7, MONDAY, 7.0),
    ("Monday to Friday has no Saturday", 5, MONDAY, 5 / 3),  # 5 × 1/3
    ("Thursday to Monday holds the Saturday", 5, THURSDAY, 5 + 4 / 3),  # 5 + 4 × 1/3
    ("half a day counts half", 1.5, FRIDAY, 1 / 3 + 5 / 2),  # Friday, then half a Saturday
    ("two weeks from Saturday", 14, SATURDAY, 14.0),
]


@pytest.mark.parametrize(("name", "days", "start", "expected"), SATURDAY_SELLER, ids=[c[0] for c in SATURDAY_SELLER])
def test_weekday_seasonality_shapes_the_horizon(name: str, days: float, start: int, expected: float) -> None:
    assert SEASONALITY_PRIOR_DAYS == 4  # the hand sums above use k = 4
    assert demand_of(saturdays_only(weeks=8)).over(days, start)[0] == pytest.approx(expected)


def test_weekday_factors_shrink_toward_one_with_few_observations() -> None:
    # Seen raw, a Saturday seller's Saturday is 7× its mean. One Saturday observed:
    # (7 + 4) / (1 + 4) = 2.2 and other days 4/5 = 0.8. Eight: 5 (above). Fifty-two:
    # (364 + 4) / (52 + 4) = 6.571, nearing 7 as the evidence grows.
    saturday_factor = [demand_of(saturdays_only(weeks)).weekday_factors[0, SATURDAY] for weeks in (1, 8, 52)]
    assert saturday_factor == pytest.approx([2.2, 5.0, 368 / 56])
    assert demand_of(saturdays_only(1)).weekday_factors[0, MONDAY] == pytest.approx(0.8)


def test_history_starting_midweek_lines_weekdays_up() -> None:
    # The same Saturday seller with its history starting on a Saturday: same factors.
    from_saturday = demand_of(saturdays_only(8)[SATURDAY:] + [0] * SATURDAY, first_weekday=SATURDAY)
    assert from_saturday.weekday_factors[0] == pytest.approx(demand_of(saturdays_only(8)).weekday_factors[0])


def test_float_noise_does_not_buy_a_unit() -> None:
    # 14 weeks of a Saturday seller: Saturday (98 + 4) / 18, other days 4 / 18, a week
    # 7 units (summed in floats: 7.000000000000001). z(0.5) = 0, so no safety stock:
    # the reorder point is 7, not 8.
    result = plan(demand_of(saturdays_only(weeks=14)), lead_time=7, lead_time_std=0, service_level=0.5)
    assert result.reorder_point[0] == 7


def test_steady_demand_has_no_spread_even_in_fractional_units() -> None:
    # 0.7 a day: Σx² − n·mean² lands a hair below 0 in floats; the spread is 0, not NaN.
    assert demand_of([0.7] * 6).std[0] == 0.0


def test_sku_without_usable_history_has_no_demand_and_orders_nothing() -> None:
    # Never in stock: no observed day, so demand 0 (the caller sees observed_days 0),
    # no safety stock, levels 0, infinite cover, and the moq is not bought.
    demand = demand_of([0] * 14, in_stock=[[False] * 14])
    assert (demand.observed_days[0], demand.mean[0], demand.std[0]) == (0, 0.0, 0.0)
    result = plan(demand, available=0, incoming=0, moq=5)
    assert (result.safety_stock[0], result.reorder_point[0], result.order_up_to[0], result.order[0]) == (0, 0, 0, 0)
    assert result.days_of_cover[0] == math.inf
    assert not result.at_risk[0]


def test_days_of_cover_is_infinite_when_nothing_sells() -> None:
    assert days_of_cover([30, 30, 0], [10, 0, 0]).tolist() == [3.0, math.inf, math.inf]


def test_skus_together_equal_each_alone() -> None:
    rng = np.random.default_rng(7)
    sold = rng.poisson([[1.0], [4.0], [9.0]], (3, 70))
    in_stock = rng.random((3, 70)) > 0.2
    first_active = np.array([0, 30, 5])
    supply = dict(lead_time=np.array([3.0, 10.5, 6.0]), lead_time_std=np.array([0.0, 2.0, 1.5]),
                  available=np.array([5, 40, 12]), incoming=np.array([0, 10, 30]), moq=np.array([0, 12, 50]),
                  pack_size=np.array([1, 6, 24]))
    together = plan_restock(read_demand(sold, in_stock, first_active, THURSDAY), start_weekday=FRIDAY,
                            service_level=0.9, review_days=7, **supply)
    for sku in range(3):
        alone = plan_restock(read_demand(sold[[sku]], in_stock[[sku]], first_active[[sku]], THURSDAY),
                             start_weekday=FRIDAY, service_level=0.9, review_days=7,
                             **{key: value[[sku]] for key, value in supply.items()})
        for field in together.__slots__:
            assert getattr(together, field)[sku] == getattr(alone, field)[0], field
    assert together.order.any()  # the example exercises ordering, not only zeros


BAD_INPUTS = [
    ("service level of 1 has no z", lambda: safety_stock(1, 1, 1, 0, 1.0), "service_level"),
    ("a pack of no units", lambda: order_quantity(0, 5, 10, 0, 0), "pack_size"),
    ("a negative moq", lambda: order_quantity(0, 5, 10, -1, 1), "moq"),
    ("stock mask of another shape", lambda: read_demand([[1, 2]], [[True]], [0], MONDAY), "in_stock"),
    ("one first day for two SKUs", lambda: read_demand([[1], [2]], [[True], [True]], [0], MONDAY), "first_active"),
    ("a negative lead time", lambda: plan(demand_of([1] * 7), lead_time=-1), "lead_time"),
    ("a negative review period", lambda: plan(demand_of([1] * 7), review_days=-1), "review_days"),
]


@pytest.mark.parametrize(("name", "call", "reason"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_unusable_figures_are_refused_with_a_reason(name: str, call, reason: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ReorderInputError, match=reason):
        call()


units = st.integers(min_value=-50, max_value=500)


@given(position=units, reorder_point=units, order_up_to=units, moq=st.integers(0, 100), pack_size=st.integers(1, 48))
def test_an_order_is_whole_packs_at_least_the_moq_and_reaches_the_top(
    position: int, reorder_point: int, order_up_to: int, moq: int, pack_size: int
) -> None:
    order = int(order_quantity(position, reorder_point, order_up_to, moq, pack_size))
    if order:
        assert order % pack_size == 0
        assert order >= moq
        assert position + order >= order_up_to
        assert position <= reorder_point
    else:
        assert position > reorder_point or position >= order_up_to


@given(sold=st.lists(st.integers(0, 40), min_size=14, max_size=14), lead_time=st.floats(0, 60),
       lead_time_std=st.floats(0, 10), levels=st.lists(st.floats(0.01, 0.999), min_size=2, max_size=2))
def test_reorder_point_never_falls_as_service_level_rises(
    sold: list[int], lead_time: float, lead_time_std: float, levels: list[float]
) -> None:
    demand = demand_of(sold)
    low, high = sorted(levels)
    points = [plan(demand, lead_time=lead_time, lead_time_std=lead_time_std, service_level=level).reorder_point[0]
              for level in (low, high)]
    assert points[0] <= points[1]
