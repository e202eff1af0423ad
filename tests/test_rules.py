"""The pure rules, without a database: FEFO picking, proportional cost shares and
moving-average valuation. The HTTP tests hold the same rules end to end."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from prodorder_api.items.models import Item
from prodorder_api.orders.production import _share
from prodorder_api.stock.balances import FreeStock, Shortage
from prodorder_api.stock.moves import Move
from prodorder_api.stock.valuation import Valuation, item_changes


def test_fefo_takes_lots_in_their_order_and_keeps_what_is_left() -> None:
    free = FreeStock([("EARLY", D(3)), ("LATE", D(5)), ("NEVER", D(2))])
    assert free.take(D(4)) == [("EARLY", D(3)), ("LATE", D(1))]
    assert free.total == D(6)
    assert free.take(D(10)) == [("LATE", D(4)), ("NEVER", D(2))]
    assert free.total == D(0)
    assert free.take(D(1)) == []


def test_fefo_takes_nothing_for_nothing_and_skips_emptied_lots() -> None:
    free = FreeStock([("A", D(0)), ("B", D("0.000001"))])
    assert free.take(D(0)) == []
    assert free.take(D(1)) == [("B", D("0.000001"))]


def test_a_shortage_reads_as_the_problem_lists_it() -> None:
    item, location = uuid.uuid4(), uuid.uuid4()
    assert Shortage(item, location, D("2.5"), D(1)).problem() == {
        "item_id": str(item),
        "location_id": str(location),
        "lot_code": None,
        "required": "2.5",
        "available": "1",
        "shortage": "1.5",
    }


@pytest.mark.parametrize(
    ("unrelieved", "units", "expected", "share"),
    [
        (D(10), D(1), D(3), D("3.333333")),
        (D(10), D(3), D(3), D(10)),  # the last units take the rest
        (D(10), D(5), D(3), D(10)),  # over-reporting too
        (D("0.000001"), D(1), D(2), D("0.000000")),  # rounds half to even
        (D(0), D(1), D(2), D(0)),
    ],
)
def test_units_carry_their_proportional_share_of_the_cost(
    unrelieved: D, units: D, expected: D, share: D
) -> None:
    assert _share(unrelieved, units, expected) == share


def test_shares_of_all_units_add_up_to_the_whole() -> None:
    unrelieved, remaining, total = D(10), D(3), D(0)
    for _ in range(3):
        part = _share(unrelieved - total, D(1), remaining)
        total += part
        remaining -= 1
    assert total == unrelieved


def item(stock_value: str = "0", average: str | None = None, standard: str | None = None) -> Item:
    return Item(
        id=uuid.uuid4(),
        sku="X",
        stock_value=D(stock_value),
        average_cost=D(average) if average is not None else None,
        standard_cost=D(standard) if standard is not None else None,
    )


def move(quantity: str, **fields: object) -> Move:
    fields.setdefault("type", "receipt")
    return Move(uuid.uuid4(), uuid.uuid4(), quantity=D(quantity), **fields)  # type: ignore[arg-type]


def test_receipts_move_the_average_and_issues_take_it() -> None:
    valuation = Valuation(item(), D(0))
    assert valuation.take(move("3", unit_cost=D(1))) == (D(1), D(3))
    assert valuation.take(move("1", unit_cost=D(2))) == (D(2), D(2))
    assert valuation.average == D("1.25")
    unit, value = valuation.take(move("-1", type="consumption"))
    assert (unit, value) == (D("1.25"), D("-1.25"))
    assert (valuation.on_hand, valuation.value) == (D(3), D("3.75"))


def test_the_issue_that_empties_an_item_takes_whatever_value_is_left() -> None:
    valuation = Valuation(item(), D(0))
    valuation.take(move("3", unit_cost=D(1)))
    valuation.take(move("1", unit_cost=D(0)))  # average 0.75
    valuation.take(move("-1", type="consumption"))  # 0.75 each, on a non-terminating 3 / 4
    valuation.take(move("-1", type="consumption"))
    _, last = valuation.take(move("-2", type="consumption"))
    assert last == D("-1.5")
    assert (valuation.on_hand, valuation.value) == (D(0), D(0))


def test_an_average_that_does_not_terminate_never_leaves_value_behind() -> None:
    valuation = Valuation(item(), D(0))
    valuation.take(move("3", unit_cost=D("3.333333")))
    valuation.take(move("1", unit_cost=D(0)))  # 9.999999 for 4 units
    values = [valuation.take(move("-1", type="consumption"))[1] for _ in range(4)]
    assert sum(values) == D("-9.999999")
    assert valuation.value == 0


def test_an_item_with_nothing_on_hand_issues_at_its_last_average_or_standard() -> None:
    assert Valuation(item(average="2"), D(0)).average == D(2)
    assert Valuation(item(standard="5"), D(0)).average == D(5)
    assert Valuation(item(), D(0)).average == D(0)


def test_only_items_whose_value_or_average_changed_are_written() -> None:
    moved, still = item(), item("4", average="2")
    moving, resting = Valuation(moved, D(0)), Valuation(still, D(2))
    moving.take(move("2", unit_cost=D(3)))
    now = datetime.now(UTC)
    changes = item_changes([moving, resting], now)
    assert changes == [
        (moved, {"stock_value": D(6), "average_cost": D(3), "updated_at": now}),
    ]
