"""The FastAPI application: routers, error handlers, middleware and the OpenAPI document."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from prodorder_api import __version__, docs_ui, metrics, openapi_doc
from prodorder_api.auth import service as auth
from prodorder_api.auth.router import router as api_keys_router
from prodorder_api.boms.router import router as boms_router
from prodorder_api.db import create_engine, create_sessionmaker
from prodorder_api.demands.router import router as demands_router
from prodorder_api.errors import PROBLEM_MEDIA_TYPE, install_handlers
from prodorder_api.events.router import router as events_router
from prodorder_api.guard import Guard
from prodorder_api.health.router import router as health_router
from prodorder_api.idempotency.service import Replay
from prodorder_api.items.router import router as items_router
from prodorder_api.locations.router import router as locations_router
from prodorder_api.lots.router import router as lots_router
from prodorder_api.metrics import MetricsMiddleware
from prodorder_api.observability import RequestIdMiddleware, configure_logging
from prodorder_api.orders.router import router as orders_router
from prodorder_api.orders.supply import router as item_stock_router
from prodorder_api.planning.router import router as planning_router
from prodorder_api.purchasing.router import router as purchasing_router
from prodorder_api.ratelimit import RateLimits
from prodorder_api.read_routing import document_consistency, open_replica
from prodorder_api.reports.router import router as reports_router
from prodorder_api.settings import Settings, get_settings
from prodorder_api.stock.router import router as stock_router
from prodorder_api.unbuild.router import router as unbuild_router
from prodorder_api.webhooks import dispatcher
from prodorder_api.webhooks.router import router as webhooks_router
from prodorder_api.workcenters.router import router as work_centers_router

DESCRIPTION = """\
Production orders, bills of materials and exact stock over HTTP.

* Quantities and amounts are exact decimals sent as JSON strings (`"12.5"`); input
  accepts a string or a number, at most 6 decimal places.
* Errors are RFC 9457 `application/problem+json` with a machine `code`; 503
  `service_unavailable` (with `Retry-After`) when the database is out of reach.
* Lists are `{data, next_cursor}`; pass `next_cursor` back as `cursor`.
* Every response carries `X-Request-ID`.
* Every `/v1` request needs `Authorization: Bearer <token>`, checked before the body is
  read. Bodies are at most 1 MiB by default (413 `payload_too_large`). When the service
  has a rate limit set, answers carry `RateLimit-Limit`, `RateLimit-Remaining` and
  `RateLimit-Reset`, and 429 `rate_limited` comes with `Retry-After`.
* The server bounds each connection: headers at most 16 KiB (431 `headers_too_large`)
  and within 10 s (408 `request_timeout`), a cap on open connections (503 with
  `Retry-After`), idle keep-alives closed after 5 s (all configurable).
* Every change is an event: pull them from `GET /v1/events` in commit order, or have
  them pushed by a webhook (`POST /v1/webhooks`, signed per Standard Webhooks).
"""

TAGS = [
    {"name": "items", "description": "Articles that are stocked, bought and made."},
    {"name": "locations", "description": "Where stock is kept; `MAIN` always exists."},
    {"name": "stock", "description": "Balances and the immutable movement ledger."},
    {"name": "lots", "description": "Lots and their traceability through production."},
    {"name": "boms", "description": "Bills of materials: revisions, explosion, cost roll-up."},
    {
        "name": "production-orders",
        "description": "Orders from planned to completed: reservations, consumption, output.",
    },
    {
        "name": "demands",
        "description": "A webshop's or ERP's order and the production orders made for it.",
    },
    {
        "name": "production-plans",
        "description": "The master plan, MRP over every BOM level, and firming its proposals.",
    },
    {
        "name": "purchase-orders",
        "description": "What is bought from suppliers: incoming stock that MRP nets,"
        " received in parts at the line's cost.",
    },
    {"name": "work-centers", "description": "Where operations are done, at what rate."},
    {
        "name": "unbuild-orders",
        "description": "Finished goods taken apart: their components back in stock, exactly.",
    },
    {
        "name": "reports",
        "description": "Shortages, stock valuation, consumption, production and capacity,"
        " computed in SQL.",
    },
    {
        "name": "events",
        "description": "The pull feed of every change, in commit order (the outbox).",
    },
    {
        "name": "webhooks",
        "description": "Events pushed to your URL, signed per Standard Webhooks, retried.",
    },
    {
        "name": "api-keys",
        "description": "Bearer keys with a scope; the token is shown once, on creation.",
    },
    {"name": "health", "description": "Liveness and readiness probes."},
]


# In the OpenAPI document's order.
ROUTERS = (
    health_router,
    items_router,
    item_stock_router,
    locations_router,
    stock_router,
    lots_router,
    boms_router,
    orders_router,
    demands_router,
    planning_router,
    purchasing_router,
    work_centers_router,
    reports_router,
    events_router,
    webhooks_router,
    unbuild_router,
    api_keys_router,
)


def operation_id(route: APIRoute) -> str:
    """`create_item` → `createItem`: stable, readable names for generated clients."""
    head, *rest = route.name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            pgbouncer=settings.db_pgbouncer,
        )
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.replica = open_replica(settings, engine)
        app.state.rate_limits = RateLimits(settings.rate_limit, settings.redis_url)
        if settings.bootstrap_key:
            async with app.state.sessionmaker() as session, session.begin():
                await auth.install(session, settings.bootstrap_key, "bootstrap", "admin")
        try:
            async with AsyncExitStack() as background:
                if settings.dispatcher:
                    app.state.dispatcher = await background.enter_async_context(
                        dispatcher.running(app.state.sessionmaker, settings)
                    )
                yield
        finally:
            await engine.dispose()
            if app.state.replica is not None:
                await app.state.replica.dispose()

    app = FastAPI(
        title="prodorder-api",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        docs_url=None,  # docs_ui serves /docs without a CDN (and no Redoc)
        redoc_url=None,
    )
    app.state.settings = settings
    install_handlers(app)
    app.add_exception_handler(Replay, lambda _request, exc: exc.response())
    # Added first, so innermost: the guard inside the metrics, both inside the request id.
    app.add_middleware(Guard, settings=settings)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.add_api_route("/metrics", metrics.render, include_in_schema=False, methods=["GET"])
    # Requests are matched against routes in order, one by one (~1 µs each): the
    # production orders, the hottest paths, come first. The document keeps its own order.
    for router in sorted(ROUTERS, key=lambda router: router is not orders_router):
        app.include_router(router)
    docs_ui.install(app)
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    return app


UNAVAILABLE_RESPONSE = {
    "description": "The database cannot be reached or has no connection free "
    "(`service_unavailable`); retry after `Retry-After` seconds, with the same "
    "`Idempotency-Key` for a write.",
    "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
}


_RATE_HEADERS = {
    "RateLimit-Limit": "Requests allowed in the window.",
    "RateLimit-Remaining": "Requests left in the window.",
    "RateLimit-Reset": "Seconds until the window has room again.",
}
RATE_LIMITED_RESPONSE = {
    "description": "Too many requests for this API key (`rate_limited`); retry after "
    "`Retry-After` seconds. Sent only when the service has a rate limit set.",
    "headers": {
        "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}},
        **{
            name: {"description": text, "schema": {"type": "integer"}}
            for name, text in _RATE_HEADERS.items()
        },
    },
}
TOO_LARGE_RESPONSE = {
    "description": "The body is larger than `PRODORDER_MAX_BODY_BYTES` (default 1 MiB) "
    "(`payload_too_large`); nothing was read or changed."
}
BODY_TIMEOUT_RESPONSE = {
    "description": "The headers did not arrive within `PRODORDER_HEADER_TIMEOUT_S`, or "
    "the body within `PRODORDER_BODY_TIMEOUT_S` (`request_timeout`); nothing was changed."
}
HEAD_TIMEOUT_RESPONSE = {
    "description": "The request line and headers did not arrive within "
    "`PRODORDER_HEADER_TIMEOUT_S` (default 10 s) (`request_timeout`); answered by the "
    "server, which then closes the connection."
}
HEADERS_TOO_LARGE_RESPONSE = {
    "description": "The request line and headers are over `PRODORDER_MAX_HEADER_BYTES` "
    "(default 16 KiB) (`headers_too_large`); answered by the server, which then closes "
    "the connection."
}
CONNECTIONS_FULL_RESPONSE = {
    "description": "The server has `PRODORDER_MAX_CONNECTIONS` connections open "
    "(`service_unavailable`); retry after `Retry-After` seconds.",
    "headers": UNAVAILABLE_RESPONSE["headers"],
}


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with error responses as `application/problem+json` only."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    documented = [r.path for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    schema["paths"] = dict(
        sorted(schema.get("paths", {}).items(), key=lambda path: documented.index(path[0]))
    )
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for route, path in schema.get("paths", {}).items():
        for operation in path.values():
            responses = operation["responses"]
            if route != "/healthz":  # every other route reads the database
                responses.setdefault("503", dict(UNAVAILABLE_RESPONSE))
            if route.startswith("/v1/"):  # answered by guard.Guard, before routing
                responses.setdefault("429", dict(RATE_LIMITED_RESPONSE))
                if "requestBody" in operation:
                    responses.setdefault("408", dict(BODY_TIMEOUT_RESPONSE))
                    responses.setdefault("413", dict(TOO_LARGE_RESPONSE))
            # Answered by serve (http_protocol.py) on any path, before the app.
            responses.setdefault("408", dict(HEAD_TIMEOUT_RESPONSE))
            responses.setdefault("431", dict(HEADERS_TOO_LARGE_RESPONSE))
            responses.setdefault("503", dict(CONNECTIONS_FULL_RESPONSE))
            responses["503"].setdefault("headers", UNAVAILABLE_RESPONSE["headers"])
            for status, response in operation.get("responses", {}).items():
                if status[0] in "45":
                    response["content"] = problem
            _optional_body_without_null(operation)
    document_consistency(schema)
    # FastAPI's own 422 models are replaced by Problem everywhere.
    for unused in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(unused, None)
    _name_components_by_title(schema)
    openapi_doc.finish(schema)
    app.openapi_schema = schema
    return schema


def _optional_body_without_null(operation: dict[str, Any]) -> None:
    """An optional body (`ReleaseRequest | None`) is documented as its model alone:
    a caller leaves it out rather than sending `null`, and generated clients then send
    nothing when given nothing."""
    body = operation.get("requestBody")
    if body is None or body.get("required"):
        return
    for media in body.get("content", {}).values():
        variants = media.get("schema", {}).get("anyOf", [])
        models = [variant for variant in variants if variant != {"type": "null"}]
        if len(variants) == 2 and len(models) == 1:
            media["schema"] = models[0]


_SCHEMA_REF = "#/components/schemas/"


def _name_components_by_title(schema: dict[str, Any]) -> None:
    """Pydantic names a generic model's component after its origin and arguments
    (`Page_ItemOut_`); generated clients read better with the model's own title
    (`ItemPage`, from `Page.model_parametrized_name`)."""
    components: dict[str, Any] = schema.get("components", {}).get("schemas", {})
    renames = {
        name: body["title"]
        for name, body in components.items()
        if body.get("title", name) != name and body["title"] not in components
    }
    if not renames:
        return
    schema["components"]["schemas"] = dict(
        sorted((renames.get(name, name), body) for name, body in components.items())
    )

    def rename_refs(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.removeprefix(_SCHEMA_REF) in renames:
                node["$ref"] = _SCHEMA_REF + renames[ref.removeprefix(_SCHEMA_REF)]
            for value in node.values():
                rename_refs(value)
        elif isinstance(node, list):
            for value in node:
                rename_refs(value)

    rename_refs(schema)
