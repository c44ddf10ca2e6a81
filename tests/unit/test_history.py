"""Daily history from sales and ledger sums: stockouts and unknown stock told apart."""

from __future__ import annotations

import numpy as np

from domain.history import daily_history


def test_sales_land_on_their_sku_and_day_and_other_skus_are_ignored() -> None:
    history = daily_history(["A", "B"], 4, [("A", 0, 2), ("B", 3, 5), ("A", 0, 1), ("Z", 1, 9)], [])
    assert history.sold.tolist() == [[3, 0, 0, 0], [0, 0, 0, 5]]


def test_days_without_stock_on_hand_and_without_sales_are_stockouts() -> None:
    # 2 on hand before the window; sold out on day 1; restocked during day 3.
    history = daily_history(["A"], 5, [("A", 0, 1), ("A", 1, 1)], [("A", -1, 2), ("A", 1, -2), ("A", 3, 4)])
    assert history.in_stock.tolist() == [[True, True, False, False, True]]
    assert history.first_active.tolist() == [0]


def test_before_the_first_ledger_entry_stock_is_unknown_and_counts_as_in_stock() -> None:
    # Stock first imported on day 4; the SKU sold on day 1; days 2 and 3 had no sale.
    history = daily_history(["A"], 6, [("A", 1, 2)], [("A", 4, 10)])
    assert history.in_stock.tolist() == [[True, True, True, True, True, True]]
    assert history.first_active.tolist() == [1]


def test_a_new_sku_is_active_from_its_first_stock_and_one_never_stocked_nor_sold_never() -> None:
    history = daily_history(["NEW", "IDLE"], 7, [("NEW", 5, 1)], [("NEW", 2, 6)])
    assert history.first_active.tolist() == [3, 7]
    assert history.in_stock[0].tolist() == [True, True, True, True, True, True, True]
    np.testing.assert_array_equal(history.sold[1], np.zeros(7))


def test_a_sale_proves_stock_even_when_the_ledger_says_none() -> None:
    # The shelf count lags: the ledger read 0 but a unit sold on day 2.
    history = daily_history(["A"], 3, [("A", 2, 1)], [("A", -1, 0), ("A", 0, 0)])
    assert history.in_stock.tolist() == [[False, False, True]]
    assert history.first_active.tolist() == [2]
