"""The printed work order as the floor uses it: a QR code a scanner reads, names in any
European script, the order number and "page X of Y" on every page, headings kept with
their tables, and the same fields as the HTML (notes and lot expiry included)."""

import base64
import hashlib
import io
import re
from typing import Any

import httpx
import zxingcpp
from pypdf import PdfReader

from tests.helpers import create_item, ok, receive
from tests.order_helpers import act, create_bom, create_order

PRODUCT = "Zahnrad Ø40 — Stahl"
CYRILLIC = "Шестерня"
POLISH = "Łożysko żółte"
NOTES = "Härten ≥ 58 HRC. „Nicht“ stapeln — ‘fragile’."


async def _order(client: httpx.AsyncClient, operations: int) -> dict[str, Any]:
    product = await create_item(client, name=PRODUCT)
    gear = await create_item(client, name=CYRILLIC, tracking="lot")
    bearing = await create_item(client, name=POLISH)
    await receive(client, gear["id"], 10, lot_code="G-7", expiry_date="2031-05-31")
    await receive(client, bearing["id"], 10)
    steps = [
        {"sequence": 10 * (n + 1), "name": f"Schritt {n + 1}", "run_minutes": 2,
         "instructions": "Entgraten, prüfen und säubern. " * 3}
        for n in range(operations)
    ]  # fmt: skip
    await create_bom(client, product["id"], [(gear["id"], 1), (bearing["id"], 2)], operations=steps)
    order = await create_order(client, product["id"], 3, notes=NOTES)
    return ok(await act(client, order, "release"))  # type: ignore[no-any-return]


def _pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


async def test_the_pdf_prints_every_script_and_numbers_its_pages(client: httpx.AsyncClient) -> None:
    order = await _order(client, operations=40)
    response = await client.get(f"/v1/production-orders/{order['id']}/work-order.pdf")
    assert response.status_code == 200
    pages = _pages(response.content)
    assert len(pages) >= 2
    text = "\n".join(pages)
    for words in (PRODUCT, CYRILLIC, *POLISH.split(), "≥ 58 HRC", "„Nicht“", "‘fragile’"):
        assert words in text, words

    assert "?" not in text
    assert "G-7: 3 (exp. 2031-05-31)" in text
    for number, page in enumerate(pages, start=1):
        assert f"Work order {order['number']}" in page, number
        assert f"Page {number} of {len(pages)}" in page
    # What the HTML shows is all there: how each line is issued, actual minutes, done boxes.
    for column in ("Issue", "Actual min", "Done", "backflush", "☐"):
        assert column in text, column


async def test_no_page_ends_with_a_heading(client: httpx.AsyncClient) -> None:
    # Enough operations that "Operations" would fall near a page's foot for some count.
    for operations in (1, 12, 13, 14):
        order = await _order(client, operations=operations)
        response = await client.get(f"/v1/production-orders/{order['id']}/work-order.pdf")
        for page in _pages(response.content):
            body = [
                line for line in page.splitlines() if not re.match(r"^(Work order|Page )", line)
            ]
            body = [line for line in body if "Page " not in line and line.strip()]
            assert body[-1].strip() not in ("Materials", "Operations", "Notes"), page


async def test_the_code_is_a_qr_code_a_scanner_reads(client: httpx.AsyncClient) -> None:
    order = await _order(client, operations=1)
    response = await client.get(f"/v1/production-orders/{order['id']}/work-order.pdf")
    image = PdfReader(io.BytesIO(response.content)).pages[0].images[0].image
    codes = zxingcpp.read_barcodes(image)
    assert [(code.format, code.text) for code in codes] == [
        (zxingcpp.BarcodeFormat.QRCode, order["number"])
    ]


async def test_the_html_shows_notes_and_lot_expiry(client: httpx.AsyncClient) -> None:
    order = await _order(client, operations=1)
    response = await client.get(f"/v1/production-orders/{order['id']}/work-order.html")
    assert response.status_code == 200
    html = response.text
    assert PRODUCT in html and CYRILLIC in html
    assert "Härten ≥ 58 HRC." in html
    assert "G-7: 3 (exp. 2031-05-31)" in html


async def test_the_html_allows_its_own_styles_and_nothing_else(client: httpx.AsyncClient) -> None:
    order = await _order(client, operations=1)
    response = await client.get(f"/v1/production-orders/{order['id']}/work-order.html")
    assert response.headers["x-content-type-options"] == "nosniff"
    directives = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'" and directives["form-action"] == "'none'"
    assert "script-src" not in directives  # falls back to default-src: no script runs
    # The one style block, allowed by the hash a browser computes from the page as sent.
    styles = re.findall(r"<style>(.*?)</style>", response.text, re.DOTALL)
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert directives["style-src"] == f"'sha256-{digest}'"
    assert "style=" not in response.text  # an inline attribute would be blocked


async def test_the_pdf_is_not_sniffed(client: httpx.AsyncClient) -> None:
    order = await _order(client, operations=1)
    response = await client.get(f"/v1/production-orders/{order['id']}/work-order.pdf")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-type"] == "application/pdf"
