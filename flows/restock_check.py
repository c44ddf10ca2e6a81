"""restock-check: nightly demand review, reorder points, purchase orders made and sent once.

read (history, levels, open POs) → decide (demand, reorder math, drafts by supplier) →
act (store figures, create POs, mail the approved ones) → alert (at risk, stockouts, waiting).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

from domain.attention import summarise_restock
from domain.history import daily_history
from domain.purchasing import Need, draft_purchase_orders, lead_time_spread
from domain.reorder import RestockPlan, plan_restock, read_demand
from flows.alerting import tell_once, trouble_reported
from flows.approvals import ask_in_the_ui
from integrations.settings import ClerkToml, cached_settings
from models.purchasing_store import PURCHASE_ORDER
from tasks.restock import (
    RestockInputs,
    create_purchase_orders,
    find_purchase_orders_awaiting_approval,
    find_unsent_purchase_orders,
    load_restock_inputs,
    send_purchase_order,
    store_restock_figures,
)

FLOW = "restock-check"
DEFAULT_LEAD_TIME_DAYS = 7


def _plan(inputs: RestockInputs, review_day: date, config: ClerkToml) -> tuple[list[str], RestockPlan, np.ndarray, np.ndarray]:
    """The reorder math over every catalog SKU; returns (skus, plan, available, mean demand)."""
    skus = [term.sku for term in inputs.terms]
    history = daily_history(skus, inputs.days, inputs.sales, inputs.on_hand_changes)
    demand = read_demand(history.sold, history.in_stock, history.first_active, inputs.first_day.weekday())
    suppliers = config.suppliers
    lead_time = np.array([
        term.lead_time_days if term.lead_time_days is not None
        else suppliers[term.supplier].lead_time_days if term.supplier in suppliers else DEFAULT_LEAD_TIME_DAYS
        for term in inputs.terms
    ], dtype=float)
    spread = lead_time_spread(inputs.lead_times)
    levels = [inputs.levels.get(sku, (0, 0)) for sku in skus]
    available = np.array([on_hand - reserved for on_hand, reserved in levels], dtype=np.int64)
    plan = plan_restock(
        demand,
        lead_time=lead_time,
        lead_time_std=np.array([spread.get(term.supplier or "", 0.0) for term in inputs.terms]),
        available=available,
        incoming=np.array([inputs.incoming.get(sku, 0) for sku in skus], dtype=np.int64),
        moq=np.array([term.moq or 0 for term in inputs.terms], dtype=np.int64),
        pack_size=np.array([term.pack_size or 1 for term in inputs.terms], dtype=np.int64),
        start_weekday=review_day.weekday(),
        service_level=config.restock.service_level,
        review_days=config.restock.review_days,
    )
    return skus, plan, available, demand.mean


def _figures(skus: list[str], plan: RestockPlan, mean: np.ndarray, now: datetime) -> list[dict[str, Any]]:
    cover = np.where(np.isinf(plan.days_of_cover), np.nan, np.round(plan.days_of_cover, 2))
    return [
        {"sku": sku, "reorder_point": int(point), "order_up_to": int(top), "mean_daily_demand": round(float(daily), 4),
         "days_of_cover": None if np.isnan(days) else float(days), "checked_at": now}
        for sku, point, top, daily, days in zip(
            skus, plan.reorder_point.tolist(), plan.order_up_to.tolist(), mean.tolist(), cover.tolist(), strict=True)
    ]


@flow(name=FLOW)
def restock_check(review_day: str | None = None, history_days: int = 365) -> dict[str, Any]:
    """Reviews every SKU's stock against its demand and orders what falls short, once a night.

    Args:
        review_day: the night reviewed, `YYYY-MM-DD` (default: today, UTC). A rerun for the
            same day finds its purchase orders and adds none.
        history_days: days of sales read before `review_day`.

    Returns:
        The run's summary (the contract's `--json` object, without `state`).
    """
    settings = cached_settings()
    config = settings.toml
    day = date.fromisoformat(review_day) if review_day else datetime.now(UTC).date()
    logger = get_run_logger()
    with trouble_reported(FLOW):
        inputs = load_restock_inputs(day, history_days)
        skus, plan, available, mean = _plan(inputs, day, config)
        store_restock_figures(quote(_figures(skus, plan, mean, datetime.now(UTC))))
        terms = {term.sku: term for term in inputs.terms}
        below = [sku for sku, units in zip(skus, plan.order.tolist(), strict=True) if units > 0]
        no_supplier = [sku for sku in below if not terms[sku].supplier]
        needs = [Need(sku, terms[sku].supplier or "", units, terms[sku].cost or Decimal(0))
                 for sku, units in zip(skus, plan.order.tolist(), strict=True) if units > 0 and terms[sku].supplier]
        currencies = {name: supplier.currency for name, supplier in config.suppliers.items()}
        drafts = draft_purchase_orders(needs, day, currencies, config.approvals.purchase_order_above)
        created = create_purchase_orders(quote(drafts), day, flow_run.get_id())
        sent, unsent = [], []
        for number in find_unsent_purchase_orders():
            state = send_purchase_order(number, flow_run.get_id(), return_state=True)
            (sent if state.is_completed() else unsent).append(number)
            if not state.is_completed():
                logger.warning("%s not sent: %s", number, state.message)
        stockouts = [sku for sku, units, daily in zip(skus, available.tolist(), mean.tolist(), strict=True)
                     if units <= 0 and daily > 0]
        at_risk = [sku for sku, risky, units in zip(skus, plan.at_risk.tolist(), available.tolist(), strict=True)
                   if risky and units > 0]
        # Every order still waiting, not just tonight's: the alert and the count say what waits now.
        waiting = find_purchase_orders_awaiting_approval()
        forms = ask_in_the_ui(PURCHASE_ORDER, created.awaiting_approval)
        alerts_sent = _tell_clerks(at_risk, stockouts, no_supplier, waiting, forms)
    summary = {
        "flow": FLOW,
        "review_day": day.isoformat(),
        "skus_checked": len(skus),
        "below_reorder_point": len(below),
        "purchase_orders_created": len(created.created),
        "awaiting_approval": len(waiting),
        "purchase_orders_sent": len(sent),
        "purchase_orders_unsent": len(unsent),
        "at_risk": len(at_risk),
        "stockouts": len(stockouts),
        "no_supplier": len(no_supplier),
        "alerts_sent": alerts_sent,
    }
    create_table_artifact([{"measure": key, "value": value} for key, value in summary.items() if key != "flow"],
                          key="restock-check-summary", description=f"Restock check for {day}")
    logger.info("restock-check: %s", summary)
    return summary


def _tell_clerks(
    at_risk: list[str], stockouts: list[str], no_supplier: list[str], awaiting: list[str], forms: dict[str, str]
) -> int:
    """One message for what needs a person, unless the very same was already told."""
    return tell_once(FLOW, summarise_restock(at_risk, stockouts, no_supplier, awaiting), forms)
