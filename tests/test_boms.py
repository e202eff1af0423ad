"""Bills of materials: revisions and the default, validation, cycles at any depth,
immutability once an order used one, and the multi-level explosion and cost roll-up
to the millionth.

Required quantity of a line = quantity × line quantity ÷ output_quantity × (1 + scrap),
rounded to 6 places at each level before it feeds the level below.
"""

import asyncio
import uuid
from typing import Any

import httpx

from tests.helpers import create_item, ok, problem, receive, walk
from tests.order_helpers import create_bom, create_order


def line(component: dict[str, Any], quantity: Any, **fields: Any) -> dict[str, Any]:
    return {"component_item_id": component["id"], "quantity": quantity, **fields}


async def post_bom(
    client: httpx.AsyncClient, product: dict[str, Any], lines: list[Any], **fields: Any
) -> httpx.Response:
    return await client.post("/v1/boms", json={"item_id": product["id"], "lines": lines, **fields})


async def new_bom(
    client: httpx.AsyncClient, product: dict[str, Any], lines: list[Any], **fields: Any
) -> dict[str, Any]:
    return ok(await post_bom(client, product, lines, **fields), 201)  # type: ignore[no-any-return]


async def get_bom(client: httpx.AsyncClient, bom_id: str) -> dict[str, Any]:
    return ok(await client.get(f"/v1/boms/{bom_id}"))  # type: ignore[no-any-return]


async def boms_of(client: httpx.AsyncClient, item: dict[str, Any]) -> list[dict[str, Any]]:
    return await walk(client, "/v1/boms", item_id=item["id"])


def bom_lines(bom: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [
        (li["component_item_id"], li["quantity"], li["scrap_factor"], li["consumption"])
        for li in bom["lines"]
    ]


async def bike(client: httpx.AsyncClient) -> dict[str, Any]:
    """Three levels, output_quantity ≠ 1 and scrap at two of them:

    Bike  (per 2) = 2 Frame + 4 Wheel (scrap 0.05)
    Wheel (per 1) = 1 Rim + 36 Spoke (scrap 0.1)
    Rim   (per 1) = 0.5 kg Alu
    Frame, Spoke and Alu are bought; the Spoke has only a standard cost of 0.25.
    """
    p = {name: await create_item(client, name=name) for name in ("Bike", "Frame", "Wheel", "Rim")}
    p["Spoke"] = await create_item(client, name="Spoke", standard_cost="0.25")
    p["Alu"] = await create_item(client, name="Aluminium", uom="kg")
    boms = {
        "Rim": await new_bom(client, p["Rim"], [line(p["Alu"], "0.5")]),
        "Wheel": await new_bom(
            client, p["Wheel"], [line(p["Rim"], 1), line(p["Spoke"], 36, scrap_factor="0.1")]
        ),
        "Bike": await new_bom(
            client,
            p["Bike"],
            [line(p["Frame"], 2), line(p["Wheel"], 4, scrap_factor="0.05")],
            output_quantity=2,
        ),
    }
    return {"items": p, "boms": boms, "names": {item["id"]: n for n, item in p.items()}}


async def explode(
    client: httpx.AsyncClient, b: dict[str, Any], bom: str = "Bike", **params: Any
) -> list[tuple[str, int, str, bool]]:
    got = ok(await client.get(f"/v1/boms/{b['boms'][bom]['id']}/explosion", params=params))
    assert got["bom_id"] == b["boms"][bom]["id"]
    return [(b["names"][r["item_id"]], r["level"], r["quantity"], r["made"]) for r in got["data"]]


# --- revisions and the default ------------------------------------------------------------


async def test_revisions_number_themselves_and_exactly_one_is_the_default(
    client: httpx.AsyncClient,
) -> None:
    bike_item, frame = await create_item(client), await create_item(client)
    first = await new_bom(client, bike_item, [line(frame, 1)])
    assert (first["revision"], first["default"], first["used"]) == ("1", True, False)
    assert first["version"] == 1
    assert bom_lines(first) == [(frame["id"], "1", "0", "backflush")]

    second = await new_bom(client, bike_item, [line(frame, 2)], default=True)
    assert (second["revision"], second["default"]) == ("2", True)
    assert (await get_bom(client, first["id"]))["default"] is False

    third = await new_bom(client, bike_item, [line(frame, 3)])
    assert (third["revision"], third["default"]) == ("3", False)
    assert (await get_bom(client, second["id"]))["default"] is True

    back = ok(await client.post(f"/v1/boms/{first['id']}/make-default"))
    assert back["id"] == first["id"] and back["default"] is True
    listed = await boms_of(client, bike_item)
    assert {b["revision"]: b["default"] for b in listed} == {"1": True, "2": False, "3": False}
    assert {b["item_id"] for b in listed} == {bike_item["id"]}

    # An order without bom_id takes the default: revision 1 again.
    order = await create_order(client, bike_item["id"], 1)
    assert order["bom_id"] == first["id"]


async def test_a_duplicate_revision_is_a_conflict_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    product, part = await create_item(client), await create_item(client)
    first = await new_bom(client, product, [line(part, 1)], revision="A")
    await new_bom(client, product, [line(part, 2)], revision="B")
    problem(await post_bom(client, product, [line(part, 3)], revision="B"), 409, "conflict")
    # Even asking to become the default: the refused revision leaves the default alone.
    refused = await post_bom(client, product, [line(part, 3)], revision="A", default=True)
    problem(refused, 409, "conflict")
    listed = await boms_of(client, product)
    assert {b["revision"]: b["default"] for b in listed} == {"A": True, "B": False}
    assert (await get_bom(client, first["id"]))["version"] == 1


async def test_the_first_bom_is_the_default_even_when_sent_default_false(
    client: httpx.AsyncClient,
) -> None:
    product, part = await create_item(client), await create_item(client)
    first = await new_bom(client, product, [line(part, 1)], default=False)
    assert first["default"] is True


async def test_an_automatic_revision_never_collides_with_a_given_one(
    client: httpx.AsyncClient,
) -> None:
    product, part = await create_item(client), await create_item(client)
    await new_bom(client, product, [line(part, 1)], revision="2")
    # No revision sent: "the next number" must not be one the item already has.
    automatic = await new_bom(client, product, [line(part, 2)])
    assert automatic["revision"] != "2"
    assert len(await boms_of(client, product)) == 2


async def test_unknown_boms_are_not_found(client: httpx.AsyncClient) -> None:
    for bom_id in (str(uuid.uuid4()), "not-an-id"):
        problem(await client.get(f"/v1/boms/{bom_id}"), 404, "not_found")
        problem(await client.post(f"/v1/boms/{bom_id}/make-default"), 404, "not_found")
        patch = await client.patch(f"/v1/boms/{bom_id}", json={"output_quantity": 2})
        problem(patch, 404, "not_found")
    assert ok(await client.get("/v1/boms", params={"item_id": str(uuid.uuid4())}))["data"] == []


# --- validation ---------------------------------------------------------------------------


async def test_invalid_boms_are_refused_on_the_field_at_fault(client: httpx.AsyncClient) -> None:
    product, part = await create_item(client), await create_item(client)
    stranger = {"id": str(uuid.uuid4())}
    cases: list[tuple[list[Any], dict[str, Any], list[Any]]] = [
        ([line(part, 1), line(stranger, 1)], {}, ["body", "lines", 1, "component_item_id"]),
        ([line(product, 1)], {}, ["body", "lines", 0, "component_item_id"]),
        ([line(part, 0)], {}, ["body", "lines", 0, "quantity"]),
        ([line(part, "-1")], {}, ["body", "lines", 0, "quantity"]),
        ([line(part, "0.1234567")], {}, ["body", "lines", 0, "quantity"]),
        ([line(part, 1, scrap_factor="-0.1")], {}, ["body", "lines", 0, "scrap_factor"]),
        ([line(part, 1, qty=2)], {}, ["body", "lines", 0, "qty"]),
        ([line(part, 1)], {"revison": "B"}, ["body", "revison"]),
        ([line(part, 1)], {"output_quantity": 0}, ["body", "output_quantity"]),
        ([], {}, ["body", "lines"]),
    ]
    for lines, fields, loc in cases:
        body = problem(await post_bom(client, product, lines, **fields), 422, "validation_error")
        assert loc in [e["loc"] for e in body["errors"]], (lines, fields, body)
    unknown = await client.post("/v1/boms", json={"item_id": stranger["id"], "lines": []})
    problem(unknown, 422, "validation_error")

    duplicate = await post_bom(client, product, [line(part, 1), line(part, 2)])
    body = problem(duplicate, 422, "validation_error")
    assert "lines" in str(body["errors"]), body
    assert await boms_of(client, product) == []


# --- cycles -------------------------------------------------------------------------------


async def test_a_cycle_three_levels_deep_is_refused(client: httpx.AsyncClient) -> None:
    a, b, c = [await create_item(client, name=n) for n in ("A", "B", "C")]
    await new_bom(client, a, [line(b, 1)])
    b_bom = await new_bom(client, b, [line(c, 1)])
    # C from A closes A → B → C → A.
    body = problem(await post_bom(client, c, [line(a, 1)]), 422, "validation_error")
    assert body["errors"][0]["loc"][:2] == ["body", "lines"]
    assert await boms_of(client, c) == []
    # Two levels: a new revision of B made from A.
    problem(await post_bom(client, b, [line(a, 1)]), 422, "validation_error")
    # A change that would close the loop is refused as well, and changes nothing.
    patch = await client.patch(f"/v1/boms/{b_bom['id']}", json={"lines": [line(a, 1)]})
    problem(patch, 422, "validation_error")
    assert await boms_of(client, b) == [b_bom]


async def test_a_cycle_through_a_non_default_revision_is_refused(
    client: httpx.AsyncClient,
) -> None:
    a, b, x = [await create_item(client, name=n) for n in ("A", "B", "X")]
    await new_bom(client, a, [line(x, 1)])
    alternative = await new_bom(client, a, [line(b, 1)])
    assert alternative["default"] is False
    # A's default does not use B, but revision 2 does: B from A would loop once it is used.
    problem(await post_bom(client, b, [line(a, 1)]), 422, "validation_error")
    assert await boms_of(client, b) == []


async def test_two_boms_closing_a_loop_at_once_are_not_both_accepted(
    client: httpx.AsyncClient,
) -> None:
    # A from B and B from A, sent together: each alone is fine, both make a loop.
    # Six independent pairs at once, so that a race shows on every run.
    pairs = [[await create_item(client, name=n) for n in ("A", "B")] for _ in range(6)]
    sent = await asyncio.gather(
        *(post_bom(client, a, [line(b, 1)]) for a, b in pairs),
        *(post_bom(client, b, [line(a, 1)]) for a, b in pairs),
    )
    outcomes = [sorted([sent[i].status_code, sent[i + 6].status_code]) for i in range(6)]
    assert outcomes == [[201, 422]] * 6, [r.text for r in sent]


# --- immutability -------------------------------------------------------------------------


async def test_a_bom_is_immutable_once_an_order_used_it(client: httpx.AsyncClient) -> None:
    product, bolt, glue = [await create_item(client, name=n) for n in ("Chair", "Bolt", "Glue")]
    bom = await new_bom(client, product, [line(bolt, 1)])
    changed = ok(
        await client.patch(
            f"/v1/boms/{bom['id']}",
            json={
                "lines": [
                    line(bolt, 2),
                    line(glue, "0.25", scrap_factor="0.1", consumption="manual"),
                ]
            },
        )
    )
    expected = [(bolt["id"], "2", "0", "backflush"), (glue["id"], "0.25", "0.1", "manual")]
    assert bom_lines(changed) == expected
    assert (changed["version"], changed["revision"], changed["used"]) == (2, "1", False)
    assert bom_lines(await get_bom(client, bom["id"])) == expected

    order = await create_order(client, product["id"], 4)
    assert order["bom_id"] == bom["id"]
    # 4 × 2 = 8 bolts; 4 × 0.25 × 1.1 = 1.1 glue
    assert [r["required_quantity"] for r in order["requirements"]] == ["8", "1.1"]
    used = await get_bom(client, bom["id"])
    assert used["used"] is True

    for change in ({"lines": [line(bolt, 3)]}, {"output_quantity": 2}, {"revision": "X"}):
        problem(await client.patch(f"/v1/boms/{bom['id']}", json=change), 409, "conflict")
    after = await get_bom(client, bom["id"])
    assert bom_lines(after) == expected
    assert (after["version"], after["output_quantity"], after["revision"]) == (2, "1", "1")

    # Change means a new revision, which is free to change until it is used.
    revision = await new_bom(client, product, [line(bolt, 3)])
    assert (revision["revision"], revision["default"], revision["used"]) == ("2", False, False)
    edited = ok(await client.patch(f"/v1/boms/{revision['id']}", json={"lines": [line(bolt, 4)]}))
    assert bom_lines(edited) == [(bolt["id"], "4", "0", "backflush")]


async def test_patch_replaces_only_what_is_sent_and_validates_it(
    client: httpx.AsyncClient,
) -> None:
    product, part = await create_item(client), await create_item(client)
    bom = await new_bom(client, product, [line(part, 3)])
    await new_bom(client, product, [line(part, 4)], revision="B")
    path = f"/v1/boms/{bom['id']}"
    changed = ok(await client.patch(path, json={"output_quantity": "2.5"}))
    assert (changed["output_quantity"], changed["version"]) == ("2.5", 2)
    assert bom_lines(changed) == [(part["id"], "3", "0", "backflush")]
    for change, loc in (
        ({"lines": []}, ["body", "lines"]),
        ({"lines": None}, ["body", "lines"]),
        ({"lines": [line(product, 1)]}, ["body", "lines", 0, "component_item_id"]),
        ({"output_quantity": "-2"}, ["body", "output_quantity"]),
        ({"outputquantity": 2}, ["body", "outputquantity"]),
    ):
        body = problem(await client.patch(path, json=change), 422, "validation_error")
        assert loc in [e["loc"] for e in body["errors"]], (change, body)
    problem(await client.patch(path, json={"revision": "B"}), 409, "conflict")
    after = await get_bom(client, bom["id"])
    assert (after["revision"], after["output_quantity"], after["version"]) == ("1", "2.5", 2)
    assert bom_lines(after) == [(part["id"], "3", "0", "backflush")]


# --- explosion ----------------------------------------------------------------------------


async def test_explosion_lists_every_level_with_scrap_and_output_quantity(
    client: httpx.AsyncClient,
) -> None:
    b = await bike(client)
    assert await explode(client, b, quantity=10) == [
        ("Frame", 1, "10", False),  # 10 × 2 ÷ 2
        ("Wheel", 1, "21", True),  # 10 × 4 ÷ 2 × 1.05
        ("Rim", 2, "21", True),  # 21 × 1 ÷ 1
        ("Alu", 3, "10.5", False),  # 21 × 0.5 ÷ 1
        ("Spoke", 2, "831.6", False),  # 21 × 36 ÷ 1 × 1.1
    ]
    flat = await explode(client, b, quantity=10, flat="true")
    assert sorted(flat) == [
        ("Alu", 3, "10.5", False),
        ("Frame", 1, "10", False),
        ("Spoke", 2, "831.6", False),
    ]
    # Without a quantity: one bike. 1 × 4 ÷ 2 × 1.05 = 2.1 wheels, 2.1 × 36 × 1.1 = 83.16
    assert await explode(client, b) == [
        ("Frame", 1, "1", False),
        ("Wheel", 1, "2.1", True),
        ("Rim", 2, "2.1", True),
        ("Alu", 3, "1.05", False),
        ("Spoke", 2, "83.16", False),
    ]
    # A sub-assembly explodes on its own: 21 wheels.
    assert await explode(client, b, "Wheel", quantity=21) == [
        ("Rim", 1, "21", True),
        ("Alu", 2, "10.5", False),
        ("Spoke", 1, "831.6", False),
    ]


async def test_explosion_rounds_to_six_places_at_each_level(client: httpx.AsyncClient) -> None:
    kit, sub, bolt = [await create_item(client, name=n) for n in ("Kit", "Sub", "Bolt")]
    b = {
        "names": {kit["id"]: "Kit", sub["id"]: "Sub", bolt["id"]: "Bolt"},
        "boms": {
            "Sub": await new_bom(client, sub, [line(bolt, 3)]),
            "Kit": await new_bom(client, kit, [line(sub, 2), line(bolt, 1)], output_quantity=3),
        },
    }
    assert await explode(client, b, "Kit", quantity=1) == [
        ("Sub", 1, "0.666667", True),  # 1 × 2 ÷ 3 = 0.666666… → 0.666667
        ("Bolt", 2, "2.000001", False),  # 0.666667 × 3, from the rounded level above
        ("Bolt", 1, "0.333333", False),  # 1 × 1 ÷ 3 = 0.333333…
    ]
    # Flat: the bolts summed, at the deepest level they occur: 2.000001 + 0.333333
    assert await explode(client, b, "Kit", quantity=1, flat="true") == [
        ("Bolt", 2, "2.333334", False)
    ]
    assert await explode(client, b, "Kit", quantity=2) == [
        ("Sub", 1, "1.333333", True),  # 4 ÷ 3
        ("Bolt", 2, "3.999999", False),  # 1.333333 × 3
        ("Bolt", 1, "0.666667", False),  # 2 ÷ 3
    ]


async def test_explosion_follows_each_components_default_revision(
    client: httpx.AsyncClient,
) -> None:
    b = await bike(client)
    p = b["items"]
    spokes40 = await new_bom(
        client, p["Wheel"], [line(p["Rim"], 1), line(p["Spoke"], 40, scrap_factor="0.1")]
    )
    assert spokes40["default"] is False
    assert ("Spoke", 2, "831.6", False) in await explode(client, b, quantity=10, flat="true")
    ok(await client.post(f"/v1/boms/{spokes40['id']}/make-default"))
    # 21 wheels × 40 × 1.1
    assert ("Spoke", 2, "924", False) in await explode(client, b, quantity=10, flat="true")


# --- cost roll-up -------------------------------------------------------------------------


async def test_cost_rolls_up_three_levels_from_average_and_standard_costs(
    client: httpx.AsyncClient,
) -> None:
    b = await bike(client)
    p = b["items"]
    await receive(client, p["Frame"]["id"], 4, unit_cost="80")
    await receive(client, p["Frame"]["id"], 6, unit_cost="90")  # (320 + 540) / 10 = 86
    await receive(client, p["Alu"]["id"], 3, unit_cost="2")
    await receive(client, p["Alu"]["id"], 1, unit_cost="3.2")  # (6 + 3.2) / 4 = 2.3
    # A wheel in stock at 500 must not matter: made lines roll up through their BOM.
    await receive(client, p["Wheel"]["id"], 1, unit_cost="500")
    assert ok(await client.get(f"/v1/items/{p['Frame']['id']}"))["average_cost"] == "86"
    assert ok(await client.get(f"/v1/items/{p['Alu']['id']}"))["average_cost"] == "2.3"
    assert ok(await client.get(f"/v1/items/{p['Spoke']['id']}"))["average_cost"] is None

    got = ok(await client.get(f"/v1/boms/{b['boms']['Bike']['id']}/cost", params={"quantity": 10}))
    # Rim for 21:   10.5 kg Alu × 2.3 = 24.15 → 1.15 a rim
    # Wheel for 21: 24.15 + 831.6 spokes × 0.25 (standard) = 24.15 + 207.9 = 232.05 → 11.05
    # Bike for 10:  10 frames × 86 = 860, + 232.05 = 1092.05
    assert (got["bom_id"], got["quantity"], got["material_cost"]) == (
        b["boms"]["Bike"]["id"],
        "10",
        "1092.05",
    )
    cost_lines = [
        (b["names"][c["component_item_id"]], c["quantity"], c["unit_cost"], c["cost"], c["made"])
        for c in got["lines"]
    ]
    assert cost_lines == [
        ("Frame", "10", "86", "860", False),
        ("Wheel", "21", "11.05", "232.05", True),
    ]

    wheel = ok(
        await client.get(f"/v1/boms/{b['boms']['Wheel']['id']}/cost", params={"quantity": 21})
    )
    assert wheel["material_cost"] == "232.05"
    assert [
        (b["names"][c["component_item_id"]], c["quantity"], c["unit_cost"], c["cost"], c["made"])
        for c in wheel["lines"]
    ] == [
        ("Rim", "21", "1.15", "24.15", True),
        ("Spoke", "831.6", "0.25", "207.9", False),
    ]


async def test_explosion_and_cost_refuse_bad_quantities(client: httpx.AsyncClient) -> None:
    b = await bike(client)
    bom_id = b["boms"]["Bike"]["id"]
    for view in ("explosion", "cost"):
        for quantity in ("0", "-1", "-0.5", "1.1234567", "ten"):
            response = await client.get(f"/v1/boms/{bom_id}/{view}", params={"quantity": quantity})
            body = problem(response, 422, "validation_error")
            assert body["errors"][0]["loc"] == ["query", "quantity"], (view, quantity, body)
        ok(await client.get(f"/v1/boms/{bom_id}/{view}", params={"quantity": "0.000001"}))
        missing = await client.get(f"/v1/boms/{uuid.uuid4()}/{view}", params={"quantity": 1})
        problem(missing, 404, "not_found")


async def defaults(client: httpx.AsyncClient, product: dict[str, Any]) -> list[str]:
    return [b["revision"] for b in await boms_of(client, product) if b["default"]]


async def test_exactly_one_default_when_first_boms_race(client: httpx.AsyncClient) -> None:
    product, part = await create_item(client), await create_item(client)
    # Six first BOMs at once: only one of them can be the first.
    created = await asyncio.gather(
        *(post_bom(client, product, [line(part, n)], revision=f"R{n}") for n in range(1, 7))
    )
    assert [r.status_code for r in created] == [201] * 6, [r.text for r in created]
    assert len(await defaults(client, product)) == 1, await defaults(client, product)


async def test_exactly_one_default_when_make_default_races(client: httpx.AsyncClient) -> None:
    product, part = await create_item(client), await create_item(client)
    revisions = [await new_bom(client, product, [line(part, n)]) for n in range(1, 7)]
    switched = await asyncio.gather(
        *(client.post(f"/v1/boms/{b['id']}/make-default") for b in revisions)
    )
    assert [r.status_code for r in switched] == [200] * 6, [r.text for r in switched]
    assert len(await defaults(client, product)) == 1, await defaults(client, product)


async def test_exactly_one_default_when_new_default_revisions_race(
    client: httpx.AsyncClient,
) -> None:
    product, part = await create_item(client), await create_item(client)
    await new_bom(client, product, [line(part, 1)])
    claimed = await asyncio.gather(
        *(
            post_bom(client, product, [line(part, n)], revision=f"S{n}", default=True)
            for n in range(1, 7)
        )
    )
    assert [r.status_code for r in claimed] == [201] * 6, [r.text for r in claimed]
    assert len(await defaults(client, product)) == 1, await defaults(client, product)


async def test_a_bom_whose_first_use_rolled_back_can_still_get_operations(
    app: Any, client: httpx.AsyncClient
) -> None:
    """Orders of a used BOM without operations skip reading them (a used BOM never
    changes), but only once that use is committed: a rolled-back first order leaves the
    BOM open to change, and the next order gets the operations it was given."""
    from prodorder_api.boms import service as boms

    component, product = await create_item(client), await create_item(client)
    bom = await create_bom(client, product["id"], [(component["id"], 1)])
    async with app.state.sessionmaker() as session:
        loaded = await boms.default_for(session, uuid.UUID(product["id"]))
        assert loaded is not None and loaded.operations == []
        await boms.mark_used(session, loaded)
        await session.rollback()
    operations = [{"sequence": 10, "name": "Assemble", "run_minutes": "5"}]
    ok(await client.patch(f"/v1/boms/{bom['id']}", json={"operations": operations}))

    order = await create_order(client, product["id"], 1)
    assert [op["name"] for op in order["operations"]] == ["Assemble"]
