"""The shop-floor work order: one document a person on the floor can hold.

HTML comes from a Jinja2 template, the PDF from fpdf2 (pure Python), and the order
number is also a regular QR code (segno) in both: Micro QR, which segno picks for
short texts, is read by few phone and handheld scanners. Nothing here writes PDF
bytes by hand. The PDF's text is set in DejaVu Sans, shipped beside this module
(fonts/, with its licence), so that any Latin, Greek or Cyrillic name prints as it
is; both documents show the same fields.
"""

import base64
import hashlib
import io
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import segno
from fpdf import FPDF
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.items.models import Item
from prodorder_api.locations.models import Location
from prodorder_api.money import to_json
from prodorder_api.orders.models import ProductionOrder
from prodorder_api.orders.schemas import format_number
from prodorder_api.stock.models import Lot
from prodorder_api.workcenters.models import WorkCenter

_templates = Environment(
    loader=PackageLoader("prodorder_api.orders", "templates"),
    autoescape=select_autoescape(["html"]),
)


@dataclass
class WorkOrder:
    number: str
    status: str
    product: Item
    quantity: str
    planned_start: str | None
    due_date: str | None
    reference: str | None
    notes: str | None
    location: str
    output_location: str
    materials: list[dict[str, Any]] = field(default_factory=list)
    operations: list[dict[str, Any]] = field(default_factory=list)
    printed_at: str = ""


async def build(session: AsyncSession, order: ProductionOrder) -> WorkOrder:
    """Everything the document shows, in four batched queries."""
    item_ids = {order.item_id, *(r.component_item_id for r in order.requirements)}
    items = {i.id: i for i in await session.scalars(select(Item).where(Item.id.in_(item_ids)))}
    location_ids = {order.location_id, order.output_location_id}
    locations = {
        loc.id: loc.code
        for loc in await session.scalars(select(Location).where(Location.id.in_(location_ids)))
    }
    center_ids = {op.work_center_id for op in order.operations if op.work_center_id}
    centers: dict[uuid.UUID, WorkCenter] = {
        c.id: c
        for c in await session.scalars(select(WorkCenter).where(WorkCenter.id.in_(center_ids)))
    }
    lot_codes = {r.lot_code for r in order.reservations if r.lot_code}
    expiry = {
        (lot.item_id, lot.code): lot.expiry_date
        for lot in (
            await session.scalars(select(Lot).where(Lot.code.in_(lot_codes))) if lot_codes else []
        )
    }
    document = WorkOrder(
        number=format_number(order.number),
        status=order.status,
        product=items[order.item_id],
        quantity=to_json(order.quantity),
        planned_start=order.planned_start.isoformat() if order.planned_start else None,
        due_date=order.due_date.isoformat() if order.due_date else None,
        reference=order.reference,
        notes=order.notes,
        location=locations[order.location_id],
        output_location=locations[order.output_location_id],
        printed_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    for requirement in order.requirements:
        item = items[requirement.component_item_id]
        document.materials.append(
            {
                "sku": item.sku,
                "name": item.name,
                "uom": item.uom,
                "required": to_json(requirement.required_quantity),
                "consumed": to_json(requirement.consumed_quantity),
                "consumption": requirement.consumption,
                "reservations": [
                    {
                        "lot": r.lot_code or None,
                        "quantity": to_json(r.quantity),
                        "expiry": _iso(expiry.get((item.id, r.lot_code))),
                    }
                    for r in order.reservations
                    if r.item_id == item.id
                ],
            }
        )
    for op in order.operations:
        center = centers.get(op.work_center_id) if op.work_center_id else None
        document.operations.append(
            {
                "sequence": op.sequence,
                "name": op.name,
                "instructions": op.instructions,
                "work_center": f"{center.code} ({center.name})" if center else None,
                "planned_minutes": to_json(op.planned_minutes),
                "actual_minutes": to_json(op.actual_minutes),
                "status": op.status,
            }
        )
    return document


def _iso(day: Any) -> str | None:
    return day.isoformat() if day is not None else None


def _qr(text: str) -> segno.QRCode:
    """A regular QR code (never Micro QR), medium error correction."""
    return segno.make_qr(text, error="m")


def render_html(document: WorkOrder) -> str:
    qr_svg = _qr(document.number).svg_inline(scale=4)
    return _templates.get_template("work_order.html").render(**document.__dict__, qr_svg=qr_svg)


_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)
NOSNIFF: Final = {"X-Content-Type-Options": "nosniff"}
NONE: Final = "'none'"


def html_headers(html: str) -> dict[str, str]:
    """The page may use its own style blocks and nothing else: no script, no image, no
    font or frame from anywhere, no form, no framing by other sites. The blocks are
    allowed by their SHA-256, taken from the page as sent, so a change to the template
    can never leave its styles blocked."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()}'"
        for block in _STYLE.findall(html)
    )
    policy = (
        f"default-src 'none'; style-src {hashes or NONE}; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return {"Content-Security-Policy": policy, "Referrer-Policy": "no-referrer", **NOSNIFF}


FONTS: Final = Path(__file__).with_name("fonts")
FONT: Final = "DejaVu"
DONE, OPEN = "\u2714", "\u2610"  # ✔ and ☐, as in the HTML
_LINE = 5.0  # mm per table line
_MARGIN = 15.0


class _Document(FPDF):
    """A4 with the order number and "page X of Y" on every page."""

    def __init__(self, number: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.number = number
        self.add_font(FONT, "", FONTS / "DejaVuSans.ttf")
        self.add_font(FONT, "B", FONTS / "DejaVuSans-Bold.ttf")
        self.set_margins(_MARGIN, _MARGIN, _MARGIN)
        self.set_auto_page_break(auto=True, margin=_MARGIN + 5)
        self.set_title(f"Work order {number}")

    def footer(self) -> None:
        self.set_y(-_MARGIN)
        self.set_font(FONT, "", 8)
        self.cell(0, 5, f"Work order {self.number}", align="L")
        self.set_x(self.l_margin)
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="R")

    def keep_with_next(self, height: float) -> None:
        """Start a new page unless ``height`` more fits on this one: a heading is never
        left alone at a page's foot, away from its table."""
        if self.will_page_break(height):
            self.add_page()


def render_pdf(document: WorkOrder) -> bytes:
    pdf = _Document(document.number)
    pdf.add_page()
    qr = io.BytesIO()
    _qr(document.number).save(qr, kind="png", scale=6, border=2)
    pdf.image(qr, x=165, y=10, w=30, h=30)
    pdf.set_font(FONT, "B", 20)
    pdf.cell(0, 10, f"Work order {document.number}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 11)
    for label, value in (
        ("Product", f"{document.product.sku} — {document.product.name}"),
        ("Quantity", f"{document.quantity} {document.product.uom}"),
        ("Status", document.status),
        ("Planned start", document.planned_start or "—"),
        ("Due", document.due_date or "—"),
        ("Reference", document.reference or "—"),
        ("Output to", document.output_location),
    ):
        pdf.cell(35, 6, label + ":")
        pdf.multi_cell(110, 6, value, new_x="LMARGIN", new_y="NEXT")
    if document.notes:
        pdf.ln(2)
        pdf.set_font(FONT, "B", 11)
        pdf.cell(0, 6, "Notes", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(FONT, "", 10)
        pdf.multi_cell(0, 5, document.notes, new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(max(pdf.get_y(), 45))
    pdf.ln(4)
    _table(
        pdf,
        "Materials",
        ("Component", "Required", "Consumed", "Location", "Reserved lots", "Issue"),
        (52, 24, 22, 22, 42, 18),
        [
            (
                f"{m['sku']} — {m['name']}",
                f"{m['required']} {m['uom']}",
                m["consumed"],
                document.location,
                "\n".join(_reserved(r) for r in m["reservations"]) or "—",
                m["consumption"],
            )
            for m in document.materials
        ],
    )
    _table(
        pdf,
        "Operations",
        ("#", "Operation", "Work center", "Planned min", "Actual min", "Instructions", "Done"),
        (10, 32, 32, 20, 20, 54, 12),
        [
            (
                str(op["sequence"]),
                op["name"],
                op["work_center"] or "—",
                op["planned_minutes"],
                op["actual_minutes"],
                op["instructions"] or "",
                DONE if op["status"] == "done" else OPEN,
            )
            for op in document.operations
        ],
        empty="No operations.",
    )
    pdf.set_font(FONT, "", 8)
    pdf.cell(0, 6, f"Printed {document.printed_at} · prodorder-api")
    return bytes(pdf.output())


def _reserved(reservation: dict[str, Any]) -> str:
    text = f"{reservation['lot'] or '(no lot)'}: {reservation['quantity']}"
    return f"{text} (exp. {reservation['expiry']})" if reservation.get("expiry") else text


def _table(
    pdf: _Document,
    title: str,
    headings: tuple[str, ...],
    widths: tuple[int, ...],
    rows: list[tuple[str, ...]],
    empty: str = "—",
) -> None:
    # The heading, the table's head and its first row stay together.
    pdf.keep_with_next(8 + 3 * 2 * _LINE)
    pdf.set_font(FONT, "B", 13)
    pdf.cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 9)
    with pdf.table(
        col_widths=widths, text_align="LEFT", line_height=_LINE, repeat_headings=1
    ) as table:
        header = table.row()
        for heading in headings:
            header.cell(heading)
        for values in rows or [(empty, *[""] * (len(headings) - 1))]:
            row = table.row()
            for value in values:
                row.cell(value)
    pdf.ln(3)
