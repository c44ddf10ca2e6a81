"""Worker roles for the restock benchmark (`bench.restock`), run by `bench.worker`.

Roles:
    restock_ours: the real `restock-check` flow (deployments.runs.run_flow), after a warm-up.
    restock_floor: one SQL query for the daily sales, one for catalog terms and stock levels,
        the same vectorised math (`domain.reorder`), nothing stored.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np

from bench.harness import Stopwatch, current_rss_mb, peak_rss_mb


def restock_ours(spec: dict[str, Any]) -> dict[str, Any]:
    from bench.worker import measure_flow

    return measure_flow("restock_ours", "restock-check", {"review_day": spec["review_day"], "history_days": spec["days"]},
                        "flows.restock_check")


def restock_floor(spec: dict[str, Any]) -> dict[str, Any]:
    import sqlalchemy

    from domain.reorder import plan_restock, read_demand
    from integrations.settings import cached_settings
    from models.db import engine_for

    watch = Stopwatch()
    review_day = date.fromisoformat(spec["review_day"])
    first = review_day - timedelta(days=spec["days"])
    url = cached_settings().database_url
    engine = engine_for(url)
    sqlite = engine.dialect.name == "sqlite"
    day = ("CAST(julianday(date(o.placed_at)) - julianday(:first) AS INTEGER)" if sqlite
           else "(CAST(o.placed_at AS DATE) - CAST(:first AS DATE))")
    rss_before = current_rss_mb()
    with watch.time("run"), engine.connect() as connection:
        terms = connection.execute(sqlalchemy.text(
            "SELECT v.sku, coalesce(v.lead_time_days, 7), coalesce(v.moq, 0), coalesce(v.pack_size, 1),"
            " coalesce(s.on_hand, 0) - coalesce(s.reserved, 0) FROM variants v LEFT JOIN"
            " (SELECT sku, sum(on_hand_delta) AS on_hand, sum(reserved_delta) AS reserved FROM stock_movements"
            " GROUP BY sku) s ON s.sku = v.sku ORDER BY v.sku")).all()
        row_of = {sku: row for row, (sku, *_) in enumerate(terms)}
        sales = connection.execute(sqlalchemy.text(
            f"SELECT l.sku, {day}, sum(l.quantity) FROM order_lines l JOIN orders o ON o.id = l.order_id"
            " WHERE o.status != 'cancelled' AND o.placed_at >= :start AND o.placed_at < :end GROUP BY l.sku, 2"),
            {"first": first.isoformat(), "start": f"{first} 00:00:00", "end": f"{review_day} 00:00:00"}).all()
        sold = np.zeros((len(terms), spec["days"]))
        rows = np.fromiter((row_of[sku] for sku, _, _ in sales), dtype=np.int64, count=len(sales))
        cols = np.fromiter((int(d) for _, d, _ in sales), dtype=np.int64, count=len(sales))
        sold[rows, cols] = np.fromiter((u for _, _, u in sales), dtype=float, count=len(sales))
        first_active = np.where(sold.any(axis=1), np.argmax(sold > 0, axis=1), spec["days"])
        demand = read_demand(sold, np.ones_like(sold, dtype=bool), first_active, first.weekday())
        columns = np.array([t[1:] for t in terms], dtype=np.int64).T
        plan = plan_restock(demand, lead_time=columns[0], lead_time_std=np.zeros(len(terms)), available=columns[3],
                            incoming=np.zeros(len(terms), dtype=np.int64), moq=columns[1], pack_size=columns[2],
                            start_weekday=review_day.weekday(), service_level=0.95, review_days=7)
    return {"role": "restock_floor", "times": watch.times, "skus": len(terms), "sales_rows": len(sales),
            "below_reorder_point": int((plan.order > 0).sum()), "rss_after_start_mb": rss_before,
            "peak_rss_mb": peak_rss_mb()}


ROLES = {"restock_ours": restock_ours, "restock_floor": restock_floor}
