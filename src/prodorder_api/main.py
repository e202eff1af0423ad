"""ASGI entry point: ``uvicorn prodorder_api.main:app``."""

import gc

from prodorder_api.app import create_app

app = create_app()

# The modules and the app live as long as the process: out of the collector's sight,
# so that a full collection walks only what requests left behind.
gc.collect()
gc.freeze()
