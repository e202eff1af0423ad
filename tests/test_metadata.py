"""Metadata (SPEC §10) on items, BOMs, production orders and lots: its limits, PATCH
merge and removal, `?metadata[key]=value` filters, and events that carry it. Both
databases."""

import json
from typing import Any

import httpx
import pytest

from tests.helpers import create_item, ok, problem, receive, unique, walk
from tests.order_helpers import act, bicycle, create_bom, create_order
from tests.test_events import events_after, feed_end
from tests.test_purchase_orders import create_po, receive_po


@pytest.mark.parametrize(
    "metadata",
    [
        {f"k{n}": "v" for n in range(51)},
        {"k" * 41: "v"},
        {"": "v"},
        {"key": "v" * 501},
        {"key": 5},
        ["key", "value"],
        {"key": "a\u0000b"},
        {"k\u0000": "v"},
        {"key": "\ud800"},
    ],
    ids=[
        "51 keys",
        "41-character key",
        "empty key",
        "501-character value",
        "number",
        "list",
        "NUL in a value",
        "NUL in a key",
        "lone surrogate",
    ],
)
async def test_metadata_beyond_the_limits_is_422_and_creates_nothing(
    client: httpx.AsyncClient, metadata: Any
) -> None:
    sku = unique("SKU")
    problem(
        await client.post(
            "/v1/items",
            # json.dumps escapes a lone surrogate as `\ud800`, which httpx cannot encode.
            content=json.dumps({"sku": sku, "name": "x", "metadata": metadata}),
            headers={"Content-Type": "application/json"},
        ),
        422,
        "validation_error",
    )
    assert ok(await client.get("/v1/items", params={"sku": sku}))["data"] == []


async def test_metadata_at_the_limits_is_kept_exactly(client: httpx.AsyncClient) -> None:
    metadata = {f"{n:02d}" + "k" * 38: "v" * 500 for n in range(50)}
    item = await create_item(client, metadata=metadata)
    assert item["metadata"] == metadata
    assert ok(await client.get(f"/v1/items/{item['id']}"))["metadata"] == metadata


async def test_patch_merges_and_an_empty_value_removes_a_key(client: httpx.AsyncClient) -> None:
    item = await create_item(client, metadata={"colour": "red", "size": "L", "gone": ""})
    assert item["metadata"] == {"colour": "red", "size": "L"}
    patched = ok(
        await client.patch(
            f"/v1/items/{item['id']}", json={"metadata": {"size": "", "shop": "A-7"}}
        )
    )
    assert patched["metadata"] == {"colour": "red", "shop": "A-7"}
    assert patched["version"] == item["version"] + 1
    # Removing a key that is not there, and sending nothing, change nothing.
    same = ok(await client.patch(f"/v1/items/{item['id']}", json={"metadata": {"size": ""}}))
    assert same["metadata"] == {"colour": "red", "shop": "A-7"}
    assert same["version"] == patched["version"]
    problem(
        await client.patch(f"/v1/items/{item['id']}", json={"metadata": None}),
        422,
        "validation_error",
    )


async def test_a_merge_past_fifty_keys_is_422_and_keeps_the_old_map(
    client: httpx.AsyncClient,
) -> None:
    full = {f"k{n}": "v" for n in range(50)}
    item = await create_item(client, metadata=full)
    problem(
        await client.patch(f"/v1/items/{item['id']}", json={"metadata": {"one_more": "v"}}),
        422,
        "validation_error",
    )
    assert ok(await client.get(f"/v1/items/{item['id']}"))["metadata"] == full
    # Swapping a key for another stays within the limit.
    swapped = ok(
        await client.patch(
            f"/v1/items/{item['id']}", json={"metadata": {"k0": "", "one_more": "v"}}
        )
    )
    assert len(swapped["metadata"]) == 50 and "one_more" in swapped["metadata"]


async def test_the_order_filter_returns_exactly_the_matching_orders_among_many(
    client: httpx.AsyncClient,
) -> None:
    kit = await bicycle(client)
    shop = unique("shop")
    wanted = []
    for n in range(30):
        metadata = {"shop": shop, "channel": "web" if n % 3 == 0 else "phone", "n": str(n)}
        order = await create_order(client, kit["bike"]["id"], 1, metadata=metadata)
        if n % 3 == 0:
            wanted.append(order["id"])
    await create_order(client, kit["bike"]["id"], 1, metadata={"channel": "web"})

    def ids(rows: list[dict[str, Any]]) -> list[str]:
        return [row["id"] for row in rows]

    params = {"metadata[shop]": shop, "metadata[channel]": "web", "limit": 4}
    found = await walk(client, "/v1/production-orders", **params)
    assert ids(found) == wanted
    assert all(row["metadata"]["channel"] == "web" for row in found)
    one = await walk(
        client, "/v1/production-orders", **{"metadata[shop]": shop, "metadata[n]": "3"}
    )
    assert ids(one) == [wanted[1]]
    # A value is matched exactly, as a string: no prefix, no case folding, no number.
    for near in ("WEB", "we", "web ", ""):
        assert (
            await walk(
                client,
                "/v1/production-orders",
                **{"metadata[shop]": shop, "metadata[channel]": near},
            )
            == []
        )
    assert await walk(client, "/v1/production-orders", **{"metadata[no such key]": "web"}) == []
    # Quotes and backslashes are data, matched exactly.
    odd = {"it's": "a 'quoted' \\ value\"}", "%": "_"}
    marked = await create_order(client, kit["bike"]["id"], 1, metadata={**odd, "shop": shop})
    found = await walk(
        client, "/v1/production-orders", **{f"metadata[{k}]": v for k, v in odd.items()}
    )
    assert ids(found) == [marked["id"]]


async def test_a_bad_metadata_filter_is_422(client: httpx.AsyncClient) -> None:
    for params in (
        {"metadata[]": "x"},
        {"metadata[" + "k" * 41 + "]": "x"},
        {"metadata[k]": "a\x00b"},
        {"metadata[k]": "v" * 501},
    ):
        problem(await client.get("/v1/items", params=params), 422, "validation_error")


async def test_items_boms_and_lots_filter_by_metadata(client: httpx.AsyncClient) -> None:
    tag = unique("tag")
    lot_item = await create_item(client, tracking="lot", metadata={"tag": tag})
    other = await create_item(client, metadata={"tag": "other"})
    items = await walk(client, "/v1/items", **{"metadata[tag]": tag})
    assert [i["id"] for i in items] == [lot_item["id"]]

    bom = await create_bom(client, lot_item["id"], [(other["id"], 1)], metadata={"tag": tag})
    assert bom["metadata"] == {"tag": tag}
    boms = await walk(client, "/v1/boms", **{"metadata[tag]": tag})
    assert [b["id"] for b in boms] == [bom["id"]]

    await receive(client, other["id"], 5, lot_code=None)
    await receive(client, lot_item["id"], 2, lot_code="L1")
    await receive(client, lot_item["id"], 2, lot_code="L2")
    lots = await walk(client, "/v1/lots", item_id=lot_item["id"])
    assert [lot["metadata"] for lot in lots] == [{}, {}]
    patched = ok(await client.patch(f"/v1/lots/{lots[1]['id']}", json={"metadata": {"tag": tag}}))
    assert patched["metadata"] == {"tag": tag} and patched["on_hand"] == "2"
    found = await walk(client, "/v1/lots", **{"metadata[tag]": tag})
    assert [lot["code"] for lot in found] == ["L2"]
    problem(
        await client.patch(f"/v1/lots/{lots[1]['id']}", json={"code": "L9"}),
        422,
        "validation_error",
    )


async def test_a_used_bom_takes_new_metadata_but_no_new_content(
    client: httpx.AsyncClient,
) -> None:
    kit = await bicycle(client)
    await create_order(client, kit["bike"]["id"], 1)
    bom = ok(await client.patch(f"/v1/boms/{kit['bom']['id']}", json={"metadata": {"cad": "r7"}}))
    assert bom["metadata"] == {"cad": "r7"} and bom["used"]
    problem(
        await client.patch(
            f"/v1/boms/{kit['bom']['id']}", json={"metadata": {"cad": "r8"}, "output_quantity": 2}
        ),
        409,
        "conflict",
    )
    assert ok(await client.get(f"/v1/boms/{kit['bom']['id']}"))["metadata"] == {"cad": "r7"}


async def test_order_events_carry_the_metadata(client: httpx.AsyncClient) -> None:
    kit = await bicycle(client)
    start = await feed_end(client)
    order = await create_order(client, kit["bike"]["id"], 1, metadata={"shop_order": "1234"})
    ok(await client.patch(f"/v1/production-orders/{order['id']}", json={"metadata": {"x": "1"}}))
    ok(await act(client, order, "release"))
    rows = [e for e in await events_after(client, start) if e["data"].get("id") == order["id"]]
    assert [(e["type"], e["data"]["metadata"]) for e in rows] == [
        ("production_order.created", {"shop_order": "1234"}),
        ("production_order.updated", {"shop_order": "1234", "x": "1"}),
        ("production_order.released", {"shop_order": "1234", "x": "1"}),
    ]
    history = ok(await client.get(f"/v1/production-orders/{order['id']}"))["history"]
    assert history[1]["action"] == "update"


async def test_split_and_backorder_keep_the_metadata(client: httpx.AsyncClient) -> None:
    kit = await bicycle(client)
    order = await create_order(client, kit["bike"]["id"], 4, metadata={"shop_order": "77"})
    result = ok(await act(client, order, "split", {"quantity": 1}))
    assert result["new"]["metadata"] == {"shop_order": "77"}


async def test_purchase_orders_take_metadata_merge_it_filter_by_it_and_say_so_in_events(
    client: httpx.AsyncClient,
) -> None:
    item = await create_item(client)
    tag = unique("tag")
    line = (item, 5, "2", "2027-01-15")
    start = await feed_end(client)
    po = await create_po(client, line, metadata={"erp_id": "4711", "tag": tag})
    await create_po(client, line, metadata={"tag": "other"})
    assert po["metadata"] == {"erp_id": "4711", "tag": tag}
    found = await walk(client, "/v1/purchase-orders", **{"metadata[tag]": tag})
    assert [p["id"] for p in found] == [po["id"]]

    patched = ok(
        await client.patch(
            f"/v1/purchase-orders/{po['id']}",
            json={"metadata": {"erp_id": "", "buyer": "jo"}, "reference": "AB-1"},
        )
    )
    assert (patched["metadata"], patched["reference"]) == ({"tag": tag, "buyer": "jo"}, "AB-1")
    assert patched["version"] == po["version"] + 1
    # Nothing new: no new version, no event.
    same = ok(await client.patch(f"/v1/purchase-orders/{po['id']}", json={"metadata": {}}))
    assert same["version"] == patched["version"]
    ok(await receive_po(client, po, (0, 5)))
    problem(
        await client.patch(f"/v1/purchase-orders/{po['id']}", json={"supplier": "x"}),
        422,
        "validation_error",
    )
    rows = [e for e in await events_after(client, start) if e["data"].get("id") == po["id"]]
    assert [(e["type"], e["data"]["metadata"]) for e in rows] == [
        ("purchase_order.created", {"erp_id": "4711", "tag": tag}),
        ("purchase_order.updated", {"tag": tag, "buyer": "jo"}),
        ("purchase_order.received", {"tag": tag, "buyer": "jo"}),
    ]
