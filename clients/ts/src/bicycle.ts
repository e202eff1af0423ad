// `make ts-client-check`: the README's bicycle walk through a TypeScript client.
//
// The types come from openapi-typescript (default flags) run on openapi/openapi.json,
// the calls from openapi-fetch; compiled with `tsc --strict`, without a single type
// assertion (scripts/ts_client_check.py refuses `as` casts, `any` and `@ts-ignore`).
// The same four bicycles as scripts/client_check.py, against a live server:
// PRODORDER_BASE_URL and PRODORDER_TOKEN say where and with which key.
// The `@ts-expect-error` lines are checks too: each must NOT compile, or tsc fails.

import createClient from "openapi-fetch";

import type { components, paths } from "../generated/api.js";

type Schemas = components["schemas"];
type Problem = Schemas["Problem"];
type Event = Schemas["Event"];

const baseUrl = process.env["PRODORDER_BASE_URL"] ?? "http://127.0.0.1:8000";
const token = process.env["PRODORDER_TOKEN"] ?? "";

function check(condition: boolean, what: string, detail?: unknown): void {
  if (!condition) {
    throw new Error(`${what}${detail === undefined ? "" : `: ${JSON.stringify(detail)}`}`);
  }
}

function equal<T>(actual: T, expected: T, what: string): void {
  const [a, e] = [JSON.stringify(actual), JSON.stringify(expected)];
  check(a === e, what, { actual, expected });
}

interface Answer<T, E> {
  data?: T;
  error?: E;
  response: Response;
}

/** The body of an answer that must have `status`. */
function ok<T, E>(answer: Answer<T, E>, status: number): T {
  check(answer.response.status === status && answer.data !== undefined, `expected ${status}`, {
    status: answer.response.status,
    error: answer.error,
  });
  if (answer.data === undefined) throw new Error("unreachable");
  return answer.data;
}

/** The problem of an answer that must have failed with `status`. */
function problem<T>(answer: Answer<T, Problem>, status: number): Problem {
  check(answer.response.status === status && answer.error !== undefined, `expected ${status}`, {
    status: answer.response.status,
  });
  if (answer.error === undefined) throw new Error("unreachable");
  return answer.error;
}

/** `"<version>"`, what `ETag` and `If-Match` carry. */
const tag = (version: number): string => `"${version}"`;

async function main(): Promise<void> {
  const started = Date.now();
  const anonymous = createClient<paths>({ baseUrl });
  const refused = problem(
    await anonymous.POST("/v1/items", { body: { sku: "X", name: "X" } }),
    401,
  );
  equal(refused.code, "unauthorized", "no key");
  check(refused.detail.length > 0, "a problem says what is wrong");

  const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });

  // Fields with a default (uom, tracking, lead_time_days) stay optional.
  const item = async (sku: string, name: string, standardCost?: string) => {
    const answer = await api.POST("/v1/items", {
      body: standardCost === undefined ? { sku, name } : { sku, name, standard_cost: standardCost },
    });
    const created = ok(answer, 201);
    equal(created.tracking, "none", "tracking defaults to none");
    equal(answer.response.headers.get("ETag"), tag(created.version), "an item's ETag");
    check(answer.response.headers.get("X-Request-ID") !== null, "every answer has X-Request-ID");
    return created;
  };
  const frame = await item("BIKE-FRAME", "Frame", "50");
  const wheel = await item("BIKE-WHEEL", "Wheel");
  const bolt = await item("BIKE-BOLT", "Bolt M6");
  const bike = await item("BIKE", "City bicycle");
  check(frame.standard_cost === "50" && bike.average_cost === null, "costs", frame);

  const bench = ok(
    await api.POST("/v1/work-centers", {
      body: { code: "ASSEMBLY", name: "Assembly bench", cost_per_hour: "42", minutes_per_day: 420 },
    }),
    201,
  );

  const receipts: Schemas["ReceiptCreate"][] = [
    { item_id: frame.id, quantity: "10", unit_cost: "50" },
    { item_id: wheel.id, quantity: "20", unit_cost: "12.5" },
  ];
  for (const body of receipts) {
    ok(await api.POST("/v1/stock/receipts", { body }), 201);
  }
  // A receipt sent twice with one Idempotency-Key is received once.
  const receipt = {
    body: { item_id: bolt.id, quantity: "100", unit_cost: "0.1", reference: "PO-2001" },
    params: { header: { "Idempotency-Key": `bolts-${Date.now()}` } },
  };
  const received = ok(await api.POST("/v1/stock/receipts", receipt), 201);
  const replayed = await api.POST("/v1/stock/receipts", receipt);
  equal(replayed.response.headers.get("Idempotent-Replayed"), "true", "the replay says so");
  equal(ok(replayed, 201).movements[0]?.id, received.movements[0]?.id, "the same receipt");
  const [movement] = received.movements;
  check(movement?.type === "receipt" && movement.value === "10", "the receipt's value", movement);

  const bom = ok(
    await api.POST("/v1/boms", {
      body: {
        item_id: bike.id,
        lines: [
          { component_item_id: frame.id, quantity: "1" },
          { component_item_id: wheel.id, quantity: 2 },
          { component_item_id: bolt.id, quantity: "8" },
        ],
        operations: [
          {
            sequence: 10,
            name: "Assemble",
            work_center_id: bench.id,
            setup_minutes: "15",
            run_minutes: "30",
            instructions: "Mount the wheels, torque the bolts to 8 Nm",
          },
          {
            sequence: 20,
            name: "Inspect",
            work_center_id: bench.id,
            run_minutes: "5",
            instructions: "Brakes, gears, a test ride",
          },
        ],
      },
    }),
    201,
  );
  check(bom.default, "the first BOM is the default");
  equal(
    bom.lines.map((line) => line.consumption),
    ["backflush", "backflush", "backflush"],
    "lines backflush by default",
  );
  const cost = ok(
    await api.GET("/v1/boms/{bom_id}/cost", {
      params: { path: { bom_id: bom.id }, query: { quantity: "4" } },
    }),
    200,
  );
  equal(cost.material_cost, "303.2", "material cost of 4");

  let order = ok(
    await api.POST("/v1/production-orders", {
      body: { item_id: bike.id, quantity: "4", reference: "SHOP-1001", due_date: "2026-12-01" },
    }),
    201,
  );
  const orderPath = { path: { order_id: order.id } };
  check(order.number === "MO-000001" && order.status === "planned", "a planned order", order);
  check(order.allowed_actions.includes("release"), "planned orders can be released");
  equal(order.requirements.map((r) => r.required_quantity), ["4", "8", "32"], "requirements");
  equal(order.operations.map((o) => o.planned_minutes), ["135", "20"], "planned minutes");

  const release = await api.POST("/v1/production-orders/{order_id}/release", {
    params: { ...orderPath, header: { "If-Match": tag(order.version) } },
    body: {},
  });
  order = ok(release, 200);
  equal(release.response.headers.get("ETag"), tag(order.version), "the new ETag");
  equal(order.status, "released", "released");
  equal(order.requirements.map((r) => r.reserved_quantity), ["4", "8", "32"], "reserved");

  const stale = problem(
    await api.POST("/v1/production-orders/{order_id}/release", {
      params: { ...orderPath, header: { "If-Match": tag(1) } },
    }),
    412,
  );
  equal(stale.code, "precondition_failed", "a stale If-Match");

  const pdf = await api.GET("/v1/production-orders/{order_id}/work-order.pdf", {
    params: orderPath,
    parseAs: "blob",
  });
  const document: Blob = ok(pdf, 200);
  equal(new TextDecoder().decode(await document.slice(0, 5).arrayBuffer()), "%PDF-", "a PDF");
  check(
    (pdf.response.headers.get("Content-Disposition") ?? "").includes("filename="),
    "the PDF names its file",
  );

  const operation = (sequence: number) => ({ path: { order_id: order.id, sequence } });
  order = ok(
    await api.POST("/v1/production-orders/{order_id}/operations/{sequence}/start", {
      params: operation(10),
    }),
    200,
  );
  check(order.status === "in_progress" && order.operations[0]?.status === "in_progress", "started");
  order = ok(
    await api.POST("/v1/production-orders/{order_id}/operations/{sequence}/time", {
      params: operation(10),
      body: { minutes: "140", quantity: "4", note: "Bench 1, J. Smith" },
    }),
    200,
  );
  check(order.labour_cost === "98" && order.operations[0]?.actual_minutes === "140", "labour");
  order = ok(
    await api.POST("/v1/production-orders/{order_id}/operations/{sequence}/complete", {
      params: operation(10),
    }),
    200,
  );
  equal(order.operations[0]?.status, "done", "operation 10 done");

  order = ok(
    await api.POST("/v1/production-orders/{order_id}/outputs", {
      params: orderPath,
      body: { quantity: 1 },
    }),
    200,
  );
  check(order.produced_quantity === "1" && order.unit_cost === "100.3", "one bicycle", order);

  order = ok(
    await api.POST("/v1/production-orders/{order_id}/complete", { params: orderPath }),
    200,
  );
  equal(order.status, "completed", "completed");
  equal(order.allowed_actions, [], "a completed order allows nothing");
  equal(
    [
      order.produced_quantity,
      order.material_cost,
      order.labour_cost,
      order.output_value,
      order.scrap_value,
      order.unit_cost,
    ],
    ["4", "303.2", "98", "401.2", "0", "100.3"],
    "the order's figures",
  );
  equal(order.operations.map((o) => o.status), ["done", "pending"], "operation 20 left pending");
  const last = order.history[order.history.length - 1];
  check(last?.action === "complete" && last.to_status === "completed", "history", last);
  equal(last?.details?.["unfinished_operations"], [20], "unfinished operations listed");

  const again = problem(
    await api.POST("/v1/production-orders/{order_id}/complete", { params: orderPath }),
    409,
  );
  if (again.code !== "invalid_transition") throw new Error(`not invalid_transition: ${again.code}`);
  // Narrowed by its code: only now do current_status and allowed_actions exist.
  equal([again.current_status, again.allowed_actions], ["completed", []], "the refusal");
  // @ts-expect-error a transition problem lists no `shortages`
  void again.shortages;

  // Not enough stock left for ten more: release refuses, listing what is short.
  const more = ok(
    await api.POST("/v1/production-orders", { body: { item_id: bike.id, quantity: "10" } }),
    201,
  );
  const short = problem(
    await api.POST("/v1/production-orders/{order_id}/release", {
      params: { path: { order_id: more.id } },
    }),
    409,
  );
  if (short.code !== "insufficient_stock") throw new Error(`not insufficient_stock: ${short.code}`);
  const frames = short.shortages.find((s) => s.item_id === frame.id);
  equal([frames?.required, frames?.available, frames?.shortage], ["10", "6", "4"], "frames short");
  // @ts-expect-error the field is `shortages`: a typo does not compile
  void short.shortage;

  const stock = ok(
    await api.GET("/v1/items/{item_id}/stock", { params: { path: { item_id: bike.id } } }),
    200,
  );
  equal(
    [stock.on_hand, stock.reserved, stock.average_cost, stock.value],
    ["4", "0", "100.3", "401.2"],
    "bicycles in stock",
  );
  const balances = ok(
    await api.GET("/v1/stock", { params: { query: { item_id: frame.id } } }),
    200,
  );
  check(balances.next_cursor === null, "one page");
  equal(balances.data.map((b) => b.on_hand), ["6"], "frames left");

  const ledger = ok(
    await api.GET("/v1/stock/movements", {
      params: { query: { production_order_id: order.id } },
    }),
    200,
  );
  equal(
    ledger.data.map((m) => [m.type, m.quantity, m.value]),
    [
      ["consumption", "-1", "-50"],
      ["consumption", "-2", "-25"],
      ["consumption", "-8", "-0.8"],
      ["output", "1", "100.3"],
      ["consumption", "-3", "-150"],
      ["consumption", "-6", "-75"],
      ["consumption", "-24", "-2.4"],
      ["output", "3", "300.9"],
    ],
    "the order's ledger",
  );

  const completed = ok(
    await api.GET("/v1/production-orders", {
      params: { query: { status: ["completed"], reference: "SHOP-1001" } },
    }),
    200,
  );
  equal(completed.data.map((o) => o.number), ["MO-000001"], "completed orders");

  // Every event, its data typed by its type.
  const events: Event[] = [];
  for (let after: string | undefined; ; ) {
    const page = ok(await api.GET("/v1/events", { params: { query: { after, limit: 500 } } }), 200);
    events.push(...page.data);
    if (page.next_cursor === null) break;
    after = page.next_cursor;
  }
  let finished = 0;
  let moved = 0;
  for (const event of events) {
    if (event.type === "production_order.completed") {
      finished += event.data.produced_quantity === "4" ? 1 : 0;
    } else if (event.type === "stock.changed") {
      moved += event.data.movements.length;
      // @ts-expect-error stock.changed carries balances and movements, not an order
      void event.data.produced_quantity;
    }
  }
  equal(finished, 1, "one completed event, with the order's output");
  equal(moved, 11, "stock events list every movement: 3 receipts, 6 issues, 2 outputs");

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `ts-client-check: the TypeScript client took 4 bicycles from parts to stock ` +
      `(100.3 each) and read ${events.length} typed events in ${seconds} s`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
