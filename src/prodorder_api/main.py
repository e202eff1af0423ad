"""ASGI entry point: ``uvicorn prodorder_api.main:app``."""

from prodorder_api.app import create_app

app = create_app()
