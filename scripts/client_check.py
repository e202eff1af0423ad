"""`make client-check`: the bicycle walk of the README, through a generated client.

Generates a Python client from openapi/openapi.json with openapi-python-client
(settings in client/config.yaml) into a temporary directory, starts the real server
on loopback with a fresh SQLite database, and takes four bicycles from parts to
stock with the client's typed models and enums, checking every figure the README
shows. Nothing generated is kept.
"""

import importlib
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from live_server import ROOT, live_server

SPEC = ROOT / "openapi" / "openapi.json"
CONFIG = ROOT / "client" / "config.yaml"
PACKAGE = "prodorder_api_client"


def generate(target: Path) -> None:
    subprocess.run(
        [
            *(sys.executable, "-m", "openapi_python_client", "generate"),
            *("--path", str(SPEC), "--config", str(CONFIG)),
            *("--meta", "none", "--output-path", str(target / PACKAGE)),
            "--fail-on-warning",  # a schema it cannot read well fails the check
        ],
        check=True,
        timeout=120,
    )
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()


def expect(response: Any, status: int) -> Any:
    """The parsed body of a ``*_detailed`` call that must answer ``status``."""
    if response.status_code != status:
        raise AssertionError(
            f"expected {status}, got {response.status_code}: {response.content[:500]!r}"
        )
    return response.parsed


def walk(base_url: str, token: str) -> None:
    # Imported here: the package exists only once `generate` has run.
    from prodorder_api_client import AuthenticatedClient, Client
    from prodorder_api_client.api.boms import create_bom, get_bom_cost
    from prodorder_api_client.api.items import create_item, get_item_stock
    from prodorder_api_client.api.production_orders import (
        book_production_order_operation_time,
        complete_production_order,
        complete_production_order_operation,
        create_production_order,
        get_production_order_work_order_pdf,
        list_production_orders,
        release_production_order,
        report_production_order_output,
        start_production_order_operation,
    )
    from prodorder_api_client.api.stock import (
        create_stock_receipt,
        list_stock_balances,
        list_stock_movements,
    )
    from prodorder_api_client.api.work_centers import create_work_center
    from prodorder_api_client.models import (
        BomCreate,
        BomLineIn,
        BomOperationIn,
        Consumption,
        ItemCreate,
        MovementType,
        OperationStatus,
        OrderAction,
        OrderCreate,
        OrderStatus,
        OutputRequest,
        ProblemInvalidTransition,
        ProblemPreconditionFailed,
        ProblemUnauthorized,
        ReceiptCreate,
        ReleaseRequest,
        TimeBooking,
        Tracking,
        WorkCenterCreate,
    )

    anonymous = Client(base_url=base_url)
    refused = expect(create_item.sync_detailed(client=anonymous, body=ItemCreate("X", "X")), 401)
    # Problems come back as the schema of their `code` (the document's discriminator).
    assert isinstance(refused, ProblemUnauthorized) and refused.code == "unauthorized", refused

    with AuthenticatedClient(base_url=base_url, token=token, timeout=30) as api:

        def item(sku: str, name: str, **fields: Any) -> Any:
            created = expect(
                create_item.sync_detailed(client=api, body=ItemCreate(sku, name, **fields)), 201
            )
            assert created.tracking is Tracking.NONE
            return created

        frame = item("BIKE-FRAME", "Frame", standard_cost="50")
        wheel = item("BIKE-WHEEL", "Wheel")
        bolt = item("BIKE-BOLT", "Bolt M6")
        bike = item("BIKE", "City bicycle")
        assert frame.standard_cost == "50" and bike.average_cost is None

        bench = expect(
            create_work_center.sync_detailed(
                client=api,
                body=WorkCenterCreate(
                    "ASSEMBLY", "Assembly bench", cost_per_hour="42", minutes_per_day="420"
                ),
            ),
            201,
        )

        for part, quantity, cost in ((frame, "10", "50"), (wheel, "20", "12.5")):
            receipt = ReceiptCreate(part.id, quantity, unit_cost=cost)
            expect(create_stock_receipt.sync_detailed(client=api, body=receipt), 201)
        receipt = ReceiptCreate(bolt.id, "100", unit_cost="0.1", reference="PO-2001")
        received = expect(create_stock_receipt.sync_detailed(client=api, body=receipt), 201)
        (movement,) = received.movements
        assert movement.type_ is MovementType.RECEIPT and movement.value == "10", movement

        bom = expect(
            create_bom.sync_detailed(
                client=api,
                body=BomCreate(
                    bike.id,
                    lines=[
                        BomLineIn(frame.id, "1"),
                        BomLineIn(wheel.id, "2"),
                        BomLineIn(bolt.id, "8"),
                    ],
                    operations=[
                        BomOperationIn(
                            10,
                            "Assemble",
                            work_center_id=bench.id,
                            setup_minutes="15",
                            run_minutes="30",
                            instructions="Mount the wheels, torque the bolts to 8 Nm",
                        ),
                        BomOperationIn(
                            20,
                            "Inspect",
                            work_center_id=bench.id,
                            run_minutes="5",
                            instructions="Brakes, gears, a test ride",
                        ),
                    ],
                ),
            ),
            201,
        )
        assert (
            bom.default and [line.consumption for line in bom.lines] == [Consumption.BACKFLUSH] * 3
        )
        cost = expect(get_bom_cost.sync_detailed(str(bom.id), client=api, quantity="4"), 200)
        assert cost.material_cost == "303.2", cost

        order = expect(
            create_production_order.sync_detailed(
                client=api,
                body=OrderCreate(bike.id, "4", reference="SHOP-1001", due_date=date(2026, 12, 1)),
            ),
            201,
        )
        order_id = str(order.id)
        assert order.number == "MO-000001" and order.status is OrderStatus.PLANNED, order
        assert OrderAction.RELEASE in order.allowed_actions
        assert [r.required_quantity for r in order.requirements] == ["4", "8", "32"]
        assert [o.planned_minutes for o in order.operations] == ["135", "20"]

        order = expect(
            release_production_order.sync_detailed(
                order_id, client=api, body=ReleaseRequest(), if_match=f'"{order.version}"'
            ),
            200,
        )
        assert order.status is OrderStatus.RELEASED
        assert [r.reserved_quantity for r in order.requirements] == ["4", "8", "32"]
        stale = expect(
            release_production_order.sync_detailed(order_id, client=api, if_match='"1"'), 412
        )
        assert isinstance(stale, ProblemPreconditionFailed), stale

        pdf = expect(get_production_order_work_order_pdf.sync_detailed(order_id, client=api), 200)
        assert pdf.payload.read(5) == b"%PDF-"

        order = expect(
            start_production_order_operation.sync_detailed(order_id, 10, client=api), 200
        )
        assert order.status is OrderStatus.IN_PROGRESS
        assert order.operations[0].status is OperationStatus.IN_PROGRESS
        booking = TimeBooking("140", quantity="4", note="Bench 1, J. Smith")
        order = expect(
            book_production_order_operation_time.sync_detailed(
                order_id, 10, client=api, body=booking
            ),
            200,
        )
        assert order.labour_cost == "98" and order.operations[0].actual_minutes == "140"
        order = expect(
            complete_production_order_operation.sync_detailed(order_id, 10, client=api), 200
        )
        assert order.operations[0].status is OperationStatus.DONE

        order = expect(
            report_production_order_output.sync_detailed(
                order_id, client=api, body=OutputRequest("1")
            ),
            200,
        )
        assert order.produced_quantity == "1" and order.unit_cost == "100.3", order

        order = expect(complete_production_order.sync_detailed(order_id, client=api), 200)
        assert order.status is OrderStatus.COMPLETED and order.allowed_actions == [], order
        figures = (
            order.produced_quantity,
            order.material_cost,
            order.labour_cost,
            order.output_value,
            order.scrap_value,
            order.unit_cost,
        )
        assert figures == ("4", "303.2", "98", "401.2", "0", "100.3"), figures
        assert [o.status for o in order.operations] == [
            OperationStatus.DONE,
            OperationStatus.PENDING,
        ]
        assert order.history[-1].to_status is OrderStatus.COMPLETED
        assert order.history[-1].details["unfinished_operations"] == [20]

        again = expect(complete_production_order.sync_detailed(order_id, client=api), 409)
        assert isinstance(again, ProblemInvalidTransition), again
        assert again.current_status == "completed" and again.allowed_actions == [], again

        stock = expect(get_item_stock.sync_detailed(str(bike.id), client=api), 200)
        totals = (stock.on_hand, stock.reserved, stock.average_cost, stock.value)
        assert totals == ("4", "0", "100.3", "401.2"), totals
        frames = expect(list_stock_balances.sync_detailed(client=api, item_id=frame.id), 200)
        assert [b.on_hand for b in frames.data] == ["6"] and frames.next_cursor is None

        ledger = expect(
            list_stock_movements.sync_detailed(client=api, production_order_id=order.id), 200
        )
        values = [(m.type_, m.quantity, m.value) for m in ledger.data]
        assert values == [
            (MovementType.CONSUMPTION, "-1", "-50"),
            (MovementType.CONSUMPTION, "-2", "-25"),
            (MovementType.CONSUMPTION, "-8", "-0.8"),
            (MovementType.OUTPUT, "1", "100.3"),
            (MovementType.CONSUMPTION, "-3", "-150"),
            (MovementType.CONSUMPTION, "-6", "-75"),
            (MovementType.CONSUMPTION, "-24", "-2.4"),
            (MovementType.OUTPUT, "3", "300.9"),
        ], values

        completed = expect(
            list_production_orders.sync_detailed(
                client=api, status=[OrderStatus.COMPLETED], reference="SHOP-1001"
            ),
            200,
        )
        assert [o.number for o in completed.data] == ["MO-000001"]


def main() -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="client-check-") as tmp:
        workdir = Path(tmp)
        generate(workdir)
        with live_server(workdir) as server:
            walk(server.base_url, server.token)
    print(
        f"client-check: the generated client took 4 bicycles from parts to stock "
        f"(100.3 each) in {time.monotonic() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
