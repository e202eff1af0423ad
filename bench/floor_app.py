"""The floor's HTTP server (see ``floor.py``): a bare ASGI app, no framework.

``POST /<client>/<step>`` runs that client's step; the body carries the variables
``create`` returned (the new order's number and ids). ``FLOOR_MODE=statements`` sends
the step's statements one by one in a transaction and answers with the last one's
rendered document; ``FLOOR_MODE=functions`` calls the step's PL/pgSQL function.
"""

import json
import os
from pathlib import Path
from typing import Any

import asyncpg

from bench import floor

SCRIPTS = floor.load(sorted(Path(os.environ["FLOOR_SCRIPTS"]).glob("lifecycle-*.sql")))
DSN = os.environ["FLOOR_DSN"]
FUNCTIONS = os.environ.get("FLOOR_MODE") == "functions"
CLIENTS: dict[str, floor.Client] = {}


async def _client(key: str) -> floor.Client:
    if key not in CLIENTS:
        CLIENTS[key] = floor.Client(key, SCRIPTS[key], await asyncpg.connect(DSN), FUNCTIONS)
    return CLIENTS[key]


async def _respond(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        for client in CLIENTS.values():
            await client.conn.close()
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/ready":
        await _respond(send, 200, b"{}")
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    _, key, step = scope["path"].split("/")
    client = await _client(key)
    try:
        answer = await client.step(step, json.loads(body) if body else {})
    except Exception as exc:  # the driver counts it; the bench reports it
        await _respond(send, 500, json.dumps({"error": repr(exc)}).encode())
        return
    await _respond(send, 200, answer)
