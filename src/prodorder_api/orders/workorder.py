"""The shop-floor work order: one document a person on the floor can hold.

HTML comes from a Jinja2 template, the PDF from fpdf2 (pure Python), and the order
number is also a QR code (segno) in both. Nothing here writes PDF bytes by hand.
"""

import io
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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
    location: str
    output_location: str
    materials: list[dict[str, Any]] = field(default_factory=list)
    operations: list[dict[str, Any]] = field(default_factory=list)
    printed_at: str = ""


async def build(session: AsyncSession, order: ProductionOrder) -> WorkOrder:
    """Everything the document shows, in three batched queries."""
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
    document = WorkOrder(
        number=format_number(order.number),
        status=order.status,
        product=items[order.item_id],
        quantity=to_json(order.quantity),
        planned_start=order.planned_start.isoformat() if order.planned_start else None,
        due_date=order.due_date.isoformat() if order.due_date else None,
        reference=order.reference,
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
                    {"lot": r.lot_code or None, "quantity": to_json(r.quantity)}
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


def render_html(document: WorkOrder) -> str:
    qr_svg = segno.make(document.number, error="m").svg_inline(scale=4)
    return _templates.get_template("work_order.html").render(**document.__dict__, qr_svg=qr_svg)


def render_pdf(document: WorkOrder) -> bytes:
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_title(f"Work order {document.number}")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    qr = io.BytesIO()
    segno.make(document.number, error="m").save(qr, kind="png", scale=6, border=2)
    pdf.image(qr, x=165, y=10, w=30, h=30)
    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(0, 10, _latin(f"Work order {document.number}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    for label, value in (
        ("Product", f"{document.product.sku} - {document.product.name}"),
        ("Quantity", f"{document.quantity} {document.product.uom}"),
        ("Status", document.status),
        ("Planned start", document.planned_start or "-"),
        ("Due", document.due_date or "-"),
        ("Reference", document.reference or "-"),
        ("Output to", document.output_location),
    ):
        pdf.cell(35, 6, _latin(label + ":"))
        pdf.cell(0, 6, _latin(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    _table(
        pdf,
        "Materials",
        ("Component", "Required", "Consumed", "Location", "Reserved lots"),
        (60, 28, 28, 25, 49),
        [
            (
                f"{m['sku']} - {m['name']}",
                f"{m['required']} {m['uom']}",
                m["consumed"],
                document.location,
                ", ".join(f"{r['lot'] or '(no lot)'}: {r['quantity']}" for r in m["reservations"])
                or "-",
            )
            for m in document.materials
        ],
    )
    _table(
        pdf,
        "Operations",
        ("#", "Operation", "Work center", "Planned min", "Instructions"),
        (12, 40, 40, 26, 72),
        [
            (
                str(op["sequence"]),
                op["name"],
                op["work_center"] or "-",
                op["planned_minutes"],
                op["instructions"] or "",
            )
            for op in document.operations
        ],
    )
    pdf.set_font("Helvetica", "I", 8)
    pdf.cell(0, 6, _latin(f"Printed {document.printed_at} - prodorder-api"))
    return bytes(pdf.output())


def _table(
    pdf: FPDF,
    title: str,
    headings: tuple[str, ...],
    widths: tuple[int, ...],
    rows: list[tuple[str, ...]],
) -> None:
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    with pdf.table(col_widths=widths, text_align="LEFT", line_height=5) as table:
        header = table.row()
        for heading in headings:
            header.cell(heading)
        for values in rows:
            row = table.row()
            for value in values:
                row.cell(_latin(value))
    pdf.ln(3)


def _latin(text: str) -> str:
    """The PDF's core fonts are Latin-1: keep what fits, replace the rest."""
    return text.encode("latin-1", "replace").decode("latin-1")
