"""Every table, imported in one place for Alembic and the tests."""

from prodorder_api.boms.models import Bom, BomByProduct, BomLine, BomOperation
from prodorder_api.db import Base
from prodorder_api.items.models import Item
from prodorder_api.locations.models import Location
from prodorder_api.orders.models import (
    OrderEvent,
    OrderOperation,
    OrderRequirement,
    OrderReservation,
    ProductionOrder,
)
from prodorder_api.stock.models import Lot, SerialNumber, StockBalance, StockMovement

__all__ = [
    "Base",
    "Bom",
    "BomByProduct",
    "BomLine",
    "BomOperation",
    "Item",
    "Location",
    "Lot",
    "OrderEvent",
    "OrderOperation",
    "OrderRequirement",
    "OrderReservation",
    "ProductionOrder",
    "SerialNumber",
    "StockBalance",
    "StockMovement",
]
