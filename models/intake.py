"""Reading and writing what order intake needs, a batch per statement."""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from domain.intake import Decision, Known, Outcome, Rejection
from domain.orders import CatalogPrice, ChannelOrder, Status
from domain.reasons import Hold
from domain.redact import redact
from domain.stock import Movement
from models.base import utcnow
from models.catalog import Variant
from models.customers import Customer, CustomerAccount, CustomerPII
from models.orders import Order, OrderAddress, OrderHold, OrderLine, QuarantinedPayload
from models.stock import StockMovement
from models.sync import SyncWatermark

# SQLite allows 32,766 bound parameters; PostgreSQL 65,535. Chunk IN lists well below both.
_CHUNK = 5000


def _rows_into(model: type[Any]) -> Any:
    """A Core INSERT into a model's table, for a list of rows with the same keys.

    Not the ORM's bulk INSERT: that leaves a None-valued key out of its row, and rows with
    different keys cannot share a statement, so a batch whose rows alternated (a street2
    here, none there) went to the database a row at a time; it also spends more Python per
    row than the database takes to store it. No column filled here has a default that an
    explicit NULL would displace.
    """
    return insert(model.__table__)


def _insert_rows(session: Session, model: type[Any], rows: Sequence[dict[str, Any]]) -> None:
    """Inserts rows that all have the same keys, through COPY on PostgreSQL.

    An INSERT per row cost PostgreSQL about three times what COPY does for the same rows
    (~0.1 ms an order with its lines and address). Values go through the columns' own
    bind processors, as they would for an INSERT. Elsewhere, and for a table with a
    Python-side default the rows leave out, it is the Core INSERT of `_rows_into`.
    """
    if not rows:
        return
    table = model.__table__
    keys = list(rows[0])
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql" or any(
        column.default is not None and column.key not in keys for column in table.columns
    ):
        session.execute(_rows_into(model), rows)
        return
    processors = [table.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in keys]
    quote = dialect.identifier_preparer.quote
    command = f"COPY {quote(table.name)} ({', '.join(quote(table.c[key].name) for key in keys)}) FROM STDIN"
    with connection.connection.driver_connection.cursor() as cursor, cursor.copy(command) as copy:
        for row in rows:
            copy.write_row([row[key] if process is None else process(row[key])
                            for key, process in zip(keys, processors, strict=True)])


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def catalog_prices(session: Session, skus: Iterable[str]) -> dict[str, CatalogPrice]:
    wanted = sorted(set(skus))
    prices: dict[str, CatalogPrice] = {}
    for chunk in _chunks(wanted):
        for sku, price, currency in session.execute(
            select(Variant.sku, Variant.price, Variant.currency).where(Variant.sku.in_(chunk))
        ):
            prices[sku] = CatalogPrice(price, currency)
    return prices


def available_units(session: Session, skus: Iterable[str]) -> dict[str, int]:
    """On hand minus reserved, summed over the ledger and every location."""
    wanted = sorted(set(skus))
    levels: dict[str, int] = {}
    for chunk in _chunks(wanted):
        rows = session.execute(
            select(
                StockMovement.sku,
                func.sum(StockMovement.on_hand_delta) - func.sum(StockMovement.reserved_delta),
            )
            .where(StockMovement.sku.in_(chunk))
            .group_by(StockMovement.sku)
        )
        levels.update({sku: int(units or 0) for sku, units in rows})
    return levels


def known_orders(session: Session, channel: str, external_ids: Iterable[str]) -> dict[str, tuple[int, Known]]:
    """external id -> (row id, what is stored), with each order's current reservation."""
    wanted = sorted(set(external_ids))
    found: dict[str, tuple[int, str, str]] = {}
    for chunk in _chunks(wanted):
        for row_id, external_id, fingerprint, status in session.execute(
            select(Order.id, Order.external_id, Order.fingerprint, Order.status).where(
                Order.channel == channel, Order.external_id.in_(chunk)
            )
        ):
            found[external_id] = (row_id, fingerprint, status)
    reserved = reservations(session, [row_id for row_id, _, _ in found.values()])
    return {
        external_id: (row_id, Known(fingerprint, Status(status), reserved.get(row_id, {})))
        for external_id, (row_id, fingerprint, status) in found.items()
    }


def reservations(session: Session, order_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    held: dict[int, dict[str, int]] = defaultdict(dict)
    for chunk in _chunks(sorted(order_ids)):
        rows = session.execute(
            select(StockMovement.order_id, StockMovement.sku, func.sum(StockMovement.reserved_delta))
            .where(StockMovement.order_id.in_(chunk))
            .group_by(StockMovement.order_id, StockMovement.sku)
        )
        for order_id, sku, units in rows:
            if units:
                held[order_id][sku] = int(units)
    return held


def _clip(value: str | None, length: int) -> str | None:
    """Free text fits its column and carries no NUL (PostgreSQL refuses it); keys are checked upstream."""
    return None if value is None else value.replace("\x00", "")[:length]


def email_key(email: str | None) -> str | None:
    """The digest that matches one person's accounts across channels (trimmed, case-folded)."""
    if not email or not email.strip():
        return None
    return hashlib.sha256(email.strip().casefold().encode()).hexdigest()


def _account_key(order: ChannelOrder) -> str | None:
    customer = order.customer
    if customer is None:
        return None
    if customer.external_id:
        return _clip(customer.external_id, 200)
    if key := email_key(customer.email):  # a guest checkout: one account per email address
        return "guest:" + key[:40]
    return None


def _upsert_customers(session: Session, channel: str, orders: Sequence[ChannelOrder]) -> dict[str, int]:
    """Customer ids by account key: known accounts, else the customer with the same email, else new ones."""
    by_key = {key: order.customer for order in orders if (key := _account_key(order))}
    ids: dict[str, int] = {}
    keys = sorted(by_key)
    for chunk in _chunks(keys):
        ids.update(session.execute(
            select(CustomerAccount.external_id, CustomerAccount.customer_id)
            .where(CustomerAccount.channel == channel, CustomerAccount.external_id.in_(chunk))
        ).all())
    new_accounts = [key for key in keys if key not in ids]
    if new_accounts:
        emails = {key: email_key(by_key[key].email) for key in new_accounts}
        wanted = sorted({e for e in emails.values() if e})
        people: dict[str, int] = {}
        for chunk in _chunks(wanted):
            # The oldest customer wins should two ever share an email (both created in one race).
            people.update(session.execute(
                select(CustomerPII.email_key, func.min(CustomerPII.customer_id))
                .where(CustomerPII.email_key.in_(chunk)).group_by(CustomerPII.email_key)
            ).all())
        strangers = [key for key in new_accounts if not (emails[key] and emails[key] in people)]
        # One new customer per new email (or per account without one).
        persons = list(dict.fromkeys(emails[key] or f"account:{key}" for key in strangers))
        if persons:
            keys = {person: uuid.uuid4().hex for person in persons}
            session.execute(_rows_into(Customer), [{"key": key, "created_at": utcnow()} for key in keys.values()])
            made: dict[str, int] = {}
            for chunk in _chunks(list(keys.values())):
                made.update(session.execute(select(Customer.key, Customer.id).where(Customer.key.in_(chunk))).all())
            people.update((person, made[key]) for person, key in keys.items())
        for key in new_accounts:
            ids[key] = people[emails[key] or f"account:{key}"]
        session.execute(_rows_into(CustomerAccount), [
            {"channel": channel, "external_id": key, "customer_id": ids[key]} for key in new_accounts
        ])
    # The latest order's details win, whichever channel it came from.
    pii = {
        ids[key]: {"customer_id": ids[key], "email_key": email_key(c.email), "email": _clip(c.email, 320),
                   "phone": _clip(c.phone, 64), "first_name": _clip(c.first_name, 200),
                   "last_name": _clip(c.last_name, 200)}
        for key, c in by_key.items() if c is not None
    }
    for chunk in _chunks(sorted(set(ids.values()))):
        session.execute(delete(CustomerPII).where(CustomerPII.customer_id.in_(chunk)))
    if pii:
        session.execute(_rows_into(CustomerPII), list(pii.values()))
    return ids


def _country(code: str | None) -> str | None:
    return code if code and len(code) == 2 and code.isascii() and code.isalpha() else None


ADDRESS_SIZES = {"name": 300, "company": 300, "street1": 300, "street2": 300, "city": 200, "province": 200,
                 "postal_code": 40, "phone": 64}


def _order_row(decision: Decision, customer_ids: dict[str, int]) -> dict[str, Any]:
    order = decision.order
    key = _account_key(order)
    return {
        "channel": order.channel, "external_id": order.external_id, "number": order.number,
        "status": decision.status.value, "lifecycle": order.lifecycle.value, "currency": order.currency,
        "total": order.total, "shipping": order.shipping, "tax": order.tax, "discounts": order.discounts,
        "taxes_included": order.taxes_included, "requires_shipping": order.requires_shipping,
        "risk": order.risk.value, "ship_to_country": _country(order.ship_to_country),
        "customer_id": customer_ids.get(key) if key else None,
        "payment_gateway": order.payment.gateway if order.payment else None,
        "payment_reference": order.payment.reference if order.payment else None,
        "placed_at": order.placed_at, "upstream_updated_at": order.updated_at,
        "fingerprint": order.fingerprint(), "updated_at": utcnow(),
    }


def store_decisions(
    session: Session, channel: str, decisions: Sequence[Decision], known: dict[str, tuple[int, Known]]
) -> None:
    """Upserts new and changed orders with their lines, address, holds and reservation deltas."""
    changed = [d for d in decisions if d.outcome != Outcome.UNCHANGED]
    if not changed:
        return
    customer_ids = _upsert_customers(session, channel, [d.order for d in changed])
    created = [d for d in changed if d.outcome == Outcome.CREATED]
    updated = [d for d in changed if d.outcome == Outcome.UPDATED]
    ids = {external_id: row_id for external_id, (row_id, _) in known.items()}
    if created:
        now = utcnow()
        # No RETURNING here: a multi-row INSERT ... RETURNING is one huge statement whose
        # placeholders psycopg rewrites in Python, ~0.2 ms an order on PostgreSQL. A plain
        # insert and an indexed read of the new ids cost a third of that.
        _insert_rows(session, Order, [{**_order_row(d, customer_ids), "created_at": now} for d in created])
        for order_channel in sorted({d.order.channel for d in created}):
            fresh = [d.order.external_id for d in created if d.order.channel == order_channel]
            for chunk in _chunks(fresh):
                ids.update(session.execute(
                    select(Order.external_id, Order.id).where(Order.channel == order_channel, Order.external_id.in_(chunk))
                ).all())
    if updated:
        session.execute(
            update(Order),
            [{"id": ids[d.order.external_id], **_order_row(d, customer_ids)}
             for d in updated],
        )
        stale = [ids[d.order.external_id] for d in updated]
        for chunk in _chunks(stale):
            session.execute(delete(OrderLine).where(OrderLine.order_id.in_(chunk)))
            session.execute(delete(OrderAddress).where(OrderAddress.order_id.in_(chunk)))
    lines = [
        {"order_id": ids[d.order.external_id], "position": n, "sku": line.sku, "title": _clip(line.title, 500),
         "quantity": line.units, "unit_price": line.unit_price, "discount": line.discount,
         "requires_shipping": line.requires_shipping}
        for d in changed for n, line in enumerate(d.order.lines)
    ]
    _insert_rows(session, OrderLine, lines)
    addresses = [
        {"order_id": ids[d.order.external_id], "country": _country(a.country),
         **{name: _clip(getattr(a, name), size) for name, size in ADDRESS_SIZES.items()}}
        for d in changed if (a := d.order.ship_to) is not None
    ]
    _insert_rows(session, OrderAddress, addresses)
    _store_holds(session, {ids[d.order.external_id]: set(d.reasons) for d in changed}, updated_ids=[ids[d.order.external_id] for d in updated])
    _store_reservations(session, changed, ids, known)


def _store_holds(session: Session, reasons: dict[int, set[str]], updated_ids: Sequence[int]) -> None:
    """Keeps a hold that still applies (so it is not alerted twice) and replaces the rest."""
    existing: dict[int, set[str]] = defaultdict(set)
    for chunk in _chunks(sorted(updated_ids)):
        for order_id, reason in session.execute(
            select(OrderHold.order_id, OrderHold.reason).where(OrderHold.order_id.in_(chunk))
        ):
            existing[order_id].add(reason)
    for order_id, had in existing.items():
        gone = had - reasons.get(order_id, set())
        if gone:
            session.execute(delete(OrderHold).where(OrderHold.order_id == order_id, OrderHold.reason.in_(gone)))
    now = utcnow()
    new = [
        {"order_id": order_id, "reason": reason, "created_at": now}
        for order_id, wanted in reasons.items() for reason in sorted(wanted - existing.get(order_id, set()))
    ]
    if new:
        session.execute(_rows_into(OrderHold), new)


def _store_reservations(
    session: Session, changed: Sequence[Decision], ids: dict[str, int], known: dict[str, tuple[int, Known]]
) -> None:
    from domain.stock import reservation_changes

    now = utcnow()
    movements = []
    for decision in changed:
        held = known[decision.order.external_id][1].reserved if decision.order.external_id in known else {}
        for sku, delta in sorted(reservation_changes(held, decision.reservation).items()):
            movements.append({
                "sku": sku, "location": "main", "kind": (Movement.RESERVATION if delta > 0 else Movement.RELEASE).value,
                "on_hand_delta": 0, "reserved_delta": delta, "order_id": ids[decision.order.external_id],
                "created_at": now,
            })
    if movements:
        session.execute(_rows_into(StockMovement), movements)


# Deeper than any vendor's order; a payload nested beyond it (JSON allows ~1,000 levels) would
# overflow the stack of this walk, of json.dumps and of the database's JSON parser.
MAX_PAYLOAD_DEPTH = 64


def _json_safe(value: Any, depth: int = 0) -> Any:
    """The raw payload as a JSON column holds it: NULs dropped (PostgreSQL refuses them), keys as
    text, and anything nested deeper than `MAX_PAYLOAD_DEPTH` replaced by a note saying so."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, (dict, list, tuple)) and depth >= MAX_PAYLOAD_DEPTH:
        return f"[nested deeper than {MAX_PAYLOAD_DEPTH} levels: not kept]"
    if isinstance(value, dict):
        return {_json_safe(str(key)): _json_safe(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item, depth + 1) for item in value]
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)


def payload_digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(_json_safe(payload), sort_keys=True).encode()).hexdigest()


def store_rejections(session: Session, rejections: Sequence[Rejection]) -> None:
    """Quarantines each distinct payload once, raw payload kept."""
    if not rejections:
        return
    rows = {}
    for r in rejections:
        digest = payload_digest(r.payload)
        rows[(r.channel, digest)] = {
            "channel": r.channel, "external_id": _clip(r.external_id, 200), "reason": r.reason,
            "detail": redact(_clip(r.detail, 2000) or ""), "payload": _json_safe(r.payload), "payload_hash": digest, "received_at": utcnow(),
        }
    seen = set()
    for channel in {c for c, _ in rows}:
        digests = sorted(d for c, d in rows if c == channel)
        for chunk in _chunks(digests):
            seen.update(
                (channel, d) for d in session.scalars(
                    select(QuarantinedPayload.payload_hash).where(
                        QuarantinedPayload.channel == channel, QuarantinedPayload.payload_hash.in_(chunk)
                    )
                )
            )
    fresh = [row for key, row in rows.items() if key not in seen]
    if fresh:
        session.execute(_rows_into(QuarantinedPayload), fresh)


def watermark(session: Session, channel: str, resource: str = "orders") -> SyncWatermark | None:
    return session.get(SyncWatermark, (channel, resource))


def set_watermark(
    session: Session, channel: str, through: datetime | None, state: dict[str, Any], resource: str = "orders"
) -> None:
    """Moves the watermark forward (never back) and records backfill state."""
    row = session.get(SyncWatermark, (channel, resource))
    if row is None:
        session.add(SyncWatermark(channel=channel, resource=resource, synced_through=through, state=state))
        return
    if through is not None and (row.synced_through is None or through > row.synced_through):
        row.synced_through = through
    row.state = state


def waiting_for_stock(session: Session) -> tuple[list[tuple[int, str, str, datetime, dict[str, int]]], dict[str, int]]:
    """Orders held for stock alone, oldest first, with their demand; and the stock they could take."""
    only_stock = (
        select(OrderHold.order_id)
        .group_by(OrderHold.order_id)
        .having(func.count() == 1, func.max(OrderHold.reason) == Hold.INSUFFICIENT_STOCK.value)
    )
    rows = session.execute(
        select(Order.id, Order.channel, Order.external_id, Order.placed_at)
        .where(Order.status == Status.HELD.value, Order.id.in_(only_stock))
        .order_by(Order.placed_at, Order.id)
    ).all()
    demand: dict[int, dict[str, int]] = defaultdict(dict)
    for chunk in _chunks([row[0] for row in rows]):
        for order_id, sku, units in session.execute(
            select(OrderLine.order_id, OrderLine.sku, func.sum(OrderLine.quantity))
            .where(OrderLine.order_id.in_(chunk), OrderLine.sku.is_not(None))
            .group_by(OrderLine.order_id, OrderLine.sku)
        ):
            demand[order_id][sku] = int(units)
    waiting = [(order_id, channel, external_id, placed_at, demand[order_id]) for order_id, channel, external_id, placed_at in rows]
    return waiting, available_units(session, {sku for *_, wanted in waiting for sku in wanted})


def release_for_stock(session: Session, granted: Sequence[tuple[int, dict[str, int]]]) -> None:
    """Accepts orders that stock can now cover: status, hold removed, units reserved."""
    if not granted:
        return
    ids = [order_id for order_id, _ in granted]
    now = utcnow()
    for chunk in _chunks(ids):
        session.execute(update(Order).where(Order.id.in_(chunk)).values(status=Status.ACCEPTED.value, updated_at=now))
        session.execute(delete(OrderHold).where(OrderHold.order_id.in_(chunk)))
    session.execute(insert(StockMovement), [
        {"sku": sku, "location": "main", "kind": Movement.RESERVATION.value, "on_hand_delta": 0, "reserved_delta": units,
         "order_id": order_id, "note": "stock arrived for a held order", "created_at": now}
        for order_id, wanted in granted for sku, units in sorted(wanted.items())
    ])


def short_skus(session: Session) -> dict[str, int]:
    """SKUs with less on hand than is reserved (after a count or a write-off), and by how much."""
    return {
        sku: int(units)
        for sku, units in session.execute(
            select(StockMovement.sku, func.sum(StockMovement.on_hand_delta) - func.sum(StockMovement.reserved_delta))
            .group_by(StockMovement.sku)
            .having(func.sum(StockMovement.on_hand_delta) - func.sum(StockMovement.reserved_delta) < 0)
        )
    }


def reserving_orders(session: Session, skus: Iterable[str]) -> list[tuple[int, dict[str, int]]]:
    """Accepted orders holding units of any of `skus`, oldest first, with all they reserve."""
    wanted = sorted(set(skus))
    ids: set[int] = set()
    for chunk in _chunks(wanted):
        ids.update(session.scalars(
            select(StockMovement.order_id)
            .join(Order, Order.id == StockMovement.order_id)
            .where(StockMovement.sku.in_(chunk), Order.status == Status.ACCEPTED.value)
            .group_by(StockMovement.order_id).having(func.sum(StockMovement.reserved_delta) > 0)
        ))
    reserved: dict[int, dict[str, int]] = defaultdict(dict)
    placed: dict[int, tuple[datetime, int]] = {}
    for chunk in _chunks(sorted(ids)):
        for order_id, placed_at, sku, units in session.execute(
            select(StockMovement.order_id, Order.placed_at, StockMovement.sku, func.sum(StockMovement.reserved_delta))
            .join(Order, Order.id == StockMovement.order_id)
            .where(StockMovement.order_id.in_(chunk))
            .group_by(StockMovement.order_id, Order.placed_at, StockMovement.sku)
        ):
            placed[order_id] = (placed_at, order_id)
            if units:
                reserved[order_id][sku] = int(units)
    return [(order_id, reserved[order_id]) for order_id in sorted(placed, key=placed.__getitem__)]


def hold_for_stock(session: Session, orders: Sequence[tuple[int, dict[str, int]]], note: str) -> None:
    """Puts accepted orders back on hold `insufficient_stock`, giving back what they reserved."""
    if not orders:
        return
    now = utcnow()
    ids = [order_id for order_id, _ in orders]
    for chunk in _chunks(ids):
        session.execute(update(Order).where(Order.id.in_(chunk)).values(status=Status.HELD.value, updated_at=now))
    session.execute(_rows_into(OrderHold), [
        {"order_id": order_id, "reason": Hold.INSUFFICIENT_STOCK.value, "created_at": now} for order_id in ids])
    session.execute(insert(StockMovement), [
        {"sku": sku, "location": "main", "kind": Movement.RELEASE.value, "on_hand_delta": 0, "reserved_delta": -units,
         "order_id": order_id, "note": note, "created_at": now}
        for order_id, reserved in orders for sku, units in sorted(reserved.items())
    ])


def quarantine_notes(session: Session, channel: str, digests: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Payload digest -> (reason, detail) of the channel's quarantined payloads among `digests`."""
    notes: dict[str, tuple[str, str]] = {}
    for chunk in _chunks(digests):
        rows = session.execute(
            select(QuarantinedPayload.payload_hash, QuarantinedPayload.reason, QuarantinedPayload.detail)
            .where(QuarantinedPayload.channel == channel, QuarantinedPayload.payload_hash.in_(chunk))
        )
        notes.update((digest, (reason, detail)) for digest, reason, detail in rows)
    return notes
