"""Restock tasks: one database unit of work or one supplier email each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from domain.purchasing import DraftPurchaseOrder
from integrations.mail import TransientMailError
from integrations.settings import cached_settings
from models import purchasing_store, restock
from models.db import unit_of_work
from models.restock import CatalogTerms
from tasks.purchase_mail import send_purchase_order_once

# History is large: never hash it for a cache key.
restock_task = task(cache_policy=NO_CACHE)


def _db() -> str:
    return cached_settings().database_url


@dataclass(frozen=True, slots=True)
class RestockInputs:
    """Everything the nightly review reads, in one consistent snapshot."""

    first_day: date
    days: int
    terms: list[CatalogTerms]
    sales: list[tuple[str, int, int]]
    on_hand_changes: list[tuple[str, int, int]]
    levels: dict[str, tuple[int, int]]
    incoming: dict[str, int]
    lead_times: dict[str, list[float]]


@restock_task(name="load-restock-inputs")
def load_restock_inputs(review_day: date, days: int) -> RestockInputs:
    """The catalog's terms, `days` of sales and on-hand history up to `review_day`, levels
    and open purchase orders."""
    first = review_day - timedelta(days=days)
    with unit_of_work(_db()) as session:
        return RestockInputs(
            first, days, restock.catalog_terms(session), restock.daily_sales(session, first, review_day),
            restock.daily_on_hand_changes(session, first, review_day), restock.stock_levels(session),
            restock.incoming(session), restock.lead_times(session),
        )


@restock_task(name="store-restock-figures")
def store_restock_figures(rows: list[dict[str, Any]]) -> None:
    with unit_of_work(_db()) as session:
        purchasing_store.store_restock_figures(session, rows)


@restock_task(name="create-purchase-orders")
def create_purchase_orders(
    drafts: list[DraftPurchaseOrder], review_day: date, flow_run_id: str | None
) -> purchasing_store.Created:
    with unit_of_work(_db()) as session:
        return purchasing_store.create_purchase_orders(session, drafts, review_day, "flow:restock-check", flow_run_id)


@restock_task(name="find-purchase-orders-awaiting-approval")
def find_purchase_orders_awaiting_approval() -> list[str]:
    with unit_of_work(_db()) as session:
        return purchasing_store.awaiting_approval(session)


@restock_task(name="find-unsent-purchase-orders")
def find_unsent_purchase_orders() -> list[str]:
    with unit_of_work(_db()) as session:
        return purchasing_store.unsent(session)


# A mail server's 4xx or a dropped connection passes; a 5xx refusal will not.
@restock_task(name="send-purchase-order", retries=3, retry_delay_seconds=[5, 30, 120],
              retry_condition_fn=lambda task, run, state: isinstance(state.result(raise_on_failure=False), TransientMailError))
def send_purchase_order(number: str, flow_run_id: str | None) -> str:
    """Emails an approved purchase order to its supplier exactly once; returns its Message-ID."""
    return send_purchase_order_once(_db(), number, flow_run_id)
