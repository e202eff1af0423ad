"""prodorder-api: production orders, bills of materials and exact stock over HTTP."""

__version__ = "0.1.0"
