"""The intake quality gate: read each payload, then a great-expectations suite per batch.

Failed expectations become quarantine reason codes for the rows that failed them;
the batch itself never fails on bad data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from domain.intake import Rejection
from domain.money import ISO_4217
from domain.orders import ChannelOrder
from domain.reasons import Quarantine
from integrations.protocols import Payload, Unreadable
from integrations.wiring import order_source

# A positive whole number that fits the database's 32-bit integer column.
WHOLE_QUANTITY = r"^[1-9][0-9]{0,8}$"
ISO_4217_CODE = "^(?:" + "|".join(sorted(ISO_4217)) + ")$"
# Values worth showing a clerk in the quarantine detail (never personal data).
SHOWN = ("currency", "quantity")


def _key(length: int) -> str:
    """Keys Clerk stores and looks orders up by: no NUL (PostgreSQL refuses it), within column size."""
    return rf"^[^\x00]{{1,{length}}}$"


@dataclass(frozen=True, slots=True)
class CheckedBatch:
    orders: list[ChannelOrder]
    rejections: list[Rejection]


@cache
def _suites() -> tuple[Any, Any]:
    """Builds the GX context and both validation definitions once per process (GX imports slowly)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("intake")

    def definition(name: str, expectations: list[Any]) -> Any:
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        suite = context.suites.add(gx.ExpectationSuite(name=name))
        for expectation in expectations:
            suite.add_expectation(expectation)
        return context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))

    E = gx.expectations
    malformed = {"reason": Quarantine.MALFORMED.value}
    orders = definition("orders", [
        E.ExpectColumnValuesToMatchRegex(column="external_id", regex=_key(200), meta=malformed),
        E.ExpectColumnValuesToMatchRegex(column="number", regex=_key(100), meta=malformed),
        # A regex, not ExpectColumnValuesToBeInSet: GX re-serialises a value set for every
        # metric it plans, which made this one check cost ~0.6 s a batch however small.
        E.ExpectColumnValuesToMatchRegex(
            column="currency", regex=ISO_4217_CODE, meta={"reason": Quarantine.UNKNOWN_CURRENCY.value}
        ),
        E.ExpectColumnValuesToBeBetween(
            column="line_count", min_value=1, meta={"reason": Quarantine.NO_LINE_ITEMS.value}
        ),
    ])
    lines = definition("lines", [
        E.ExpectColumnValuesToMatchRegex(column="sku", regex=_key(200), meta=malformed),
        E.ExpectColumnValuesToMatchRegex(
            column="quantity", regex=WHOLE_QUANTITY, meta={"reason": Quarantine.INVALID_QUANTITY.value}
        ),
    ])
    return orders, lines


def _failures(definition: Any, frame: Any) -> dict[int, tuple[str, str]]:
    """Row `order` index -> (reason, detail) for every failed expectation."""
    result = definition.run(
        batch_parameters={"dataframe": frame},
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["order"]},
    )
    failed: dict[int, tuple[str, str]] = {}
    for outcome in result.results:
        if outcome.success:
            continue
        config = outcome.expectation_config
        column = config.kwargs["column"]
        for row in outcome.result.get("unexpected_index_list") or []:
            shown = f" = {row.get(column)!r}" if column in SHOWN else ""
            detail = f"{config.type} failed on {column}{shown}"
            failed.setdefault(int(row["order"]), (config.meta["reason"], detail))
    return failed


def quality_failures(orders: Sequence[ChannelOrder]) -> dict[int, tuple[str, str]]:
    """Runs the suite over a batch; returns position -> (reason, detail) of the rows that fail."""
    if not orders:
        return {}
    import pandas as pd

    orders_suite, lines_suite = _suites()
    order_frame = pd.DataFrame({
        "order": range(len(orders)),
        "external_id": [o.external_id for o in orders],
        "number": [o.number for o in orders],
        "currency": [str(o.currency) for o in orders],
        "line_count": [len(o.lines) for o in orders],
    })
    positions = [i for i, o in enumerate(orders) for _ in o.lines]
    line_frame = pd.DataFrame({
        "order": positions,
        "sku": [line.sku for o in orders for line in o.lines],
        # Canonical digits, so a channel's decimal "2.0000" (Magento) is the whole number it is.
        "quantity": ["" if line.quantity is None else format(line.quantity.normalize(), "f")
                     for o in orders for line in o.lines],
    })
    failed = _failures(orders_suite, order_frame)
    if positions:
        for position, failure in _failures(lines_suite, line_frame).items():
            failed.setdefault(position, failure)
    return failed


# A batch of payloads is large: hashing it for a cache key cost ~0.05 s per 1,000 orders.
@task(name="check-orders", cache_policy=NO_CACHE)
def check_orders(channel: str, payloads: list[Payload]) -> CheckedBatch:
    """Reads every payload (unreadable ones are `malformed`) and runs the quality suite."""
    source = order_source(channel)
    readable: list[ChannelOrder] = []
    readable_payloads: list[Payload] = []
    rejections: list[Rejection] = []
    for payload in payloads:
        try:
            order = source.parse_order(payload)
        except Unreadable as exc:
            rejections.append(Rejection(channel, exc.external_id, exc.reason, exc.detail, payload))
            continue
        except Exception as exc:  # a mapping bug must cost one payload, never the batch
            rejections.append(Rejection(channel, None, Quarantine.MALFORMED.value,
                                        f"could not be read ({type(exc).__name__})", payload))
            continue
        readable.append(order)
        readable_payloads.append(payload)
    failed = quality_failures(readable)
    orders: list[ChannelOrder] = []
    for position, order in enumerate(readable):
        if position in failed:
            reason, detail = failed[position]
            rejections.append(Rejection(channel, order.external_id, reason, detail, readable_payloads[position]))
        elif not order.amounts_fit():  # after the suite: a fractional quantity can make a huge unit price
            rejections.append(Rejection(channel, order.external_id, Quarantine.MALFORMED.value,
                                        "an amount is too large to be an order's", readable_payloads[position]))
        else:
            orders.append(order)
    return CheckedBatch(orders, rejections)
