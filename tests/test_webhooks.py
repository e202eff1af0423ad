"""Webhooks (SPEC §7): Standard Webhooks signatures a reference receiver accepts, one
successful delivery per event, retries with backoff, `failing` after the last attempt,
URL rules, and dispatchers that share the work without sending anything twice.

The receivers are real HTTP servers on 127.0.0.1 (a thread each), verifying every
delivery with the reference ``standardwebhooks`` library. The webhook app allows
private URLs (``PRODORDER_WEBHOOKS_ALLOW_PRIVATE=true``) and retries within a
fraction of a second; the dispatchers are started by each test.
"""

import asyncio
import base64
import ipaddress
import json
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from standardwebhooks import Webhook, WebhookVerificationError

from prodorder_api.app import create_app
from prodorder_api.db import create_engine, create_sessionmaker
from prodorder_api.ids import new_id
from prodorder_api.settings import Settings
from prodorder_api.webhooks import dispatcher, urls
from prodorder_api.webhooks.dispatcher import Claim, Dispatcher
from tests.conftest import ADMIN_TOKEN, AUTH
from tests.helpers import create_item, ok, problem, receive
from tests.order_helpers import act, bicycle, create_order
from tests.test_events import events_after, feed_end
from tests.test_integration_basics import new_key

MAX_ATTEMPTS = 4
RETRY_BASE_S = 0.05


def hook_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "PRODORDER_BOOTSTRAP_KEY": ADMIN_TOKEN,
        "PRODORDER_DISPATCHER": False,
        "PRODORDER_DISPATCH_INTERVAL_S": 0.05,
        "PRODORDER_WEBHOOK_RETRY_BASE_S": RETRY_BASE_S,
        "PRODORDER_WEBHOOK_MAX_ATTEMPTS": MAX_ATTEMPTS,
        "PRODORDER_WEBHOOK_TIMEOUT_S": 2,
        "PRODORDER_WEBHOOKS_ALLOW_PRIVATE": True,
        **overrides,
    }
    return Settings(**values)


# --------------------------------------------------------------------------- receivers


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 resets connections when a dispatcher sends a batch at once.
    request_queue_size = 128
    daemon_threads = True


@dataclass
class Receiver:
    """An HTTP server on a free loopback port that verifies and counts deliveries.

    ``answer(webhook_id, nth)`` picks the status for the nth try (1-based) of an event.
    """

    answer: Callable[[str, int], int] = lambda _id, _nth: 204
    delay_s: float = 0.0
    secret: str | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.take(self, headers, body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self, handler: BaseHTTPRequestHandler, headers: dict[str, str], body: bytes) -> None:
        try:
            Webhook(self.secret or "").verify(body, headers)
            verified = True
        except (WebhookVerificationError, ValueError, KeyError, TypeError):
            verified = False
        if self.delay_s:
            time.sleep(self.delay_s)
        with self.lock:
            webhook_id = headers.get("webhook-id", "")
            nth = 1 + sum(1 for d in self.deliveries if d.headers["webhook-id"] == webhook_id)
            status = self.answer(webhook_id, nth)
            self.deliveries.append(Delivery(handler.path, headers, body, verified, status))
        handler.send_response(status)
        handler.send_header("content-length", "0")
        handler.end_headers()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def succeeded(self, path: str = "/hook") -> Counter[str]:
        with self.lock:
            return Counter(
                d.headers["webhook-id"]
                for d in self.deliveries
                if d.path == path and 200 <= d.status < 300
            )

    def tries(self, webhook_id: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.headers["webhook-id"] == webhook_id]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


# --------------------------------------------------------------------------- the app


@pytest.fixture(scope="module")
async def hooks_app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(hook_settings(database_url))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def hooks(hooks_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=hooks_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=AUTH) as http:
        yield http


@pytest.fixture
async def dispatching(hooks_app: FastAPI) -> AsyncIterator[Dispatcher]:
    """One dispatcher ticking in the background for the test."""
    settings = hooks_app.state.settings
    async with dispatcher.running(hooks_app.state.sessionmaker, settings) as running:
        yield running


async def subscribe(http: httpx.AsyncClient, url: str, events: list[str], **body: Any) -> Any:
    return ok(await http.post("/v1/webhooks", json={"url": url, "events": events, **body}), 201)


async def unsubscribe(http: httpx.AsyncClient, path: str) -> None:
    response = await http.delete(path)
    assert response.status_code == 204, response.text
    assert response.content == b""


async def wait_until(check: Callable[[], Any], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not await _maybe_await(check()):
        assert time.monotonic() < deadline, "timed out waiting for the webhooks"
        await asyncio.sleep(0.05)


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


async def settled(http: httpx.AsyncClient, webhook_id: str, count: int) -> bool:
    """``count`` deliveries, none pending any more (the receiver has its answer before
    the dispatcher records it)."""
    rows = await deliveries(http, webhook_id)
    return len(rows) == count and all(r["status"] != "pending" for r in rows)


async def deliveries(http: httpx.AsyncClient, webhook_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = ok(await http.get(f"/v1/webhooks/{webhook_id}/deliveries", params=params))
        rows += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


# --------------------------------------------------------------------------- tests


async def test_every_event_arrives_once_signed_and_as_the_feed_shows_it(
    hooks: httpx.AsyncClient, receiver: Receiver, dispatching: Dispatcher
) -> None:
    b = await bicycle(hooks)
    start = await feed_end(hooks)
    everything = await subscribe(hooks, receiver.url(), ["*"])
    completed = await subscribe(hooks, receiver.url("/done"), ["production_order.completed"])
    receiver.secret = everything["secret"]
    assert completed["secret"] != everything["secret"]

    order = await create_order(hooks, b["bike"]["id"], 2)
    for action in ("release", "start", "complete"):
        ok(await act(hooks, order, action))
    feed = await events_after(hooks, start)
    assert len(feed) > 5

    await wait_until(lambda: settled(hooks, everything["id"], len(feed)))
    await wait_until(lambda: settled(hooks, completed["id"], 1))
    assert receiver.succeeded() == Counter({e["id"]: 1 for e in feed})
    by_id = {d.headers["webhook-id"]: d for d in receiver.deliveries if d.path == "/hook"}
    for event in feed:
        delivery = by_id[event["id"]]
        assert delivery.verified, "the reference library must accept every delivery"
        assert delivery.event == event  # the body is the event exactly as the feed has it
        assert delivery.headers["content-type"] == "application/json"
        assert abs(int(delivery.headers["webhook-timestamp"]) - time.time()) < 60
        assert delivery.headers["webhook-signature"].startswith("v1,")
    # Byte for byte: each body is the event's JSON as it stands in the feed's response.
    raw = (await hooks.get("/v1/events", params={"after": start or "0", "limit": 500})).content
    assert all(by_id[e["id"]].body in raw for e in feed)
    done = [d for d in receiver.deliveries if d.path == "/done"]
    assert [d.event["type"] for d in done] == ["production_order.completed"]
    assert (
        Webhook(completed["secret"]).verify(done[0].body, done[0].headers)["data"]["id"]
        == (order["id"])
    )

    listed = await deliveries(hooks, everything["id"])
    assert sorted(d["event_id"] for d in listed) == sorted(e["id"] for e in feed)
    for row in listed:
        assert row["status"] == "succeeded" and row["delivered_at"] and not row["next_attempt_at"]
        assert [(a["attempt"], a["status_code"], a["error"]) for a in row["attempts"]] == [
            (1, 204, None)
        ]
    for webhook in (everything, completed):
        await unsubscribe(hooks, f"/v1/webhooks/{webhook['id']}")


async def test_a_receiver_failing_twice_gets_each_event_once_on_the_third_try(
    hooks: httpx.AsyncClient, receiver: Receiver, dispatching: Dispatcher
) -> None:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    receiver.secret = secret
    receiver.answer = lambda _id, nth: 503 if nth <= 2 else 200
    webhook = await subscribe(hooks, receiver.url(), ["stock.changed"], secret=secret)
    assert webhook["secret"] == secret
    item = await create_item(hooks)
    start = await feed_end(hooks)
    for quantity in (1, 2, 3):
        await receive(hooks, item["id"], quantity)
    feed = await events_after(hooks, start)
    assert len(feed) == 3

    await wait_until(lambda: settled(hooks, webhook["id"], 3))
    assert receiver.succeeded() == Counter({e["id"]: 1 for e in feed})
    for event in feed:
        tries = receiver.tries(event["id"])
        assert [t.status for t in tries] == [503, 503, 200]
        assert all(t.verified for t in tries)
        assert len({t.body for t in tries}) == 1  # every retry sends the same event

    rows = await deliveries(hooks, webhook["id"])
    assert len(rows) == 3
    for row in rows:
        assert row["status"] == "succeeded"
        attempts = row["attempts"]
        assert [(a["attempt"], a["status_code"]) for a in attempts] == [
            (1, 503),
            (2, 503),
            (3, 200),
        ]
        assert all(a["duration_ms"] >= 0 and a["error"] is None for a in attempts)
        at = [datetime.fromisoformat(a["at"]) for a in attempts]
        # Backoff with ±20 % jitter: at least 0.8 × base, then 0.8 × 2 × base.
        assert (at[1] - at[0]).total_seconds() >= 0.8 * RETRY_BASE_S - 0.01
        assert (at[2] - at[1]).total_seconds() >= 1.6 * RETRY_BASE_S - 0.01
    assert ok(await hooks.get(f"/v1/webhooks/{webhook['id']}"))["status"] == "active"
    await unsubscribe(hooks, f"/v1/webhooks/{webhook['id']}")


async def test_a_receiver_that_always_fails_leaves_the_webhook_failing(
    hooks: httpx.AsyncClient, receiver: Receiver, dispatching: Dispatcher
) -> None:
    receiver.answer = lambda _id, _nth: 500
    failing = await subscribe(hooks, receiver.url(), ["stock.changed"])
    receiver.secret = failing["secret"]
    closed = receiver.url().replace(str(receiver.port), str(_closed_port()))
    refused = await subscribe(hooks, closed, ["stock.changed"])
    item = await create_item(hooks)
    await receive(hooks, item["id"], 1)

    await wait_until(lambda: settled(hooks, failing["id"], 1))
    await wait_until(lambda: settled(hooks, refused["id"], 1))
    [row] = await deliveries(hooks, failing["id"])
    assert [(a["attempt"], a["status_code"]) for a in row["attempts"]] == [
        (n, 500) for n in range(1, MAX_ATTEMPTS + 1)
    ]
    assert row["delivered_at"] is None and row["next_attempt_at"] is None
    assert len(receiver.tries(row["event_id"])) == MAX_ATTEMPTS
    [row] = await deliveries(hooks, refused["id"])
    assert len(row["attempts"]) == MAX_ATTEMPTS
    assert all(a["status_code"] is None and a["error"] for a in row["attempts"])
    for webhook in (failing, refused):
        shown = ok(await hooks.get(f"/v1/webhooks/{webhook['id']}"))
        assert shown["status"] == "failing"
        assert "secret" not in shown
        await unsubscribe(hooks, f"/v1/webhooks/{webhook['id']}")
        problem(await hooks.get(f"/v1/webhooks/{webhook['id']}"), 404, "not_found")


async def test_a_disabled_webhook_waits_and_resumes_with_new_events(
    hooks: httpx.AsyncClient, receiver: Receiver, dispatching: Dispatcher
) -> None:
    webhook = await subscribe(hooks, receiver.url(), ["stock.*"])
    receiver.secret = webhook["secret"]
    path = f"/v1/webhooks/{webhook['id']}"
    assert ok(await hooks.patch(path, json={"status": "disabled"}))["status"] == "disabled"
    # An active webhook beside it is the witness that the dispatcher has come past the
    # event: once the witness has it, the disabled one would have had it too.
    witness = await subscribe(hooks, receiver.url("/witness"), ["stock.*"])
    item = await create_item(hooks)
    await receive(hooks, item["id"], 1)
    await wait_until(lambda: settled(hooks, witness["id"], 1))
    assert [d.path for d in receiver.deliveries] == ["/witness"]
    await unsubscribe(hooks, f"/v1/webhooks/{witness['id']}")
    with receiver.lock:
        receiver.deliveries.clear()

    assert ok(await hooks.patch(path, json={"status": "active"}))["status"] == "active"
    start = await feed_end(hooks)
    await receive(hooks, item["id"], 2)
    [event] = await events_after(hooks, start)
    await wait_until(lambda: settled(hooks, webhook["id"], 1))
    assert receiver.succeeded() == Counter({event["id"]: 1})
    assert receiver.deliveries[0].verified
    await unsubscribe(hooks, path)


async def test_subscriptions_show_no_secret_and_validate_their_input(
    hooks: httpx.AsyncClient, receiver: Receiver
) -> None:
    webhook = await subscribe(hooks, receiver.url(), ["production_order.*", "stock.changed"])
    assert webhook["secret"].startswith("whsec_")
    assert len(base64.b64decode(webhook["secret"].removeprefix("whsec_"))) == 32
    assert webhook["status"] == "active"
    assert webhook["events"] == ["production_order.*", "stock.changed"]
    shown = ok(await hooks.get(f"/v1/webhooks/{webhook['id']}"))
    assert "secret" not in shown and shown["url"] == receiver.url()
    listed = ok(await hooks.get("/v1/webhooks", params={"limit": 500}))["data"]
    assert all("secret" not in w for w in listed)
    assert webhook["id"] in {w["id"] for w in listed}

    url = receiver.url()
    for body in (
        {"url": url, "events": ["order.shipped"]},
        {"url": url, "events": []},
        {"url": url, "events": ["*"], "secret": "not-a-secret"},
        {"url": url, "events": ["*"], "secret": "whsec_" + base64.b64encode(b"x" * 16).decode()},
        {"url": url, "events": ["*"], "secret": "whsec_" + base64.b64encode(b"x" * 65).decode()},
        {"url": url, "events": ["*"], "secret": "whsec_!!!notbase64!!!"},
        {"url": "ftp://example.com/hook", "events": ["*"]},
        {"url": url, "events": ["*"], "colour": "blue"},
    ):
        response = await hooks.post("/v1/webhooks", json=body)
        problem(response, 422, "validation_error")
        if "secret" in body:  # a refused secret is never echoed
            assert str(body["secret"]) not in response.text
    patched = ok(
        await hooks.patch(f"/v1/webhooks/{webhook['id']}", json={"events": ["stock.changed"]})
    )
    assert patched["events"] == ["stock.changed"]
    problem(
        await hooks.patch(f"/v1/webhooks/{webhook['id']}", json={"status": "failing"}),
        422,
        "validation_error",
    )
    await unsubscribe(hooks, f"/v1/webhooks/{webhook['id']}")


async def test_webhooks_need_the_admin_scope(app: FastAPI, anon_client: httpx.AsyncClient) -> None:
    for scope in ("read", "write"):
        headers = await new_key(app, scope)
        problem(await anon_client.get("/v1/webhooks", headers=headers), 403, "forbidden")
        response = await anon_client.post(
            "/v1/webhooks", json={"url": "https://example.com", "events": ["*"]}, headers=headers
        )
        problem(response, 403, "forbidden")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",  # not https
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://172.16.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://100.100.100.200/",
        "https://0.0.0.0/hook",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https:///no-host",
    ],
)
async def test_private_urls_are_refused_unless_allowed(client: httpx.AsyncClient, url: str) -> None:
    """The main test app keeps the production default: private URLs are not allowed."""
    response = await client.post("/v1/webhooks", json={"url": url, "events": ["*"]})
    body = problem(response, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "url"]


async def test_a_public_https_url_is_accepted(client: httpx.AsyncClient) -> None:
    webhook = await subscribe(client, "https://93.184.215.14/hook", ["*"])
    ok(await client.patch(f"/v1/webhooks/{webhook['id']}", json={"status": "disabled"}))
    problem(
        await client.patch(f"/v1/webhooks/{webhook['id']}", json={"url": "https://10.0.0.1/hook"}),
        422,
        "validation_error",
    )
    await unsubscribe(client, f"/v1/webhooks/{webhook['id']}")


async def test_each_delivery_checks_the_address_again_after_resolving_it(
    database_url: str, receiver: Receiver
) -> None:
    """A subscription made while private URLs were allowed (or a name that now resolves
    to loopback) is refused at connection time once they are not."""
    settings = hook_settings(database_url, PRODORDER_WEBHOOKS_ALLOW_PRIVATE=False)
    engine = create_engine(database_url)
    guarded = Dispatcher(create_sessionmaker(engine), settings)
    try:
        for url in (receiver.url(), f"http://localhost:{receiver.port}/hook"):
            secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
            claim = Claim(new_id(), new_id(), 1, url, secret, new_id(), b"{}")
            outcome = await guarded.send(claim)
            assert outcome.status_code is None and not outcome.succeeded
            assert outcome.error and outcome.error.startswith("refused: ")
            assert "loopback" in outcome.error
        assert receiver.deliveries == []
    finally:
        await guarded.aclose()
        await engine.dispose()


async def test_a_name_that_resolves_to_a_private_address_is_refused_on_subscribe(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {"hooks.example.com": ["93.184.215.14", "10.0.0.7"], "ok.example.com": ["1.1.1.1"]}

    async def resolve(host: str, port: int) -> list[Any]:
        return [ipaddress.ip_address(a) for a in answers[host]]

    monkeypatch.setattr(urls, "resolve", resolve)
    response = await client.post(
        "/v1/webhooks", json={"url": "https://hooks.example.com/in", "events": ["*"]}
    )
    body = problem(response, 422, "validation_error")
    assert "10.0.0.7" in body["detail"] and "private" in body["detail"]
    webhook = await subscribe(client, "https://ok.example.com/in", ["stock.changed"])
    await unsubscribe(client, f"/v1/webhooks/{webhook['id']}")


async def test_dispatchers_in_parallel_deliver_each_event_exactly_once(
    hooks_app: FastAPI, hooks: httpx.AsyncClient, receiver: Receiver, database_url: str
) -> None:
    """Three dispatchers, as three app instances would run them, each with its own engine
    and small batches, racing for the same deliveries of a slow receiver."""
    receiver.delay_s = 0.02
    webhook = await subscribe(hooks, receiver.url(), ["stock.changed"])
    receiver.secret = webhook["secret"]
    items = [await create_item(hooks) for _ in range(6)]
    start = await feed_end(hooks)
    await asyncio.gather(*(receive(hooks, i["id"], n) for n in (1, 2, 3) for i in items))
    feed = await events_after(hooks, start)
    assert len(feed) == 18

    settings = hooks_app.state.settings
    async with AsyncExitStack() as stack:
        agents = []
        for n in range(3):
            engine = create_engine(database_url, pool_size=5)
            stack.push_async_callback(engine.dispose)
            running = await stack.enter_async_context(
                dispatcher.running(create_sessionmaker(engine), settings, batch=2)
            )
            running.http.headers["user-agent"] = f"dispatcher-{n}"
            agents.append(running)
        await wait_until(lambda: settled(hooks, webhook["id"], len(feed)))
        await asyncio.sleep(0.3)  # room for any duplicate to show up

    assert receiver.succeeded() == Counter({e["id"]: 1 for e in feed})
    assert len(receiver.deliveries) == len(feed)
    assert all(d.verified for d in receiver.deliveries)
    senders = Counter(d.headers["user-agent"] for d in receiver.deliveries)
    assert len(senders) >= 2, f"the dispatchers did not share the work: {senders}"
    rows = await deliveries(hooks, webhook["id"])
    assert all(r["status"] == "succeeded" and len(r["attempts"]) == 1 for r in rows)
    await unsubscribe(hooks, f"/v1/webhooks/{webhook['id']}")


async def test_the_app_runs_the_dispatcher_and_stops_it_on_shutdown(
    database_url: str, receiver: Receiver
) -> None:
    application = create_app(hook_settings(database_url, PRODORDER_DISPATCHER=True))
    transport = httpx.ASGITransport(app=application)
    async with application.router.lifespan_context(application):
        assert application.state.dispatcher is not None
        assert _dispatcher_tasks()
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=AUTH
        ) as http:
            webhook = await subscribe(http, receiver.url(), ["stock.changed"])
            receiver.secret = webhook["secret"]
            item = await create_item(http)
            await receive(http, item["id"], 1)
            await wait_until(lambda: settled(http, webhook["id"], 1))
            await unsubscribe(http, f"/v1/webhooks/{webhook['id']}")
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 2
    assert not _dispatcher_tasks()
    assert receiver.deliveries[0].verified


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dispatcher_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "webhook-dispatcher"]
