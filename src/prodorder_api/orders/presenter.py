"""ORM order → API representation (computed fields included)."""

from typing import Any

from prodorder_api.money import ZERO
from prodorder_api.orders import states
from prodorder_api.orders.models import ProductionOrder
from prodorder_api.orders.schemas import (
    DemandOut,
    HistoryEntry,
    OperationOut,
    OrderOut,
    OrderSummary,
    RequirementOut,
    ReservationOut,
    format_number,
)


def present(order: ProductionOrder) -> OrderOut:
    requirements = []
    for requirement in order.requirements:
        # By location and lot code, however they were loaded.
        held = sorted(
            (r for r in order.reservations if r.item_id == requirement.component_item_id),
            key=lambda r: (r.location_id, r.lot_code),
        )
        requirements.append(
            RequirementOut(
                component_item_id=requirement.component_item_id,
                required_quantity=requirement.required_quantity,
                reserved_quantity=sum((r.quantity for r in held), ZERO),
                consumed_quantity=requirement.consumed_quantity,
                consumption=requirement.consumption,
                in_bom=requirement.in_bom,
                reservations=[ReservationOut.model_validate(r) for r in held],
            )
        )
    return OrderOut(
        id=order.id,
        number=format_number(order.number),
        status=order.status,
        allowed_actions=list(states.ALLOWED[order.status]),  # type: ignore[index]
        item_id=order.item_id,
        quantity=order.quantity,
        bom_id=order.bom_id,
        location_id=order.location_id,
        output_location_id=order.output_location_id,
        produced_quantity=order.produced_quantity,
        scrapped_quantity=order.scrapped_quantity,
        requirements=requirements,
        operations=[OperationOut.model_validate(op) for op in order.operations],
        due_date=order.due_date,
        planned_start=order.planned_start,
        released_at=order.released_at,
        started_at=order.started_at,
        completed_at=order.completed_at,
        cancelled_at=order.cancelled_at,
        reference=order.reference,
        priority=order.priority,
        notes=order.notes,
        demand=demand_of(order),
        metadata=order.meta,
        production_plan_id=order.production_plan_id,
        held_from=order.held_from,
        split_from=order.split_from,
        backorder_of=order.backorder_of,
        backorder_id=order.backorder_id,
        material_cost=order.material_cost,
        labour_cost=order.labour_cost,
        output_value=order.output_value,
        scrap_value=order.scrap_value,
        unit_cost=order.unit_cost,
        version=order.version,
        history=[HistoryEntry.model_validate(h) for h in order.history],
        created_at=order.created_at,
        updated_at=order.updated_at,
    )


def summary(order: Any) -> OrderSummary:
    """A list row: an order, or a row of ``repository.list_orders``."""
    return OrderSummary(
        id=order.id,
        number=format_number(order.number),
        status=order.status,
        item_id=order.item_id,
        quantity=order.quantity,
        bom_id=order.bom_id,
        produced_quantity=order.produced_quantity,
        scrapped_quantity=order.scrapped_quantity,
        due_date=order.due_date,
        planned_start=order.planned_start,
        reference=order.reference,
        priority=order.priority,
        production_plan_id=order.production_plan_id,
        demand=demand_of(order),
        metadata=order.meta,
        version=order.version,
        created_at=order.created_at,
        updated_at=order.updated_at,
    )


def demand_of(order: Any) -> DemandOut | None:
    """The demand link kept in the order's columns (an order or a list row)."""
    if order.external_order_id is None:
        return None
    return DemandOut(
        source=order.demand_source,
        external_order_id=order.external_order_id,
        external_line_id=order.external_line_id,
        customer_ref=order.customer_ref,
    )
