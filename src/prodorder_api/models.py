"""Every table, imported in one place for Alembic and the tests."""

from prodorder_api.db import Base
from prodorder_api.items.models import Item
from prodorder_api.locations.models import Location
from prodorder_api.stock.models import Lot, SerialNumber, StockBalance, StockMovement

__all__ = ["Base", "Item", "Location", "Lot", "SerialNumber", "StockBalance", "StockMovement"]
