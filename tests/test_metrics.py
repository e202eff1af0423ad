"""Prometheus metrics: requests by route template, committed transitions, outbox backlog."""

import re

import httpx

from tests.helpers import problem
from tests.order_helpers import act, bicycle, create_order


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        labels_text = line[len(name) + 1 : line.rindex("}")]
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels_text))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_requests_by_route_template_and_transitions(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient
) -> None:
    before = (await anon_client.get("/metrics")).text
    b = await bicycle(client)
    order = await create_order(client, b["bike"]["id"], 11)
    problem(await act(client, order, "release"), 409, "insufficient_stock")  # not counted
    small = await create_order(client, b["bike"]["id"], 1)
    await act(client, small, "release")
    await client.get(f"/v1/production-orders/{small['id']}")
    response = await anon_client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    route = "/v1/production-orders/{order_id}"
    assert (
        sample(after, "prodorder_http_requests_total", method="GET", route=route, status="200") >= 1
    )
    assert small["id"] not in after  # ids never become labels
    released = dict(action="release", from_status="planned", to_status="released")
    assert (
        sample(after, "prodorder_order_transitions_total", **released)
        - sample(before, "prodorder_order_transitions_total", **released)
        == 1
    )
    assert 'prodorder_outbox_backlog{kind="events_unsequenced"}' in after
    assert "prodorder_http_request_duration_seconds_bucket" in after
