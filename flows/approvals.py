"""await-approval: one flow run per decision a person must make, paused in the Prefect UI.

The run pauses with a typed form (approve, by, note). Whoever decides first wins: the form,
or `clerk approve`, which records the decision and resumes this run. A timeout leaves the
item waiting, never approved. Each item has its own run, so one waiting never holds up
another, nor the nightly run that asked.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from prefect import flow, get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run

from models.purchasing_store import PURCHASE_ORDER
from tasks.approvals import decide_approval, find_approvals, read_approval, record_pause
from tasks.restock import send_purchase_order

FLOW = "await-approval"
DEPLOYMENT = f"{FLOW}/{FLOW}"


class Decision(RunInput):
    """The form the Prefect UI shows on the paused run."""

    approve: bool
    by: str
    note: str | None = None


@flow(name=FLOW)
def await_approval(approval_id: int, timeout_hours: float = 72.0, poll_seconds: int = 10) -> dict[str, Any]:
    """Waits for a person's decision on approval `approval_id`, then acts on it.

    Args:
        approval_id: the id `clerk approvals` lists.
        timeout_hours: how long the run waits before it ends, leaving the item waiting.
        poll_seconds: how often the paused run looks for a decision.

    Returns:
        `{"flow", "approval", "subject", "decision", "by", "timed_out", "alerts_sent"}`.
    """
    logger = get_run_logger()
    current = read_approval(approval_id)
    if current is None:
        raise ValueError(f"no approval {approval_id}")
    timed_out = False
    if current.status == "waiting":
        record_pause(approval_id, str(flow_run.get_id()))
        try:
            decision = pause_flow_run(wait_for_input=Decision, timeout=int(timeout_hours * 3600),
                                      poll_interval=poll_seconds, key=f"approval-{approval_id}")
            current = decide_approval(approval_id, decision.by, decision.approve, decision.note)
        except FlowPauseTimeout:
            timed_out = True
            logger.warning("approval %s for %s got no decision in %s h; it stays waiting",
                           approval_id, current.subject, timeout_hours)
            current = read_approval(approval_id) or current
    if current.kind == PURCHASE_ORDER and current.status == "approved":
        send_purchase_order(current.subject, str(flow_run.get_id()))
    return {"flow": FLOW, "approval": approval_id, "subject": current.subject, "decision": current.status,
            "by": current.decided_by, "timed_out": timed_out, "alerts_sent": 0}


def ask_in_the_ui(kind: str, subjects: Sequence[str]) -> dict[str, str]:
    """Starts one paused `await-approval` run per item of `kind` waiting among `subjects`,
    when a Prefect server serves the deployments; returns subject -> the run's page (empty
    without a server: `clerk approve` decides then)."""
    if not subjects or not os.environ.get("PREFECT_API_URL"):
        return {}
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_UI_URL

    logger = get_run_logger()
    pages = {}
    for subject, approval_id in find_approvals(kind, list(subjects)).items():
        try:
            run = run_deployment(DEPLOYMENT, parameters={"approval_id": approval_id}, timeout=0)
        except Exception as exc:  # noqa: BLE001 - `clerk approve` still decides it
            logger.warning("could not start %s for %s (%s); decide with `clerk approve %s`",
                           DEPLOYMENT, subject, type(exc).__name__, approval_id)
            continue
        ui = PREFECT_UI_URL.value()
        pages[subject] = f"{ui}/flow-runs/flow-run/{run.id}" if ui else f"flow run {run.id}"
    return pages
