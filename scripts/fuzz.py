"""`make fuzz`: schemathesis against the live server, generated from the server's own schema.

For each backend, SQLite and then PostgreSQL (the server `make pytest` uses; skipped
when there is none, except under `CI=true`), starts the real server on loopback with a
fresh database and an admin key (see live_server.py), stocks it with a small bicycle
shop (items of every tracking kind, stock, a work center, a BOM with operations,
orders in every open status), and lets schemathesis send every operation valid and
invalid requests. Generated ids are often (not always) the shop's real ones, drawn
from schemathesis dictionaries, so requests get past "not found" into the business
rules. A run fails on any 5xx, any status code the document does not declare, and
any response whose content type or body does not match the document.

The server runs with its real limits on (the default body bound, and a rate limit of
`FUZZ_RATE_LIMIT`, default 100/second, so that some answers are 429s and are checked
too). Before schemathesis, every input that once reached a 500 or got past a limit
(KNOWN_ATTACKS) is replayed and must be refused with a 4xx problem document.

Each run is bounded: a few examples per operation and phase (`FUZZ_MAX_EXAMPLES`) and
a time budget per backend (`FUZZ_MAX_TIME`, seconds). `FUZZ_BACKENDS=sqlite` picks one
backend. Extra schemathesis options go in `FUZZ_ARGS`, e.g. `FUZZ_ARGS="--seed 1234"`
to replay a run.
"""

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from live_server import ROOT, fresh_postgres_database, live_server

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
# How often a generated id (or ETag) is one of the shop's instead of a random string.
KNOWN_ID_PROBABILITY = 0.6
BINDINGS = {
    "items": [
        "path.item_id",
        "query.item_id",
        "body.item_id",
        "body.lines[*].item_id",
        "body.lines[*].component_item_id",
        "body.by_products[*].item_id",
    ],
    "locations": [
        "path.location_id",
        "query.location_id",
        "body.location_id",
        "body.output_location_id",
        "body.from_location_id",
        "body.to_location_id",
    ],
    "orders": ["path.order_id", "query.production_order_id"],
    "boms": ["path.bom_id", "body.bom_id"],
    "work_centers": [
        "path.work_center_id",
        "query.work_center_id",
        "body.operations[*].work_center_id",
    ],
    "sequences": ["path.sequence"],
    "lots": ["body.lot_code", "body.lines[*].lot_code"],
    "etags": ["header.If-Match"],
}


def stock_the_shop(base_url: str, token: str) -> dict[str, list[Any]]:
    """Create what the fuzzer's requests refer to; returns the ids per dictionary."""
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:

        def post(path: str, body: dict[str, Any] | None = None) -> Any:
            response = http.post(path, json=body)
            while response.status_code == 429:  # the server's own rate limit is on
                time.sleep(int(response.headers["Retry-After"]))
                response = http.post(path, json=body)
            response.raise_for_status()
            return response.json()

        def item(sku: str, **fields: Any) -> str:
            return str(post("/v1/items", {"sku": sku, "name": sku.title(), **fields})["id"])

        frame, wheel, bolt = item("FRAME", standard_cost="50"), item("WHEEL"), item("BOLT")
        paint, saddle, bike = item("PAINT", tracking="lot"), item("SADDLE"), item("BIKE")
        serial = item("FRAME-SN", tracking="serial")
        shelf = post("/v1/locations", {"code": "SHELF-1", "name": "Shelf 1"})["id"]
        main = http.get("/v1/locations", params={"code": "MAIN"}).json()["data"][0]["id"]
        for part, quantity, cost in (
            (frame, 1000, "50"),
            (wheel, 2000, "12.5"),
            (bolt, 9000, "0.1"),
        ):
            post("/v1/stock/receipts", {"item_id": part, "quantity": quantity, "unit_cost": cost})
        for lot in ("L1", "L2"):
            receipt = {"item_id": paint, "quantity": "50", "lot_code": lot, "unit_cost": "3"}
            post("/v1/stock/receipts", receipt)
        post("/v1/stock/receipts", {"item_id": serial, "quantity": 2, "serials": ["SN1", "SN2"]})
        post("/v1/stock/receipts", {"item_id": saddle, "quantity": 5, "location_id": shelf})
        bench = post("/v1/work-centers", {"code": "ASSEMBLY", "name": "Bench", "cost_per_hour": 42})
        bom = post(
            "/v1/boms",
            {
                "item_id": bike,
                "lines": [
                    {"component_item_id": frame, "quantity": 1},
                    {"component_item_id": wheel, "quantity": 2},
                    {"component_item_id": bolt, "quantity": 8, "scrap_factor": "0.05"},
                    {"component_item_id": paint, "quantity": "0.25", "consumption": "manual"},
                ],
                "operations": [
                    {"sequence": 10, "name": "Assemble", "work_center_id": bench["id"]},
                    {"sequence": 20, "name": "Inspect", "run_minutes": 5},
                ],
            },
        )
        orders = [post("/v1/production-orders", {"item_id": bike, "quantity": 2}) for _ in range(6)]
        for order in orders[2:]:
            post(f"/v1/production-orders/{order['id']}/release")
        for order in orders[4:]:
            post(f"/v1/production-orders/{order['id']}/operations/10/start")
    return {
        "items": [frame, wheel, bolt, paint, saddle, bike, serial],
        "locations": [main, shelf],
        "orders": [order["id"] for order in orders],
        "boms": [bom["id"]],
        "work_centers": [bench["id"]],
        "sequences": [10, 20],
        "lots": ["L1", "L2"],
        "etags": ["*", '"1"', '"2"', '"3"'],
    }


# Inputs that once reached a 500 or got past a limit, sent as they were found: none may
# get a 5xx, and each that sends a body must be refused with a 4xx problem document.
# (method, path, JSON body or raw bytes, whether to send the key)
KNOWN_ATTACKS: list[tuple[str, str, Any, bool]] = [
    ("POST", "/v1/items", b"[" + b"1," * (12 * 1024 * 1024) + b"1]", False),  # 24 MB, no key
    ("POST", "/v1/items", b'"' + b"x" * (3 * 1024 * 1024) + b'"', True),  # over the bound
    ("POST", "/v1/stock/receipts", {"item_id": "{bolt}", "quantity": 1e308}, True),
    ("POST", "/v1/stock/receipts", b'{"item_id": "{bolt}", "quantity": 1e1000000}', True),
    ("PATCH", "/v1/items/{bolt}", b'{"standard_cost": 1e1000000}', True),
    ("PATCH", "/v1/items/{bolt}", b'{"standard_cost": -1e-1000000}', True),
    ("GET", "/v1/reports/consumption?to=9999-12-31", None, True),  # a 200 or a 422
    ("GET", "/v1/reports/production?to=9999-12-31", None, True),
    *(
        ("POST", "/v1/webhooks", {"url": url, "events": ["*"]}, True)
        for url in (
            "https://[::127.0.0.1]/h",
            "https://[64:ff9b::7f00:1]/h",
            "https://[64:ff9b::a9fe:a9fe]/h",
            "https://[2002:7f00:1::]/h",
            "https://[fec0::1]/h",
            "https://[::ffff:0:7f00:1]/h",
            "https://[::ffff:127.0.0.1]/h",
            "https://user:pass@example.com/h",
            "https://a..com/h",
            "https://" + "a" * 64 + ".com/h",
        )
    ),
]


def replay_known_attacks(base_url: str, token: str, known: dict[str, list[Any]]) -> int:
    """Send KNOWN_ATTACKS; the number that were not answered with a 4xx problem."""
    failures = 0
    names = {"bolt": known["items"][2]}
    with httpx.Client(base_url=base_url, timeout=30) as http:
        for method, path, body, with_key in KNOWN_ATTACKS:
            headers = {"Content-Type": "application/json"}
            if with_key:
                headers["Authorization"] = f"Bearer {token}"
            if isinstance(body, bytes):
                content = body.replace(b"{bolt}", names["bolt"].encode())
            else:
                content = json.dumps(body).replace("{bolt}", names["bolt"]).encode()
            url = path.replace("{bolt}", names["bolt"])
            data = None if body is None else content
            while (
                response := http.request(method, url, content=data, headers=headers)
            ).status_code == 429:
                time.sleep(int(response.headers["Retry-After"]))
            problem = response.headers.get("content-type") == "application/problem+json"
            refused = 400 <= response.status_code < 500 and problem
            if response.status_code >= 500 or (body is not None and not refused):
                failures += 1
                print(f"fuzz: {method} {url[:80]} → {response.status_code} {response.text[:200]}")
    print(f"fuzz: {len(KNOWN_ATTACKS)} known attacks replayed, {failures} not refused as they must")
    return failures


def write_config(path: Path, known: dict[str, list[Any]]) -> None:
    """A schemathesis.toml whose dictionaries hold the shop's ids (JSON strings are TOML)."""
    lines = []
    for name, values in known.items():
        lines.append(f"[dictionaries.{name}]\nvalues = {json.dumps(values)}\n")
    lines.append("[parameters]")
    for name, keys in BINDINGS.items():
        for key in keys:
            binding = f'{{ dictionary = "{name}", probability = {KNOWN_ID_PROBABILITY} }}'
            lines.append(f"{json.dumps(key)} = {binding}")
    path.write_text("\n".join(lines) + "\n")


def fuzz(backend: str, database_url: str | None) -> int:
    """One bounded schemathesis run against a fresh server; its exit status."""
    schemathesis = Path(sys.executable).parent / "schemathesis"
    max_time = int(os.environ.get("FUZZ_MAX_TIME", "40"))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        workdir = Path(tmp)
        with live_server(workdir, database_url) as server:
            config = workdir / "schemathesis.toml"
            known = stock_the_shop(server.base_url, server.token)
            write_config(config, known)
            attacks_failed = replay_known_attacks(server.base_url, server.token, known)
            command = [
                str(schemathesis),
                *("--config-file", str(config)),
                "run",
                f"{server.base_url}/openapi.json",
                *("--checks", ",".join(CHECKS)),
                *("--header", f"Authorization: Bearer {server.token}"),
                *("--max-examples", os.environ.get("FUZZ_MAX_EXAMPLES", "25")),
                *("--max-time", str(max_time)),
                # One worker: with two, CPython 3.11's `ast` can fail in hypothesis's threads
                # ("AST constructor recursion depth mismatch"), a tool error, not the API's.
                *("--workers", "1"),
                *("--request-timeout", "10"),
                *("--generation-database", "none"),
                *shlex.split(os.environ.get("FUZZ_ARGS", "")),
            ]
            print(f"fuzz: {backend}", flush=True)
            # The time budget bounds the run; the timeout only guards against a hang.
            status = subprocess.run(command, cwd=workdir, timeout=max_time + 120).returncode
            status = status or int(attacks_failed > 0)
            if status != 0:
                print(f"fuzz: server log tail:\n{server.log.read_text(errors='replace')[-4000:]}")
    elapsed = time.monotonic() - started
    print(f"fuzz: {backend}: schemathesis exited {status} after {elapsed:.0f} s", flush=True)
    return status


def postgres_server() -> str | None:
    """The PostgreSQL server of `make pytest` (TEST_DATABASE_URL), started if need be."""
    found = subprocess.run(
        [ROOT / "scripts" / "ensure-postgres"], stdout=subprocess.PIPE, text=True, check=False
    )
    if found.returncode != 0:  # CI=true and no PostgreSQL
        raise SystemExit(found.returncode)
    return found.stdout.strip() or None


def main() -> int:
    # The server's real limits: its default body bound, and a rate limit that the fuzzer
    # reaches now and then, so that 429 answers are checked against the document too.
    os.environ.setdefault("PRODORDER_RATE_LIMIT", os.environ.get("FUZZ_RATE_LIMIT", "100/second"))
    status = 0
    for backend in os.environ.get("FUZZ_BACKENDS", "sqlite,postgresql").split(","):
        if backend == "sqlite":
            status |= fuzz(backend, None)
        elif backend == "postgresql":
            server = postgres_server()
            if server is None:
                print("fuzz: no PostgreSQL server, so no PostgreSQL run", flush=True)
                continue
            with fresh_postgres_database(server) as database_url:
                status |= fuzz(backend, database_url)
        else:
            raise SystemExit(f"fuzz: unknown backend {backend!r} in FUZZ_BACKENDS")
    return status


if __name__ == "__main__":
    sys.exit(main())
