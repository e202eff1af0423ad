"""The pages a person opens, in a real browser: headless Chromium (Debian's `chromium`,
driven by Playwright) against the live server (`prodorder-api serve`, SQLite).

`/docs` is opened with every request that would leave 127.0.0.1 refused, as on a
machine without internet: Swagger UI must still come up, take an API key in its
Authorize dialog and run "list items" to a 200. The HTML work order must show with its
styles applied under its strict Content-Security-Policy, with no console error and its
QR code visible. Each test saves a screenshot under its tmp_path.

Under `CI=true` a missing chromium fails these tests instead of skipping them
(`make test` installs it: the Makefile's `tools` target).
"""

import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Response,
    Route,
    async_playwright,
    expect,
)
from scripts.live_server import LiveServer, live_server

from tests.helpers import create_item, ok, receive
from tests.order_helpers import act, create_bom, create_order

CHROMIUM = Path("/usr/bin/chromium")
LOOPBACK = "127.0.0.1"
# Bounds for a hung page on a loaded machine (2 shared cores), never speed requirements.
TIMEOUT_MS = 60_000
LOCAL_SCHEMES = ("data", "blob", "about")
expect.set_options(timeout=TIMEOUT_MS)  # every assertion below waits this long at most


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires {CHROMIUM} (make tools installs Debian's chromium)")
        pytest.skip(f"no {CHROMIUM} (make tools installs Debian's chromium)")
    return CHROMIUM


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("browser")) as live:
        yield live


@pytest.fixture(scope="module")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium))
        try:
            yield launched
        finally:
            await launched.close()


class Offline:
    """A browser context that lets only loopback requests through, and remembers every
    request that was tried, so a test can show that none went anywhere else."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.refused: list[str] = []
        self.answers: list[tuple[str, int]] = []

    def seen(self, request: Request) -> None:
        self.requests.append(request.url)

    def answered(self, response: Response) -> None:
        self.answers.append((response.url, response.status))

    async def route(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == LOOPBACK:
            await route.continue_()
        else:
            self.refused.append(url)
            await route.abort("internetdisconnected")

    def outside(self) -> list[str]:
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme not in LOCAL_SCHEMES and urlsplit(url).hostname != LOOPBACK
        ]


@pytest.fixture
async def offline(browser: Browser) -> AsyncIterator[tuple[BrowserContext, Offline]]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    watch = Offline()
    context.on("request", watch.seen)
    context.on("response", watch.answered)
    await context.route("**/*", watch.route)
    try:
        yield context, watch
    finally:
        await context.close()


def _errors(page: Page) -> list[str]:
    """Console errors and uncaught exceptions on ``page``, from now on."""
    errors: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    return errors


def _policy_violations(page: Page) -> list[str]:
    """What Chromium reports as blocked by the page's Content-Security-Policy."""
    violations: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page.on("console", console)
    return violations


async def test_swagger_ui_runs_list_items_with_a_key_and_nothing_from_outside(
    server: LiveServer, offline: tuple[BrowserContext, Offline], tmp_path: Path
) -> None:
    context, watch = offline
    page = await context.new_page()
    errors = _errors(page)
    await page.goto(f"{server.base_url}/docs", wait_until="load")
    assert watch.outside() == [], f"/docs reached out: {watch.outside()}"
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("prodorder-api")

    await page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".modal-ux")
    await dialog.get_by_label("auth-bearer-value").fill(server.token)
    await dialog.get_by_role("button", name="Apply credentials").click()
    await expect(dialog.get_by_role("button", name="Remove authorization")).to_be_visible()
    await dialog.get_by_role("button", name="Close").click()
    await expect(dialog).to_have_count(0)

    operation = page.locator("#operations-items-listItems")
    await operation.locator(".opblock-summary").click()
    await operation.get_by_role("button", name="Try it out").click()
    async with page.expect_response(
        lambda response: urlsplit(response.url).path == "/v1/items", timeout=TIMEOUT_MS
    ) as answer:
        await operation.get_by_role("button", name="Execute").click()
    response = await answer.value
    sent = await response.request.all_headers()
    assert sent.get("authorization") == f"Bearer {server.token}"
    assert response.status == 200, await response.text()
    shown = operation.locator(".live-responses-table .response .response-col_status")
    await expect(shown.first).to_have_text("200")
    await expect(operation.locator(".live-responses-table")).to_contain_text('"data"')

    # The viewport with the live answer in it (the whole page is some 18,000 px tall).
    await operation.locator(".live-responses-table").scroll_into_view_if_needed()
    screenshot = tmp_path / "docs.png"
    await page.screenshot(path=screenshot)
    print(f"/docs: {len(watch.requests)} requests, {screenshot}")
    for url, status in watch.answers:
        print(f"  {status} {url}")
    assert watch.outside() == [], watch.outside()
    assert watch.refused == []
    assert errors == []


async def test_the_docs_page_names_only_its_own_assets_and_redoc_leads_there(
    server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as web:
        page = await web.get("/docs")
        assert page.status_code == 200
        links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert links and all(link.startswith("/docs-assets/") for link in links), links
        for link in links:
            asset = await web.get(link)
            assert asset.status_code == 200, link
        redoc = await web.get("/redoc")
        assert redoc.status_code == 307 and redoc.headers["location"] == "/docs"
        document = (await web.get("/openapi.json")).json()
    assert not [
        path for path in document["paths"] if not path.startswith(("/v1/", "/healthz", "/readyz"))
    ]
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


async def _released_order(api: httpx.AsyncClient) -> dict[str, Any]:
    product = await create_item(api, name="Gear wheel Ø40")
    steel = await create_item(api, name="Steel blank", tracking="lot")
    await receive(api, steel["id"], 10, lot_code="S-1", expiry_date="2031-05-31")
    steps = [{"sequence": 10, "name": "Turn", "run_minutes": 4, "instructions": "Deburr."}]
    await create_bom(api, product["id"], [(steel["id"], 1)], operations=steps)
    order = await create_order(api, product["id"], 3, notes="Keep dry.")
    return ok(await act(api, order, "release"))  # type: ignore[no-any-return]


async def test_the_html_work_order_shows_styled_under_its_policy_with_its_qr_code(
    server: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=60) as api:
        order = await _released_order(api)
    context = await browser.new_context(extra_http_headers=headers)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = await context.new_page()
        errors = _errors(page)
        violations = _policy_violations(page)
        url = f"{server.base_url}/v1/production-orders/{order['id']}/work-order.html"
        response = await page.goto(url)
        assert response is not None and response.status == 200, response
        policy = await response.header_value("content-security-policy")
        assert policy is not None and policy.startswith("default-src 'none'"), policy

        await expect(
            page.get_by_role("heading", name=f"Work order {order['number']}")
        ).to_be_visible()
        assert violations == [], violations
        cell = page.locator("td").first
        await expect(cell).to_have_css("border-top-style", "solid")
        await expect(cell).to_have_css("border-top-width", "1px")
        await expect(cell).to_have_css("border-top-color", "rgb(153, 153, 153)")
        await expect(page.locator("table").first).to_have_css("border-collapse", "collapse")
        await expect(page.locator("th").first).to_have_css("background-color", "rgb(238, 238, 238)")
        qr = page.locator(".code svg")
        await expect(qr).to_be_visible()
        box = await qr.bounding_box()
        assert box is not None and box["width"] > 50 and box["height"] > 50, box

        screenshot = tmp_path / "work-order.png"
        await page.screenshot(path=screenshot, full_page=True)
        print(f"work order {order['number']}: {screenshot}; QR {box['width']}×{box['height']}")
        assert errors == []
        assert violations == []
    finally:
        await context.close()
