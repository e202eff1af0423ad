"""Material requirements planning, in memory: gross to net, level by level.

Pure functions over plain data, no database: ``service.run`` loads the inputs in a
fixed number of queries and stores what :func:`plan` returns.

Classic MRP, lot-for-lot per day:

* Items are netted in low-level-code order (an item's code is the deepest level at
  which it occurs below the plan's products), so every demand on an item, from
  every parent, is known before the item is netted.
* Gross requirements are summed per item and date, never per path through the
  BOMs: a bolt used by 500 assemblies on one day is one bucket, netted once.
* Per item, dates ascending: the projected balance starts at the available stock
  (on hand − reserved), grows by open orders' remaining output on their due date
  (at once when they have none), and covers each day's demand. What it cannot
  cover becomes one proposal due that day, started ``lead_time_days`` earlier.
* A production proposal's components are needed on its start date, in the
  quantities an order would require (``boms.explosion.component_requirement``).
* Within a day the balance covers open orders' demand first, then plan lines,
  then parent proposals; a proposal is pegged to what it left uncovered.
"""

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from prodorder_api.boms.explosion import component_requirement
from prodorder_api.ids import new_id
from prodorder_api.money import ZERO

PegType = Literal["production_order", "plan_line", "proposal"]
Kind = Literal["production", "purchase"]


class CycleError(ValueError):
    """The default BOMs below the plan's products form a cycle."""


@dataclass(frozen=True, slots=True)
class Recipe:
    """An item's default BOM, as MRP needs it."""

    output_quantity: Decimal
    # (component item, quantity per output_quantity, scrap factor)
    lines: tuple[tuple[uuid.UUID, Decimal, Decimal], ...]


@dataclass(frozen=True, slots=True)
class Demand:
    """Independent demand (a plan line) or an open order's unconsumed requirement."""

    item_id: uuid.UUID
    date: date
    quantity: Decimal
    source: PegType
    source_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Receipt:
    """An open order's remaining output; ``date`` None: counted as available at once."""

    item_id: uuid.UUID
    date: date | None
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class Peg:
    """The part of one demand a proposal covers."""

    type: PegType
    id: uuid.UUID
    quantity: Decimal


@dataclass(slots=True)
class Proposal:
    id: uuid.UUID
    kind: Kind
    item_id: uuid.UUID
    quantity: Decimal
    start_date: date
    due_date: date
    level: int
    pegged_to: list[Peg]


@dataclass
class Inputs:
    """Everything one run reads, for the items reachable from the plan's products."""

    lead_times: dict[uuid.UUID, int]  # every item to plan
    recipes: dict[uuid.UUID, Recipe]  # the made ones
    available: dict[uuid.UUID, Decimal] = field(default_factory=dict)
    receipts: list[Receipt] = field(default_factory=list)
    # Open orders' demand first, then plan lines: the order in which stock covers them.
    demands: list[Demand] = field(default_factory=list)


def low_level_codes(
    items: Iterable[uuid.UUID], recipes: dict[uuid.UUID, Recipe]
) -> dict[uuid.UUID, int]:
    """Deepest level of each item below the items no BOM here uses (longest path).

    Kahn's topological order: an item is placed once all its parents are, so a
    cycle (refused when BOMs are written) shows as items never placed."""
    level = dict.fromkeys(items, 0)
    parents = dict.fromkeys(level, 0)
    for parent, made in recipes.items():
        if parent in level:
            for component, _, _ in made.lines:
                parents[component] = parents.get(component, 0) + 1
                level.setdefault(component, 0)
    ready = [item for item, count in parents.items() if count == 0]
    done = 0
    while ready:
        item = ready.pop()
        done += 1
        recipe = recipes.get(item)
        if recipe is None:
            continue
        below = level[item] + 1
        for component, _, _ in recipe.lines:
            if level[component] < below:
                level[component] = below
            parents[component] -= 1
            if parents[component] == 0:
                ready.append(component)
    if done != len(level):
        raise CycleError("the default BOMs below the plan's products form a cycle")
    return level


def start_for(due: date, lead_time_days: int) -> date:
    """Due date less the lead time, in calendar days (never before year 1)."""
    try:
        return due - timedelta(days=lead_time_days)
    except OverflowError:
        return date.min


def plan(inputs: Inputs) -> list[Proposal]:
    """Proposals by level, then item, then date; parents before their components."""
    levels = low_level_codes(inputs.lead_times, inputs.recipes)
    # item → date → [(peg type, peg id, quantity)], in the order stock covers them
    demand: dict[uuid.UUID, dict[date, list[tuple[PegType, uuid.UUID, Decimal]]]] = {}
    for d in inputs.demands:
        demand.setdefault(d.item_id, {}).setdefault(d.date, []).append(
            (d.source, d.source_id, d.quantity)
        )
    available: dict[uuid.UUID, Decimal] = defaultdict(lambda: ZERO)
    for item, quantity in inputs.available.items():
        available[item] += max(quantity, ZERO)
    incoming: dict[uuid.UUID, dict[date, Decimal]] = {}
    for receipt in inputs.receipts:
        if receipt.date is None:
            available[receipt.item_id] += receipt.quantity
        else:
            dated = incoming.setdefault(receipt.item_id, {})
            dated[receipt.date] = dated.get(receipt.date, ZERO) + receipt.quantity

    proposals: list[Proposal] = []
    for item in sorted(levels, key=lambda i: (levels[i], i)):
        buckets = demand.pop(item, None)
        if not buckets:
            continue
        recipe = inputs.recipes.get(item)
        for proposal in _net(
            item,
            buckets,
            available[item],
            incoming.get(item, {}),
            inputs.lead_times.get(item, 0),
            levels[item],
            "purchase" if recipe is None else "production",
        ):
            proposals.append(proposal)
            if recipe is not None:
                _explode(proposal, recipe, demand)
    return proposals


def _net(
    item: uuid.UUID,
    buckets: dict[date, list[tuple[PegType, uuid.UUID, Decimal]]],
    balance: Decimal,
    incoming: dict[date, Decimal],
    lead_time_days: int,
    level: int,
    kind: Kind,
) -> Iterable[Proposal]:
    """Lot-for-lot per day: one proposal for each day the projected balance falls short."""
    days = sorted(buckets.keys() | incoming.keys()) if incoming else sorted(buckets)
    for day in days:
        if incoming:
            balance += incoming.get(day, ZERO)
        entries = buckets.get(day)
        if entries is None:
            continue
        gross = sum((quantity for _, _, quantity in entries), ZERO)
        if balance >= gross:
            balance -= gross
            continue
        yield Proposal(
            id=new_id(),
            kind=kind,
            item_id=item,
            quantity=gross - balance,
            start_date=start_for(day, lead_time_days),
            due_date=day,
            level=level,
            pegged_to=_uncovered(entries, balance),
        )
        balance = ZERO


def _uncovered(entries: list[tuple[PegType, uuid.UUID, Decimal]], cover: Decimal) -> list[Peg]:
    """What of each demand ``cover`` leaves open, taking the demands in order."""
    pegs = []
    for type_, id_, quantity in entries:
        if cover >= quantity:
            cover -= quantity
            continue
        pegs.append(Peg(type_, id_, quantity - cover))
        cover = ZERO
    return pegs


def _explode(
    proposal: Proposal,
    recipe: Recipe,
    demand: dict[uuid.UUID, dict[date, list[tuple[PegType, uuid.UUID, Decimal]]]],
) -> None:
    """Dependent demand: the components, needed on the proposal's start date."""
    for component, per, scrap_factor in recipe.lines:
        need = component_requirement(proposal.quantity, per, scrap_factor, recipe.output_quantity)
        if need > 0:
            demand.setdefault(component, {}).setdefault(proposal.start_date, []).append(
                ("proposal", proposal.id, need)
            )
