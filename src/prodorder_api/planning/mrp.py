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
  (at once when they have none) and by open purchase orders' lines still to come on
  theirs, and covers each day's demand. What it cannot
  cover becomes one proposal due that day, started ``lead_time_days`` earlier.
* A production proposal's components are needed on its start date, in the
  quantities an order would require (``boms.explosion.requirement``).
* Within a day the balance covers open orders' demand first, then plan lines,
  then parent proposals; a proposal is pegged to what it left uncovered.
"""

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal, NamedTuple

from prodorder_api.boms.explosion import requirement
from prodorder_api.ids import id_sequence
from prodorder_api.money import ZERO

PegType = Literal["production_order", "plan_line", "proposal"]
Kind = Literal["production", "purchase"]


class CycleError(ValueError):
    """The default BOMs below the plan's products form a cycle."""


@dataclass(frozen=True, slots=True)
class Recipe:
    """An item's default BOM, as MRP needs it."""

    output_quantity: Decimal
    # (component item, quantity per output_quantity with scrap: ``explosion.line_factor``)
    lines: tuple[tuple[uuid.UUID, Decimal], ...]


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
    """A scheduled receipt: an open order's remaining output, or an open purchase-order
    line's quantity still to come; ``date`` None: counted as available at once."""

    item_id: uuid.UUID
    date: date | None
    quantity: Decimal


class Peg(NamedTuple):
    """A demand on an item, or the part of one that a proposal covers."""

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
    """Deepest level of each item below the items no BOM here uses (longest path)."""
    numbered = _numbered(items, recipes)
    number = {item: n for n, item in enumerate(numbered)}
    children = [
        [number[c] for c, _ in recipes[item].lines] if item in recipes else [] for item in numbered
    ]
    return dict(zip(numbered, _levels(children), strict=True))


def _numbered(items: Iterable[uuid.UUID], recipes: dict[uuid.UUID, Recipe]) -> list[uuid.UUID]:
    """The items, and any component their BOMs name besides, once each."""
    known = dict.fromkeys(items)
    pending = list(known)
    while pending:
        recipe = recipes.get(pending.pop())
        for component, _ in recipe.lines if recipe else ():
            if component not in known:
                known[component] = None
                pending.append(component)
    return list(known)


def _levels(children: list[list[int]]) -> list[int]:
    """Longest path from a root, by Kahn's topological order: an item is placed once
    all its parents are, so a cycle (refused when BOMs are written) shows as items
    never placed."""
    parents = [0] * len(children)
    for below in children:
        for child in below:
            parents[child] += 1
    level = [0] * len(children)
    ready = [n for n, count in enumerate(parents) if count == 0]
    done = 0
    while ready:
        n = ready.pop()
        done += 1
        deeper = level[n] + 1
        for child in children[n]:
            if level[child] < deeper:
                level[child] = deeper
            parents[child] -= 1
            if parents[child] == 0:
                ready.append(child)
    if done != len(children):
        raise CycleError("the default BOMs below the plan's products form a cycle")
    return level


def start_for(due: date, lead_time_days: int) -> date:
    """Due date less the lead time, in calendar days (never before year 1)."""
    try:
        return due - timedelta(days=lead_time_days)
    except OverflowError:
        return date.min


def plan(inputs: Inputs) -> list[Proposal]:
    """Proposals by level, then item, then date; parents before their components.

    Items are numbered and everything below works on those numbers: hashing a
    ``uuid.UUID`` is a Python call, which the walk would make hundreds of thousands
    of times on a large plan.
    """
    items = _numbered(inputs.lead_times, inputs.recipes)
    number = {item: n for n, item in enumerate(items)}
    recipes = [_Explosion.of(inputs.recipes.get(item), number) for item in items]
    levels = _levels([[c for c, _ in r.lines] if r else [] for r in recipes])
    keys = [item.int for item in items]
    lead_times = [inputs.lead_times.get(item, 0) for item in items]
    # per item number: date → demands, in the order the projected balance covers them
    demand: list[dict[date, list[Peg]] | None] = [None] * len(items)
    for d in inputs.demands:
        n = number[d.item_id]
        buckets = demand[n]
        if buckets is None:
            buckets = demand[n] = {}
        buckets.setdefault(d.date, []).append(Peg(d.source, d.source_id, d.quantity))
    available = [max(inputs.available.get(item, ZERO), ZERO) for item in items]
    incoming: list[dict[date, Decimal] | None] = [None] * len(items)
    for receipt in inputs.receipts:
        n = number[receipt.item_id]
        if receipt.date is None:
            available[n] += receipt.quantity
        else:
            dated = incoming[n]
            if dated is None:
                dated = incoming[n] = {}
            dated[receipt.date] = dated.get(receipt.date, ZERO) + receipt.quantity

    proposals: list[Proposal] = []
    ids = id_sequence()
    for n in sorted(range(len(items)), key=lambda n: (levels[n], keys[n])):
        buckets = demand[n]
        if not buckets:
            continue
        demand[n] = None
        recipe = recipes[n]
        made = _net(
            items[n],
            buckets,
            available[n],
            incoming[n] or {},
            lead_times[n],
            levels[n],
            "purchase" if recipe is None else "production",
            ids,
        )
        proposals += made
        if recipe is not None:
            for proposal in made:
                recipe.explode(proposal, demand)
    return proposals


@dataclass(frozen=True, slots=True)
class _Explosion:
    """A recipe on item numbers."""

    output_quantity: Decimal
    lines: tuple[tuple[int, Decimal], ...]

    @classmethod
    def of(cls, recipe: Recipe | None, number: dict[uuid.UUID, int]) -> "_Explosion | None":
        if recipe is None:
            return None
        lines = tuple((number[component], factor) for component, factor in recipe.lines)
        return cls(recipe.output_quantity, lines)

    def explode(self, proposal: Proposal, demand: list[dict[date, list[Peg]] | None]) -> None:
        """Dependent demand: the components, needed on the proposal's start date."""
        quantity, start, output = proposal.quantity, proposal.start_date, self.output_quantity
        for component, factor in self.lines:
            need = requirement(quantity, factor, output)
            if need > 0:
                # Peg(...) without the Python frame of NamedTuple.__new__: the hot path.
                peg = tuple.__new__(Peg, ("proposal", proposal.id, need))
                buckets = demand[component]
                if buckets is None:
                    demand[component] = {start: [peg]}
                else:
                    entries = buckets.get(start)
                    if entries is None:
                        buckets[start] = [peg]
                    else:
                        entries.append(peg)


def _net(
    item: uuid.UUID,
    buckets: dict[date, list[Peg]],
    balance: Decimal,
    incoming: dict[date, Decimal],
    lead_time_days: int,
    level: int,
    kind: Kind,
    ids: Iterator[uuid.UUID],
) -> list[Proposal]:
    """Lot-for-lot per day: one proposal for each day the projected balance falls short."""
    made = []
    days = sorted(buckets.keys() | incoming.keys()) if incoming else sorted(buckets)
    for day in days:
        if incoming:
            balance += incoming.get(day, ZERO)
        entries = buckets.get(day)
        if entries is None:
            continue
        gross = ZERO
        for entry in entries:
            gross += entry.quantity
        if balance >= gross:
            balance -= gross
            continue
        made.append(
            Proposal(
                next(ids),
                kind,
                item,
                gross - balance,
                start_for(day, lead_time_days),
                day,
                level,
                _uncovered(entries, balance) if balance else entries,
            )
        )
        balance = ZERO
    return made


def _uncovered(entries: list[Peg], cover: Decimal) -> list[Peg]:
    """What of each demand ``cover`` leaves open, taking the demands in order."""
    for index, entry in enumerate(entries):
        if cover < entry.quantity:
            return [entry._replace(quantity=entry.quantity - cover), *entries[index + 1 :]]
        cover -= entry.quantity
    return []  # not reached: cover < the entries' sum
