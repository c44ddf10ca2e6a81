"""Sending an approved purchase order to its supplier, exactly once, from a flow or `clerk approve`."""

from __future__ import annotations

import hashlib

from integrations.documents.purchase_order import (
    PurchaseOrderDocument,
    PurchaseOrderLine,
    render_purchase_order,
    ship_to_lines,
)
from integrations.protocols import Email
from integrations.settings import cached_settings
from integrations.wiring import mailer
from models import purchasing_store, restock
from models.db import unit_of_work
from models.ledger import begin_effect, finish_effect


class PurchaseOrderNotSendable(ValueError):
    """A purchase order that cannot be mailed as it stands (unknown, not approved, no address)."""


def send_purchase_order_once(database_url: str, number: str, flow_run_id: str | None) -> str:
    """Mails purchase order `number` to its supplier unless the ledger says it went.

    The ledger row is written before the mail; the Message-ID is derived from the number, so
    a retry after a reply was lost resends the same message, which a mail system shows as one.
    Returns the Message-ID.

    Raises:
        PurchaseOrderNotSendable: for an unknown or unapproved PO, or a supplier without an email.
        integrations.mail.TransientMailError: the caller may retry.
    """
    settings = cached_settings()
    with unit_of_work(database_url) as session:
        po = purchasing_store.purchase_order(session, number)
        if po is None:
            raise PurchaseOrderNotSendable(f"no purchase order {number}")
        if po.status == "sent":
            return po.message_id or ""
        if po.status != "approved":
            raise PurchaseOrderNotSendable(f"{number} is {po.status}, not approved")
        supplier = settings.toml.suppliers.get(po.supplier)
        if supplier is None or not supplier.email:
            raise PurchaseOrderNotSendable(f"supplier {po.supplier!r} of {number} has no email in clerk.toml [suppliers]")
        request = hashlib.sha256(repr((po.supplier, supplier.email, po.lines)).encode()).hexdigest()
        effect = begin_effect(session, f"po-email:{number}", "purchase_order_email", number, request, flow_run_id)
        names = restock.titles(session, [sku for sku, *_ in po.lines])
    message_id = f"<{number.lower()}@clerk>"
    if effect.state != "done":
        document = PurchaseOrderDocument(
            number=po.number, supplier=po.supplier, created_at=po.created_at, currency=po.currency,
            lines=tuple(PurchaseOrderLine(sku, names.get(sku, sku), quantity, cost) for sku, quantity, cost, _ in po.lines),
            ship_to=ship_to_lines(settings.toml.ship_from),
        )
        email = Email(
            to=supplier.email, subject=f"Purchase order {po.number}", message_id=message_id,
            body=f"Please find purchase order {po.number} attached: {len(po.lines)} lines, {po.total} {po.currency}.\n",
            attachments=((f"{po.number}.pdf", "application/pdf", render_purchase_order(document)),),
        )
        message_id = mailer().send(email)
    with unit_of_work(database_url) as session:
        finish_effect(session, f"po-email:{number}", message_id, {"to_domain": supplier.email.rpartition("@")[2]})
        purchasing_store.mark_sent(session, number, message_id)
    return message_id

