"""Clerk's database: typed SQLAlchemy 2 mappings, the engine, and migrations."""

from models.alerts import AuditEntry, SentAlert
from models.base import Base
from models.catalog import Product, Variant
from models.customers import Customer, CustomerAccount, CustomerPII
from models.ledger import SideEffect
from models.orders import Order, OrderAddress, OrderHold, OrderLine, QuarantinedPayload
from models.purchasing import Approval, PurchaseOrder, PurchaseOrderLine
from models.returns import Refund, Return, ReturnLine
from models.shipping import PackCheck, Shipment
from models.stock import ChannelStock, RestockFigure, StockMovement
from models.sync import SyncWatermark
from models.webhooks import WebhookEvent

__all__ = [
    "Approval", "AuditEntry", "Base", "ChannelStock", "Customer", "CustomerAccount", "CustomerPII", "Order", "OrderAddress", "OrderHold",
    "OrderLine", "PackCheck", "Product", "PurchaseOrder", "PurchaseOrderLine", "QuarantinedPayload", "Refund", "RestockFigure", "Return", "ReturnLine", "SentAlert", "Shipment", "SideEffect", "StockMovement",
    "SyncWatermark", "Variant", "WebhookEvent",
]
