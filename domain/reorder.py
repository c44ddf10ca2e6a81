"""Reorder arithmetic for the nightly restock check: demand, safety stock and order sizes.

Every function works on all SKUs at once. Per-SKU figures are arrays of shape (skus,);
daily history is shaped (skus, days), oldest day first. Weekdays count from Monday = 0,
as `date.weekday()` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike

WEEK = 7
# Weekday factors are shrunk toward 1 as if each weekday had also seen this many days
# selling exactly the SKU's mean: 4 observed Saturdays count half, 52 count 93%. A month
# of one weekday is about what it takes before its own shape is worth trusting.
SEASONALITY_PRIOR_DAYS = 4
# Summed factors leave float noise (7.000000001); it must not buy a unit.
_DECIMALS_KEPT = 6


class ReorderInputError(ValueError):
    """History or supplier figures the restock check cannot use; the message says which."""


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise ReorderInputError(reason)


@dataclass(frozen=True, slots=True)
class Demand:
    """What each SKU sells, read only from the days it could sell.

    Attributes:
        observed_days: days counted (on sale and in stock); 0 means no usable history,
            and then mean and std are 0 and the factors 1.
        mean: units per day over the observed days.
        std: sample standard deviation of those days' units (0 below two days). Weekday
            swings are part of it, which errs toward more safety stock.
        weekday_factors: shape (skus, 7), Monday first: a weekday's units over the mean,
            shrunk toward 1 (see `read_demand`).
    """

    observed_days: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    weekday_factors: np.ndarray

    def over(self, days: ArrayLike, start_weekday: int) -> np.ndarray:
        """Expected units over `days` days (one for all or per SKU) from `start_weekday`.

        The sum of mean × factor over the days; a part day counts pro rata.
        """
        return (self.weekday_factors * _weekday_counts(days, start_weekday)).sum(axis=1) * self.mean


def _weekday_counts(days: ArrayLike, start_weekday: int) -> np.ndarray:
    """How many of each weekday a horizon holds, shape (..., 7)."""
    span = np.asarray(days, dtype=float)[..., None]
    whole = np.floor(span)
    offset = (np.arange(WEEK) - start_weekday) % WEEK  # days from the start to each weekday
    tail = whole % WEEK
    return whole // WEEK + (offset < tail) + (span - whole) * (offset == tail)


def read_demand(sold: ArrayLike, in_stock: ArrayLike, first_active: ArrayLike, first_weekday: int) -> Demand:
    """Reads each SKU's daily demand from its sales, counting only days it could sell.

    A day before the SKU's first active day, or a day it had no available stock, sold
    nothing because it could not: it is left out of the mean, the spread and the weekday
    factors instead of reading as zero demand.

    Weekday factors are shrunk toward 1 by `SEASONALITY_PRIOR_DAYS` (k) pseudo-days at the
    SKU's mean: factor_w = (units_w + k·mean) / ((days_w + k)·mean), where units_w and
    days_w are the SKU's units and observed days on weekday w. A weekday seen on few days
    stays near 1; with many days it tends to its own mean over the overall mean.

    Args:
        sold: units sold per SKU per day, shape (skus, days), oldest day first.
        in_stock: True where the SKU had available stock that day, same shape.
        first_active: per SKU, the index of the first day it was on sale and stocked.
        first_weekday: the weekday of day 0.

    Raises:
        ReorderInputError: when the shapes do not line up.
    """
    sold = np.asarray(sold, dtype=float)
    in_stock = np.asarray(in_stock, dtype=bool)
    first_active = np.asarray(first_active)
    _require(sold.ndim == 2, "sold must be shaped (skus, days)")
    _require(in_stock.shape == sold.shape, "in_stock must be shaped like sold")
    _require(first_active.shape == sold.shape[:1], "first_active must hold one day per SKU")
    days = sold.shape[1]
    observed = in_stock & (np.arange(days) >= first_active[:, None])
    counted = sold * observed
    observed_days = observed.sum(axis=1)
    mean = counted.sum(axis=1) / np.maximum(observed_days, 1)
    # Σx² − n·mean² spares a second (skus, days) array; units are small enough that the
    # cancellation stays far below a unit, and the clip drops its last-bit noise.
    squares = np.einsum("sd,sd->s", counted, counted) - observed_days * mean**2
    variance = np.maximum(squares, 0.0) / np.maximum(observed_days - 1, 1)
    std = np.where(observed_days > 1, np.sqrt(variance), 0.0)
    units_w = _by_weekday(counted, first_weekday)
    days_w = _by_weekday(observed, first_weekday)
    prior = SEASONALITY_PRIOR_DAYS * mean[:, None]
    scale = (days_w + SEASONALITY_PRIOR_DAYS) * mean[:, None]
    factors = np.divide(units_w + prior, scale, out=np.ones_like(scale), where=scale > 0)
    return Demand(observed_days, mean, std, factors)


def _by_weekday(daily: np.ndarray, first_weekday: int) -> np.ndarray:
    """Sums each SKU's days by weekday, shape (skus, 7), Monday first."""
    totals = np.empty((daily.shape[0], WEEK))
    for column in range(WEEK):  # every 7th day from one start is one weekday
        totals[:, (first_weekday + column) % WEEK] = daily[:, column::WEEK].sum(axis=1)
    return totals


def safety_stock(
    mean: ArrayLike, std: ArrayLike, lead_time: ArrayLike, lead_time_std: ArrayLike, service_level: float
) -> np.ndarray:
    """Units held against swings in demand and in lead time: z·√(LT·σd² + d²·σLT²).

    z is the standard normal quantile of the service level, the chance of not running
    out during a lead time (1.645 at 0.95).

    Raises:
        ReorderInputError: when the service level is not strictly between 0 and 1.
    """
    _require(0 < service_level < 1, "service_level must be strictly between 0 and 1")
    z = NormalDist().inv_cdf(service_level)
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    return z * np.sqrt(lead_time * std**2 + mean**2 * np.square(lead_time_std))


def order_quantity(
    position: ArrayLike, reorder_point: ArrayLike, order_up_to: ArrayLike, moq: ArrayLike, pack_size: ArrayLike
) -> np.ndarray:
    """Units to order: once the position is at or below the reorder point, up to the top.

    The shortfall (order_up_to − position) is raised to the minimum order quantity, then
    rounded up to whole packs. Nothing is ordered above the reorder point, nor when there
    is no shortfall (a SKU with no demand and no stock does not buy its moq). With
    reorder_point = min and order_up_to = max this is Odoo's min/max rule.

    Raises:
        ReorderInputError: when a pack holds less than one unit or the moq is negative.
    """
    position, reorder_point, order_up_to, moq, pack_size = (
        np.asarray(v, dtype=np.int64) for v in (position, reorder_point, order_up_to, moq, pack_size)
    )
    _require(bool(np.all(pack_size >= 1)), "pack_size must be at least 1")
    _require(bool(np.all(moq >= 0)), "moq must not be negative")
    shortfall = np.maximum(order_up_to - position, moq)
    packs = -(-shortfall // pack_size)
    return np.where((position <= reorder_point) & (position < order_up_to), packs * pack_size, 0)


def days_of_cover(available: ArrayLike, mean: ArrayLike) -> np.ndarray:
    """Days the available units last at the mean demand; infinite when nothing sells.

    Infinity, not None, keeps the array numeric and never compares below a lead time.
    """
    available, mean = np.broadcast_arrays(np.asarray(available, dtype=float), np.asarray(mean, dtype=float))
    return np.divide(available, mean, out=np.full(mean.shape, np.inf), where=mean > 0)


def _whole_units(units: np.ndarray) -> np.ndarray:
    return np.ceil(np.round(units, _DECIMALS_KEPT)).astype(np.int64)


@dataclass(frozen=True, slots=True)
class RestockPlan:
    """Per-SKU restock figures of one check; every array is shaped (skus,).

    Attributes:
        safety_stock: units, unrounded.
        reorder_point: whole units; ordering starts when the position is at or below it.
        order_up_to: whole units the order brings the position to.
        order: units to order now (0 when the position is above the reorder point).
        days_of_cover: available / mean daily demand; infinite for SKUs that sell nothing.
        at_risk: True when the cover is shorter than the lead time.
    """

    safety_stock: np.ndarray
    reorder_point: np.ndarray
    order_up_to: np.ndarray
    order: np.ndarray
    days_of_cover: np.ndarray
    at_risk: np.ndarray


def plan_restock(
    demand: Demand,
    *,
    lead_time: ArrayLike,
    lead_time_std: ArrayLike,
    available: ArrayLike,
    incoming: ArrayLike,
    moq: ArrayLike,
    pack_size: ArrayLike,
    start_weekday: int,
    service_level: float,
    review_days: int,
) -> RestockPlan:
    """Reorder points, order-up-to levels and orders for every SKU of `demand`.

    Args:
        demand: from `read_demand`.
        lead_time: supplier lead time per SKU, days (may be fractional).
        lead_time_std: standard deviation of that lead time, days.
        available: units on hand less reserved, per SKU.
        incoming: units on open purchase orders, per SKU; with `available` the position.
        moq: minimum order quantity per SKU.
        pack_size: the supplier's pack multiple per SKU.
        start_weekday: the weekday of the first day of the lead time (usually tomorrow).
        service_level: `restock.service_level`.
        review_days: `restock.review_days`, days until the next check can order again.

    Raises:
        ReorderInputError: on a negative lead time, spread or review period, or a bad
            service level, moq or pack size.
    """
    lead_time = np.asarray(lead_time, dtype=float)
    _require(bool(np.all(lead_time >= 0)), "lead_time must not be negative")
    _require(bool(np.all(np.asarray(lead_time_std) >= 0)), "lead_time_std must not be negative")
    _require(review_days >= 0, "review_days must not be negative")
    buffer = safety_stock(demand.mean, demand.std, lead_time, lead_time_std, service_level)
    reorder_point = _whole_units(demand.over(lead_time, start_weekday) + buffer)
    order_up_to = _whole_units(demand.over(lead_time + review_days, start_weekday) + buffer)
    position = np.asarray(available) + np.asarray(incoming)
    cover = days_of_cover(available, demand.mean)
    return RestockPlan(
        safety_stock=buffer,
        reorder_point=reorder_point,
        order_up_to=order_up_to,
        order=order_quantity(position, reorder_point, order_up_to, moq, pack_size),
        days_of_cover=cover,
        at_risk=cover < lead_time,
    )
