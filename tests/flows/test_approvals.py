"""await-approval: a run paused in the Prefect UI with a typed form, decided there or by `clerk approve`."""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from uuid import UUID

import pytest

from deployments.cli import main
from flows.approvals import await_approval
from models import Approval, PurchaseOrder
from models.db import unit_of_work
from tests.flows.test_restock_check import Office, _check, office  # noqa: F401  (the fixture)

BULK = "PO-20261126-BULKCO"


def _approval(url: str) -> Approval:
    with unit_of_work(url) as session:
        from sqlalchemy import select

        return session.scalars(select(Approval).where(Approval.subject == BULK)).one()


def _status(url: str) -> str:
    with unit_of_work(url) as session:
        from sqlalchemy import select

        return session.scalars(select(PurchaseOrder.status).where(PurchaseOrder.number == BULK)).one()


class PausedRun:
    """`await-approval` running in a thread, as a served deployment would run it."""

    def __init__(self, approval_id: int, **options: Any):
        self.result: dict[str, Any] | None = None
        self.thread = threading.Thread(target=self._run, args=(approval_id, options), daemon=True)
        self.thread.start()

    def _run(self, approval_id: int, options: dict[str, Any]) -> None:
        self.result = await_approval(approval_id, poll_seconds=1, **options)

    def wait_paused(self, url: str) -> UUID:
        from prefect import get_client

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            run_id = _approval(url).pause_run_id
            if run_id:
                with get_client(sync_client=True) as client:
                    state = client.read_flow_run(UUID(run_id)).state
                if state is not None and state.is_paused():
                    return UUID(run_id)
            time.sleep(0.2)
        raise AssertionError("the run never paused")

    def finish(self) -> dict[str, Any]:
        self.thread.join(timeout=60)
        assert not self.thread.is_alive() and self.result is not None
        return self.result


def test_the_form_in_the_prefect_ui_approves_and_the_order_is_mailed_once(office: Office) -> None:  # noqa: F811
    from prefect.flow_runs import resume_flow_run

    _check()
    approval = _approval(office.url)
    paused = PausedRun(approval.id)
    run_id = paused.wait_paused(office.url)
    assert _status(office.url) == "awaiting_approval"
    resume_flow_run(run_id, run_input={"approve": True, "by": "mia", "note": "peak season"})
    result = paused.finish()
    assert (result["decision"], result["by"], result["timed_out"]) == ("approved", "mia", False)
    assert _status(office.url) == "sent"
    assert office.mail.times_received("<po-20261126-bulkco@clerk>") == 1
    assert _check()["purchase_orders_sent"] == 0 and office.mail.times_received("<po-20261126-bulkco@clerk>") == 1


def test_clerk_approve_decides_and_resumes_the_paused_run_which_sends_nothing_twice(
    office: Office, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    from prefect.settings import PREFECT_API_URL

    _check()
    approval = _approval(office.url)
    paused = PausedRun(approval.id)
    paused.wait_paused(office.url)
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    capsys.readouterr()
    assert main(["approve", str(approval.id), "--by", "dana", "--deny", "--note", "too much"]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "denied"
    result = paused.finish()
    assert (result["decision"], result["by"]) == ("denied", "dana")
    assert _status(office.url) == "cancelled" and office.mail.times_received("<po-20261126-bulkco@clerk>") == 0


def test_no_decision_before_the_timeout_leaves_the_order_waiting(office: Office) -> None:  # noqa: F811
    _check()
    approval = _approval(office.url)
    result = PausedRun(approval.id, timeout_hours=3 / 3600).finish()
    assert (result["decision"], result["timed_out"]) == ("waiting", True)
    assert _status(office.url) == "awaiting_approval" and _approval(office.url).status == "waiting"
