"""The interactive documentation at `/docs` (Swagger UI), with every script, style sheet
and icon served by the service itself.

FastAPI's own page loads Swagger UI from a CDN, so on a shop floor without internet it
stays blank. Here the bundle comes from the `fastapi-offline` package (MIT), which
vendors each new Swagger UI 5 release; its files are mounted under `ASSETS_URL` and the
page is FastAPI's, pointed at them. Swagger UI's "Authorize" takes an API key for the
bearer scheme the document declares, and "Try it out" then sends it.

There is no Redoc page: Redoc 2 (the same package ships it) always loads the logo of
its "API docs by Redocly" link from Redocly's CDN, with no option to turn it off, so it
would still reach out on every visit. `/redoc` sends the reader to `/docs`, and
`/openapi.json` serves any other viewer. Neither page is in the OpenAPI document.
"""

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs-assets"
# Where fastapi-offline keeps its bundles (fastapi_offline/static/). Its own factory is
# not used: it builds the FastAPI object, which create_app does.
ASSETS_PACKAGE = ("fastapi_offline", "static")
SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"
FAVICON = "favicon.png"


def install(app: FastAPI) -> None:
    """Mount the assets and add the page; the app is built with `docs_url=None,
    redoc_url=None`, so that FastAPI's CDN pages are not there too."""
    app.mount(ASSETS_URL, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")

    async def swagger_ui(request: Request) -> HTMLResponse:
        # Behind a proxy that serves the app under a prefix, the prefix comes first.
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} — Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/{SWAGGER_JS}",
            swagger_css_url=f"{root}{ASSETS_URL}/{SWAGGER_CSS}",
            swagger_favicon_url=f"{root}{ASSETS_URL}/{FAVICON}",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    async def redoc(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{request.scope.get('root_path', '')}{DOCS_URL}")

    app.add_api_route(DOCS_URL, swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route(REDOC_URL, redoc, methods=["GET"], include_in_schema=False)
