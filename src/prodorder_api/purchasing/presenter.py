"""A purchase order as the API shows it (``schemas.PurchaseOrderOut``)."""

from prodorder_api.money import ZERO
from prodorder_api.purchasing.models import PurchaseOrder
from prodorder_api.purchasing.schemas import PurchaseLineOut, PurchaseOrderOut, format_number
from prodorder_api.purchasing.states import ALLOWED, OPEN_STATUSES


def present(order: PurchaseOrder) -> PurchaseOrderOut:
    still_open = order.status in OPEN_STATUSES
    return PurchaseOrderOut(
        id=order.id,
        number=format_number(order.number),
        status=order.status,
        allowed_actions=list(ALLOWED[order.status]),  # type: ignore[index]
        supplier=order.supplier,
        reference=order.reference,
        production_plan_id=order.production_plan_id,
        lines=[
            PurchaseLineOut(
                id=line.id,
                item_id=line.item_id,
                quantity=line.quantity,
                unit_cost=line.unit_cost,
                due_date=line.due_date,
                received_quantity=line.received_quantity,
                remaining_quantity=line.remaining_quantity if still_open else ZERO,
            )
            for line in order.lines
        ],
        metadata=order.meta,
        version=order.version,
        created_at=order.created_at,
        updated_at=order.updated_at,
        received_at=order.received_at,
        cancelled_at=order.cancelled_at,
    )
