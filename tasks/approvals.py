"""Approval tasks: one database unit of work each."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE

from integrations.settings import cached_settings
from models import purchasing_store
from models.db import unit_of_work


@dataclass(frozen=True, slots=True)
class ApprovalState:
    id: int
    kind: str
    subject: str
    status: str  # waiting | approved | denied
    decided_by: str | None


def _db() -> str:
    return cached_settings().database_url


def _state(found: purchasing_store.Approval) -> ApprovalState:
    return ApprovalState(found.id, found.kind, found.subject, found.status, found.decided_by)


@task(name="read-approval", cache_policy=NO_CACHE)
def read_approval(approval_id: int) -> ApprovalState | None:
    with unit_of_work(_db()) as session:
        found = purchasing_store.approval(session, approval_id)
        return _state(found) if found else None


@task(name="record-pause", cache_policy=NO_CACHE)
def record_pause(approval_id: int, run_id: str) -> None:
    with unit_of_work(_db()) as session:
        purchasing_store.record_pause(session, approval_id, run_id)


@task(name="decide-approval", cache_policy=NO_CACHE)
def decide_approval(approval_id: int, by: str, approve: bool, note: str | None) -> ApprovalState:
    """Records the decision; one already made (say with `clerk approve`) stands and is returned."""
    try:
        with unit_of_work(_db()) as session:
            return _state(purchasing_store.decide(session, approval_id, by, approve, note))
    except purchasing_store.DecisionError:
        with unit_of_work(_db()) as session:
            return _state(purchasing_store.approval(session, approval_id))  # type: ignore[arg-type]


@task(name="find-approvals", cache_policy=NO_CACHE)
def find_approvals(kind: str, subjects: list[str]) -> dict[str, int]:
    with unit_of_work(_db()) as session:
        return purchasing_store.approvals_for(session, kind, subjects)
