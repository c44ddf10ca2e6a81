"""import-orders: a marketplace's orders file taken in exactly as order intake takes a channel's orders.

The file is read a batch at a time, and each batch goes through order intake's own steps
(check, decide, store, tally): the same reason codes, holds, quarantine and reservations. The
channel's sync watermark is written back as it was, so a real channel of the same name carries
on undisturbed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run

from domain.intake import Outcome, Tally
from domain.orders import PriceTolerance
from domain.reasons import ALL_REASONS
from flows.alerting import run_link, tell_clerks
from flows.alerting import trouble_reported
from flows.order_intake import process_batch
from integrations import wiring
from integrations.marketplace_csv import OrderFile, load_mapping
from integrations.protocols import Payload
from integrations.settings import Intake, cached_settings
from models.intake import payload_digest
from tasks.orders import fetch_changed_orders, load_watermark, read_quarantine_notes

FLOW = "import-orders"
_NAMED_LINE = re.compile(r"lines? (\d+)")  # how the file mapping starts a detail: "line 17: ..."


@contextmanager
def _serving(source: OrderFile) -> Iterator[None]:
    """The file is the channel's source for this run only: afterwards a real channel of that name is itself again."""
    wiring.register_order_source(source)
    try:
        yield
    finally:
        wiring.forget_order_source(source.channel)


def _take_in(source: OrderFile, tally: Tally, settings: Intake, tolerance: PriceTolerance) -> list[dict[str, Any]]:
    """The file a batch at a time, as it is read: only one batch of its orders is ever in memory.

    Returns:
        The lines a clerk should look at (see `_problems`).
    """
    channel = source.channel
    # Written back with every batch unchanged: an import neither moves the watermark nor loses a backfill's place.
    state = load_watermark(channel).state
    problems: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = fetch_changed_orders(channel, None, cursor, settings.batch_size)
        if page.payloads:
            process_batch(channel, page.payloads, tally, tolerance, None, state)
            problems += _problems(channel, page.payloads, tally)
        if page.cursor is None:
            return sorted(problems, key=lambda problem: (problem["line"], problem["reason"]))
        cursor = page.cursor


def _problems(channel: str, payloads: list[Payload], tally: Tally) -> list[dict[str, Any]]:
    """Each quarantined payload and each newly held order of one batch, at the line a clerk should look at."""
    quarantined = {payload_digest(payload): payload for payload in payloads if payload["order_id"] is None
                   or tally.outcomes.get((channel, payload["order_id"])) == Outcome.QUARANTINED}
    notes = read_quarantine_notes(channel, sorted(quarantined)) if quarantined else {}
    problems = []
    for digest, payload in quarantined.items():
        if digest in notes:
            reason, detail = notes[digest]
            lines = [row["line"] for row in payload["rows"]]
            named = _NAMED_LINE.match(detail)
            line = int(named.group(1)) if named and int(named.group(1)) in lines else lines[0]
            problems.append({"line": line, "order_id": payload["order_id"], "reason": reason, "detail": detail})
    for payload in payloads:
        key = (channel, payload["order_id"])
        if key in tally.held:
            problems.extend({"line": payload["rows"][0]["line"], "order_id": payload["order_id"], "reason": reason,
                             "detail": f"order {payload['order_id']} held"} for reason in tally.reasons[key])
    return problems


@flow(name=FLOW)
def import_orders(path: str, channel: str, mapping: str | None = None) -> dict[str, Any]:
    """Imports a marketplace's orders export as the orders of `channel`.

    Args:
        path: the export file (CSV, or tab-separated as the mapping says).
        channel: the channel its orders belong to, e.g. `amazon`.
        mapping: a bundled mapping's name (`amazon`) or a mapping TOML file; default: the generic columns.

    Returns:
        The run's summary: order-intake's keys, plus `file` and `problems` (line, order_id, reason, detail).
    """
    intake = cached_settings().toml.intake
    tolerance = PriceTolerance(intake.price_tolerance_absolute, intake.price_tolerance_relative)
    tally = Tally()
    with trouble_reported(FLOW):
        source = OrderFile(Path(path), channel, load_mapping(mapping))
        with _serving(source):
            problems = _take_in(source, tally, intake, tolerance)
        alerts_sent = tell_clerks(FLOW, flow_run.get_id(), run_link())
    summary = {
        "flow": FLOW,
        "file": path,
        **tally.counts(),
        "reasons": tally.reason_counts(ALL_REASONS),
        "alerts_sent": alerts_sent,
        "channels": {channel: tally.counts(channel)},
        "problems": problems,
    }
    if problems:
        create_table_artifact(problems, key="import-orders-problems", description=f"{Path(path).name}: lines to look at")
    get_run_logger().info("import-orders: %s", {k: v for k, v in summary.items() if k not in ("channels", "problems")})
    return summary
