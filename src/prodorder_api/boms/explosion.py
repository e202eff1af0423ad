"""Multi-level explosion and cost roll-up through the components' default BOMs.

The default BOMs are loaded level by level (one query per level, not per item),
then the tree is walked in memory.
"""

import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from prodorder_api.boms.models import Bom, BomLine
from prodorder_api.boms.schemas import BomCost, CostLine, Explosion, ExplosionRow
from prodorder_api.items.models import Item
from prodorder_api.money import EXACT_CONTEXT, QUANTUM, ZERO, div, mul

MAX_DEPTH = 64  # cycles are refused on write; this only guards the walk
_EXACT = EXACT_CONTEXT


def line_requirement(quantity: Decimal, line: BomLine, output_quantity: Decimal) -> Decimal:
    """quantity × line quantity ÷ output quantity × (1 + scrap factor), to six places."""
    return requirement(quantity, line_factor(line.quantity, line.scrap_factor), output_quantity)


def line_factor(per: Decimal, scrap_factor: Decimal) -> Decimal:
    """A line's quantity with its expected loss, exactly: quantity × (1 + scrap factor)."""
    return _EXACT.multiply(per, _EXACT.add(1, scrap_factor))


def requirement(quantity: Decimal, factor: Decimal, output_quantity: Decimal) -> Decimal:
    """quantity × factor ÷ output quantity, to six places.

    The one formula for what an order requires of a component and what MRP explodes,
    so a firmed proposal's order requires exactly what the run planned. The products
    are exact (60 digits hold any two in-range factors); only the division and the
    final six places round, as before the factor was split out.
    """
    exact = _EXACT.multiply(quantity, factor)
    if output_quantity != 1:
        exact = _EXACT.divide(exact, output_quantity)
    return exact.quantize(QUANTUM, context=_EXACT)  # money.quantize, inlined: MRP's hot path


async def load_default_boms(session: AsyncSession, root: Bom) -> dict[uuid.UUID, Bom]:
    """Default BOMs of every made item below ``root``, keyed by item id."""
    boms: dict[uuid.UUID, Bom] = {}
    frontier = {line.component_item_id for line in root.lines}
    depth = 0
    while frontier and depth < MAX_DEPTH:
        found = await session.scalars(
            select(Bom)
            .where(Bom.item_id.in_(frontier), Bom.is_default)
            .options(selectinload(Bom.lines))
        )
        frontier = set()
        for bom in found:
            boms[bom.item_id] = bom
            frontier |= {line.component_item_id for line in bom.lines} - boms.keys()
        depth += 1
    return boms


@dataclass
class _Row:
    item_id: uuid.UUID
    level: int
    quantity: Decimal
    made: bool


def _walk(root: Bom, quantity: Decimal, boms: dict[uuid.UUID, Bom]) -> list[_Row]:
    rows: list[_Row] = []

    def visit(bom: Bom, needed: Decimal, level: int) -> None:
        for line in bom.lines:
            required = line_requirement(needed, line, bom.output_quantity)
            sub = boms.get(line.component_item_id)
            rows.append(_Row(line.component_item_id, level, required, sub is not None))
            if sub is not None and level < MAX_DEPTH:
                visit(sub, required, level + 1)

    visit(root, quantity, 1)
    return rows


async def explode(session: AsyncSession, bom: Bom, quantity: Decimal, flat: bool) -> Explosion:
    rows = _walk(bom, quantity, await load_default_boms(session, bom))
    if flat:
        leaves: dict[uuid.UUID, _Row] = {}
        for row in rows:
            if row.made:
                continue
            seen = leaves.get(row.item_id)
            if seen is None:
                leaves[row.item_id] = _Row(row.item_id, row.level, row.quantity, False)
            else:
                seen.quantity += row.quantity
                seen.level = max(seen.level, row.level)
        rows = list(leaves.values())
    return Explosion(
        bom_id=bom.id,
        quantity=quantity,
        data=[
            ExplosionRow(item_id=r.item_id, level=r.level, quantity=r.quantity, made=r.made)
            for r in rows
        ],
    )


async def cost(session: AsyncSession, bom: Bom, quantity: Decimal) -> BomCost:
    """Made components roll up through their default BOM; bought ones cost their
    moving average (their standard cost while there is none, else 0)."""
    boms = await load_default_boms(session, bom)
    item_ids = {line.component_item_id for b in [bom, *boms.values()] for line in b.lines}
    costs = {
        item.id: item.average_cost if item.average_cost is not None else item.standard_cost
        for item in await session.scalars(select(Item).where(Item.id.in_(item_ids)))
    }

    def bom_cost(b: Bom, needed: Decimal, depth: int) -> tuple[Decimal, list[CostLine]]:
        total = ZERO
        lines = []
        for line in b.lines:
            required = line_requirement(needed, line, b.output_quantity)
            sub = boms.get(line.component_item_id)
            if sub is not None and depth < MAX_DEPTH:
                line_cost, _ = bom_cost(sub, required, depth + 1)
                unit = div(line_cost, required) if required else ZERO
            else:
                unit = costs.get(line.component_item_id) or ZERO
                line_cost = mul(required, unit)
            total += line_cost
            lines.append(
                CostLine(
                    component_item_id=line.component_item_id,
                    quantity=required,
                    unit_cost=unit,
                    cost=line_cost,
                    made=sub is not None,
                )
            )
        return total, lines

    material_cost, lines = bom_cost(bom, quantity, 0)
    return BomCost(bom_id=bom.id, quantity=quantity, material_cost=material_cost, lines=lines)
