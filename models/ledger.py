"""The side-effect ledger: one row per external effect, written before the call."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, utcnow


class SideEffect(Base):
    """`key` is deterministic (`label:{order}:{n}`, `refund:{rma}`); the vendor gets it too."""

    __tablename__ = "side_effects"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), default="pending")  # pending | done | failed
    request_hash: Mapped[str] = mapped_column(String(64))
    vendor_ref: Mapped[str | None] = mapped_column(String(255))
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(default=0)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]


def begin_effect(session: Session, key: str, kind: str, subject: str, request_hash: str, flow_run_id: str | None) -> SideEffect:
    """The effect's row, written before the call (or found, from an earlier attempt),
    with one more attempt counted. A row for the same key but another request is a bug
    in the caller's key, and raises rather than doing something else under that key.

    Raises:
        ValueError: when `key` was first written for a different request.
    """
    row = session.scalar(select(SideEffect).where(SideEffect.key == key).with_for_update())
    if row is None:
        row = SideEffect(key=key, kind=kind, subject=subject, state="pending", request_hash=request_hash,
                         attempts=0, flow_run_id=flow_run_id, created_at=utcnow(), result={})
        session.add(row)
    elif row.request_hash != request_hash:
        raise ValueError(f"side effect {key} was first asked with another request")
    row.attempts += 1
    session.flush()
    return row


def finish_effect(session: Session, key: str, vendor_ref: str, result: dict[str, Any]) -> None:
    session.execute(update(SideEffect).where(SideEffect.key == key)
                    .values(state="done", vendor_ref=vendor_ref, result=result, done_at=utcnow()))


def begin_effects(session: Session, effects: Sequence[tuple[str, str, str, str]],
                  flow_run_id: str | None) -> dict[str, tuple[str, int]]:
    """`begin_effect` for many effects in a few statements: each `(key, kind, subject,
    request_hash)` row is written (or found and locked) with one more attempt counted.
    Returns each key's state and attempts (1 for a row written now).

    Raises:
        ValueError: when a key was first written for a different request.
    """
    if not effects:
        return {}
    keys = [key for key, _, _, _ in effects]
    found = {key: (state, attempts, request) for key, state, attempts, request in session.execute(
        select(SideEffect.key, SideEffect.state, SideEffect.attempts, SideEffect.request_hash)
        .where(SideEffect.key.in_(keys)).with_for_update())}
    for key, _, _, request in effects:
        if key in found and found[key][2] != request:
            raise ValueError(f"side effect {key} was first asked with another request")
    now = utcnow()
    new = [{"key": key, "kind": kind, "subject": subject, "state": "pending", "request_hash": request,
            "attempts": 1, "flow_run_id": flow_run_id, "created_at": now, "result": {}}
           for key, kind, subject, request in effects if key not in found]
    if new:
        session.execute(insert(SideEffect), new)
    if found:
        session.execute(update(SideEffect).where(SideEffect.key.in_(list(found)))
                        .values(attempts=SideEffect.attempts + 1))
    return {key: (found[key][0], found[key][1] + 1) if key in found else ("pending", 1) for key in keys}


def finish_effects(session: Session, done: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
    """`finish_effect` for many `(key, vendor_ref, result)` rows, one executemany."""
    if not done:
        return
    table = SideEffect.__table__
    session.connection().execute(
        update(table).where(table.c.key == bindparam("done_key"))
        .values(state="done", vendor_ref=bindparam("done_ref"), result=bindparam("done_result"), done_at=utcnow()),
        [{"done_key": key, "done_ref": ref, "done_result": result} for key, ref, result in done])
