"""Every table, imported in one place for Alembic and the tests."""

from prodorder_api.auth.models import ApiKey
from prodorder_api.boms.models import Bom, BomByProduct, BomLine, BomOperation
from prodorder_api.db import Base
from prodorder_api.events.models import Event
from prodorder_api.idempotency.models import IdempotencyRecord
from prodorder_api.items.models import Item
from prodorder_api.locations.models import Location
from prodorder_api.orders.models import (
    OrderEvent,
    OrderLabour,
    OrderOperation,
    OrderRequirement,
    OrderReservation,
    ProductionOrder,
)
from prodorder_api.planning.models import PlanLine, PlanProposal, ProductionPlan
from prodorder_api.purchasing.models import PurchaseOrder, PurchaseOrderLine
from prodorder_api.stock.models import Lot, SerialNumber, StockBalance, StockMovement
from prodorder_api.unbuild.models import UnbuildOrder
from prodorder_api.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from prodorder_api.workcenters.models import WorkCenter

__all__ = [
    "ApiKey",
    "Base",
    "Bom",
    "BomByProduct",
    "BomLine",
    "BomOperation",
    "Event",
    "IdempotencyRecord",
    "Item",
    "Location",
    "Lot",
    "OrderEvent",
    "OrderLabour",
    "OrderOperation",
    "OrderRequirement",
    "OrderReservation",
    "PlanLine",
    "PlanProposal",
    "ProductionOrder",
    "ProductionPlan",
    "PurchaseOrder",
    "PurchaseOrderLine",
    "SerialNumber",
    "StockBalance",
    "StockMovement",
    "UnbuildOrder",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
    "WorkCenter",
]
