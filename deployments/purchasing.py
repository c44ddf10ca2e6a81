"""`clerk approvals`, `clerk approve` and `clerk receive`: a person's side of purchasing."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

from domain.purchasing import ReceiptError, book_receipt
from models import purchasing_store
from models.db import unit_of_work

log = logging.getLogger("clerk.purchasing")


def list_approvals(database_url: str) -> list[dict[str, Any]]:
    """What waits for a person, oldest first, as the contract's records."""
    with unit_of_work(database_url) as session:
        return [
            {"id": a.id, "kind": a.kind, "subject": a.subject, "amount": f"{a.amount:.2f}", "currency": a.currency,
             "since": a.since.isoformat().replace("+00:00", "Z")}
            for a in purchasing_store.waiting(session)
        ]


def approve(database_url: str, approval_id: int, by: str, allow: bool, note: str | None) -> tuple[dict[str, Any], str | None]:
    """Records the decision; an approved purchase order is mailed to its supplier at once.

    Returns:
        The decision, and a warning when the mail could not go now (the next restock-check
        sends every approved, unsent order).

    Raises:
        purchasing_store.DecisionError: for an unknown or already decided approval.
    """
    from tasks.purchase_mail import send_purchase_order_once

    with unit_of_work(database_url) as session:
        decided = purchasing_store.decide(session, approval_id, by, allow, note)
        record = {"id": decided.id, "kind": decided.kind, "subject": decided.subject, "decision": decided.status,
                  "by": by}
    if decided.pause_run_id:
        _resume(decided.pause_run_id, {"approve": allow, "by": by, "note": note})
    if not allow or decided.kind != purchasing_store.PURCHASE_ORDER:
        return record, None
    try:
        record["message_id"] = send_purchase_order_once(database_url, decided.subject, None)
    except Exception as exc:  # noqa: BLE001 - the decision stands; restock-check retries the mail
        return record, f"{decided.subject} approved but not sent yet ({type(exc).__name__}: {exc}); the next restock-check sends it"
    return record, None


def _resume(run_id: str, decision: dict[str, Any]) -> None:
    """Lets the run paused for this item in the Prefect UI finish; it finds the decision made."""
    import os
    from uuid import UUID

    if not os.environ.get("PREFECT_API_URL"):
        return
    from prefect.flow_runs import resume_flow_run

    try:
        resume_flow_run(UUID(run_id), run_input=decision)
    except Exception as exc:  # noqa: BLE001 - the decision is recorded; the run times out on its own
        log.warning("could not resume paused run %s (%s)", run_id, type(exc).__name__)


class DeliveryFileError(ValueError):
    """A delivery file that cannot be read; nothing of it is booked."""


def read_delivery(path: Path) -> list[tuple[int, str, int]]:
    """(line, sku, quantity) rows of a `sku,quantity` CSV.

    Raises:
        DeliveryFileError: a missing column or a quantity that is not a whole number.
    """
    rows, problems = [], []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        if "sku" not in header or "quantity" not in header:
            raise DeliveryFileError(f"{path.name}: needs columns sku,quantity")
        reader.fieldnames = header
        for row in reader:
            sku, raw = (row.get("sku") or "").strip(), (row.get("quantity") or "").strip()
            try:
                rows.append((reader.line_num, sku, int(raw)))
            except ValueError:
                problems.append(f"line {reader.line_num}: quantity {raw!r} is not a whole number")
            if not sku:
                problems.append(f"line {reader.line_num}: no sku")
    if problems:
        raise DeliveryFileError("; ".join(problems))
    return rows


def receive(database_url: str, number: str, path: Path, actor: str) -> dict[str, Any]:
    """Books a supplier delivery against PO `number`, all lines or none.

    Raises:
        DeliveryFileError, ReceiptError: nothing booked; the message says why.
    """
    delivered = read_delivery(path)
    with unit_of_work(database_url) as session:
        po = purchasing_store.purchase_order(session, number)
        if po is None:
            raise ReceiptError(f"no purchase order {number}")
        receipt = book_receipt(number, po.status, {sku: (qty, got) for sku, qty, _, got in po.lines}, delivered)
        purchasing_store.book_delivery(session, number, receipt, actor, path.name)
    return {"purchase_order": number, "status": receipt.status, "received": {
        line.sku: line.received_now for line in receipt.lines if line.received_now}, "over": receipt.over, "under": receipt.under}
