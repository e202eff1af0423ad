"""The tables `make bench` prints."""

import math
from typing import Any

INVENTREE_LIFECYCLES = 1.2  # per second, measured on this machine kind (issue #9)


def _num(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if value == math.inf:
        return "late"
    return f"{value:,.{digits}f}"


def _ms(value: float) -> str:
    return "overloaded" if value == math.inf else f"{_num(value, 2)} ms"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _row(cells: list[str], widths: list[int]) -> str:
    first, *rest = cells
    return f"{first:<{widths[0]}}" + "".join(
        f"{c:>{w}}" for c, w in zip(rest, widths[1:], strict=True)
    )


WIDTHS = [44, 7, 14, 12, 10, 10, 8, 16]
HEAD = ["scenario", "conns", "lifecycles/s", "requests/s", "p50 ms", "p99 ms", "errors",
        "CPU svc/pg/oth"]  # fmt: skip


def _cpu(cpu: dict[str, float] | None) -> str:
    """Share of the machine's CPUs used by the service, postgres and everything else."""
    if not cpu or not cpu.get("wall"):
        return "—"
    capacity = cpu["wall"] * cpu["cpus"]
    share = [100 * cpu[k] / capacity for k in ("service", "postgres", "other")]
    return "/".join(f"{x:.0f}" for x in share) + " %"


def _errors(statuses: dict[str, int]) -> str:
    return str(sum(n for k, n in statuses.items() if not k.split(" ", 1)[1].startswith("2")))


def _http_row(label: str, http: dict[str, Any]) -> list[str]:
    life = http["latency"].get("lifecycle", {})
    requests = http["requests"]
    return [label, str(http["clients"]), _num(life.get("rate")), _num(requests["rate"]),
            _num(requests["p50_ms"]), _num(requests["p99_ms"]), _errors(http["statuses"]),
            _cpu(http["cpu"])]  # fmt: skip


def _pgbench_row(label: str, ceiling: dict[str, Any]) -> list[str]:
    c = ceiling["lifecycle"]
    return [label, str(ceiling["clients"]), _num(c["rate"]), _num(4 * c["rate"]),
            _num(c["p50_ms"]), _num(c["p99_ms"]), str(len(ceiling["failures"])),
            _cpu(ceiling["cpu"])]  # fmt: skip


def _write_rows(name: str, label: str, data: dict[str, Any]) -> list[list[str]]:
    http = data["http"]
    life = http["latency"].get("lifecycle", {})
    rows = [
        _http_row(f"{label}, per request", http),
        ["  same, per lifecycle (4 requests)", "", "", "",
         _num(life.get("p50_ms")), _num(life.get("p99_ms")), "", ""],
    ]  # fmt: skip
    if data.get("ceiling"):
        rows.append(_pgbench_row("  ceiling: pgbench, same SQL, per lifecycle", data["ceiling"]))
    if data.get("floor"):
        rows.append(_http_row("  floor: same SQL, no application code", data["floor"]))
    if data.get("functions"):
        functions = data["functions"]
        rows.append(_http_row("  floor: one PL/pgSQL call per request", functions["http"]))
        rows.append(_pgbench_row("  ceiling: pgbench, the same calls", functions["ceiling"]))
    return rows


def _get_row(label: str, result: dict[str, Any], conns: int, paced: bool = False) -> list[str]:
    if paced:
        lat = result["latency"]["get"]
        errors = _errors(result["statuses"])
    else:
        lat, errors = result, str(result["errors"])
    return [label, str(conns), "", _num(lat["rate"]), _num(lat["p50_ms"], 2),
            _num(lat["p99_ms"], 2), errors, _cpu(result.get("cpu"))]  # fmt: skip


def results_table(r: dict[str, Any]) -> list[str]:
    clients = r["meta"]["clients"]
    rate = r["meta"]["rate"]
    rows: list[list[str]] = []
    rows += _write_rows("lifecycle", "lifecycle: own product & parts", r["lifecycle"])
    rows += _write_rows("contention", "contention: one shared part", r["contention"])
    read, noop = r["read"], r["noop"]
    rows.append(_get_row("read: GET one order (wrk)", read["wrk"], clients))
    late = f", {read['paced']['late']} late" if read["paced"]["late"] else ""
    rows.append(_get_row(f"  same, open loop at {rate:,}/s{late}", read["paced"], clients, True))
    rows.append(_get_row("  ceiling: no-op JSON route (wrk)", noop["wrk"], clients))
    rows.append(_get_row(f"  no-op, open loop at {rate:,}/s", noop["paced"], clients, True))
    orders = r["list"]["orders"]
    rows.append(_get_row(f"list: ?status=released, {orders:,} orders", r["list"]["wrk"], clients))
    lines = [_row(HEAD, WIDTHS), "-" * sum(WIDTHS)]
    for row in rows:
        lines.append(_row(row, WIDTHS))
    return lines


def _lifecycles(http: dict[str, Any] | None) -> float:
    return float(http["latency"].get("lifecycle", {}).get("rate", 0.0)) if http else 0.0


def _floor_measures(life: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """How far the SQL alone, sent from Python, gets towards the ceiling."""
    ceiling = life["ceiling"]["lifecycle"]["rate"]
    measures: list[tuple[str, str, str, bool | None]] = []
    if life.get("floor"):
        floor = _lifecycles(life["floor"])
        measures.append(("lifecycle: floor ÷ pgbench ceiling", _pct(_ratio(floor, ceiling)),
                         "reported", None))  # fmt: skip
        measures.append(("lifecycle: HTTP ÷ floor", _pct(_ratio(_lifecycles(life["http"]), floor)),
                         "reported", None))  # fmt: skip
    if life.get("functions"):
        functions = life["functions"]
        ratio = _ratio(_lifecycles(functions["http"]), functions["ceiling"]["lifecycle"]["rate"])
        measures.append(("lifecycle: PL/pgSQL floor ÷ its ceiling", _pct(ratio), "reported", None))
    return measures


def targets_table(r: dict[str, Any]) -> list[str]:
    life, cont = r["lifecycle"], r["contention"]
    life_rate = life["http"]["latency"].get("lifecycle", {}).get("rate", 0.0)
    cont_rate = cont["http"]["latency"].get("lifecycle", {}).get("rate", 0.0)
    statements = sum(s[1] for s in life["statements"])
    read_ratio = _ratio(r["read"]["wrk"]["rate"], r["noop"]["wrk"]["rate"])
    list_ratio = _ratio(r["list"]["wrk"]["rate"], r["noop"]["wrk"]["rate"])
    paced_p99 = r["read"]["paced"]["latency"]["get"]["p99_ms"]
    list_p99 = r["list"]["wrk"]["p99_ms"]
    unexpected_contention = sum(
        n
        for k, n in cont["http"]["statuses"].items()
        if not k.split(" ", 1)[1].startswith("2") and k.split(" ", 1)[1] != "409"
    )
    life_ratio = _ratio(life_rate, life["ceiling"]["lifecycle"]["rate"])
    cont_ratio = _ratio(cont_rate, cont["ceiling"]["lifecycle"]["rate"])
    measures = [
        ("lifecycle: HTTP ÷ pgbench ceiling", _pct(life_ratio), "≥ 60 %",
         life_ratio is not None and life_ratio >= 0.6),
        ("lifecycle: × InvenTree's 1.2 lifecycles/s", f"{life_rate / INVENTREE_LIFECYCLES:.0f}×",
         "≥ 100×", life_rate >= 100 * INVENTREE_LIFECYCLES),
        ("SQL statements per lifecycle", str(statements), "≤ 30", statements <= 30),
        *_floor_measures(life),
        ("contention: HTTP ÷ pgbench ceiling", _pct(cont_ratio), "reported", None),
        ("contention: errors other than a clean 409", str(unexpected_contention), "0",
         unexpected_contention == 0),
        ("read: HTTP ÷ no-op route", _pct(read_ratio), "≥ 25 %",
         read_ratio is not None and read_ratio >= 0.25),
        (f"read: p99 at {r['meta']['rate']:,} requests/s", _ms(paced_p99),
         "< 10 ms", paced_p99 < 10),
        ("list: HTTP ÷ no-op route", _pct(list_ratio), "reported", None),
        (f"list: p99 with {r['list']['orders']:,} orders", _ms(list_p99),
         "< 50 ms", list_p99 < 50),
    ]  # fmt: skip
    widths = [46, 12, 12, 8]
    lines = [_row(["measure", "this run", "target", ""], widths), "-" * sum(widths)]
    for name, value, target, met in measures:
        mark = "" if met is None else ("met" if met else "NOT met")
        lines.append(_row([name, value, target, mark], widths))
    return lines


def statements_table(r: dict[str, Any]) -> list[str]:
    widths = [12, 14, 14, 14, 14]
    lines = [
        _row(["", "lifecycle", "", "contention", ""], widths),
        _row(["step", "statements", "round trips", "statements", "round trips"], widths),
        "-" * sum(widths),
    ]
    life, cont = r["lifecycle"]["statements"], r["contention"]["statements"]
    for a, b in zip(life, cont, strict=True):
        lines.append(_row([a[0], str(a[1]), str(a[2]), str(b[1]), str(b[2])], widths))
    totals = [sum(x[i] for x in life) for i in (1, 2)] + [sum(x[i] for x in cont) for i in (1, 2)]
    lines.append(_row(["lifecycle", *map(str, totals)], widths))
    return lines


def _per(cpu: dict[str, float], group: str, count: float) -> str:
    return _num(1000 * cpu[group] / count, 2) if count else "—"


def cost_table(r: dict[str, Any]) -> list[str]:
    """CPU milliseconds per unit of work: what a noisy machine changes least."""
    widths = [44, 16, 16, 16]
    lines = [_row(["CPU ms per unit of work", "unit", "service", "postgres"], widths)]
    lines.append("-" * sum(widths))
    for name in ("lifecycle", "contention"):
        http = r[name]["http"]
        done = http["statuses"].get("lifecycle 200", 0)
        lines.append(_row([f"{name}: HTTP", "lifecycle", _per(http["cpu"], "service", done),
                           _per(http["cpu"], "postgres", done)], widths))  # fmt: skip
        ceiling = r[name]["ceiling"]
        runs = ceiling["lifecycle"]["rate"] * r["meta"]["duration"]
        lines.append(_row([f"{name}: pgbench, same SQL", "lifecycle", "",
                           _per(ceiling["cpu"], "postgres", runs)], widths))  # fmt: skip
    life = r["lifecycle"]
    floors = [("floor: same SQL", life.get("floor"), None)]
    if life.get("functions"):
        functions = life["functions"]
        floors.append(("floor: one PL/pgSQL call a request", functions["http"], None))
        floors.append(("pgbench, the same calls", None, functions["ceiling"]))
    for label, http, pgbench in floors:
        if http:
            done = http["statuses"].get("lifecycle 200", 0)
            cells = [_per(http["cpu"], "service", done), _per(http["cpu"], "postgres", done)]
            lines.append(_row([f"lifecycle {label}", "lifecycle", *cells], widths))
        if pgbench:
            runs = pgbench["lifecycle"]["rate"] * r["meta"]["duration"]
            lines.append(_row([f"lifecycle {label}", "lifecycle", "",
                               _per(pgbench["cpu"], "postgres", runs)], widths))  # fmt: skip
    for label, result in (
        ("read: GET one order (wrk)", r["read"]["wrk"]),
        ("no-op JSON route (wrk)", r["noop"]["wrk"]),
        ("list: ?status=released", r["list"]["wrk"]),
    ):
        count = result["count"]
        lines.append(_row([label, "request", _per(result["cpu"], "service", count),
                           _per(result["cpu"], "postgres", count)], widths))  # fmt: skip
    return lines


def render(r: dict[str, Any]) -> str:
    m = r["meta"]
    lines = [
        f"prodorder-api benchmark, {m['at']}: {m['cpus']} CPUs, Python {m['python']}, "
        f"PostgreSQL {m['server_version'].split()[0]} (fsync {m['fsync']}, "
        f"synchronous_commit {m['synchronous_commit']})",
        f"{m['workers']} uvicorn workers, {m['clients']} clients, {m['duration']:g} s per "
        f"scenario after {m['warmup']:g} s warm-up",
    ]
    if m["busy_before"] > 0.2:
        lines.append(
            f"WARNING: the machine was {100 * m['busy_before']:.0f} % busy before the run "
            f"started; other load skews every figure."
        )
    needed = m["clients"] + 2 * m["workers"] + 4
    if m.get("connections_free", needed) < needed:
        lines.append(
            f"WARNING: only {m['connections_free']} PostgreSQL connections were free at the "
            f"start (about {needed} needed); others' connections may starve the service."
        )
    lines += ["", *results_table(r), "", *cost_table(r), "", *targets_table(r), ""]
    lines += ["SQL per lifecycle (the traced one; BEGIN and COMMIT count as round trips)"]
    lines += [*statements_table(r), ""]
    lines.append("Invariants")
    for name, problems in r["problems"].items():
        verdict = "ok" if not problems else f"{len(problems)} BROKEN"
        lines.append(f"  {name:<22} {verdict}")
        lines += [f"    {p}" for p in problems[:20]]
    for life in ("lifecycle", "contention"):
        http = r[life]["http"]
        lines.append(
            f"  {life:<22} {http['orders']} orders made, {http['completed']} completed; "
            f"driver CPU {100 * http['driver_cpu']:.1f} % of a core"
        )
    if r["unexpected"]:
        lines += ["", "UNEXPECTED ERRORS"] + [f"  {u}" for u in r["unexpected"]]
    return "\n".join(lines) + "\n"


def row(cells: list[str], widths: list[int]) -> str:
    """One table row: the first cell left-aligned, the rest right-aligned."""
    return _row(cells, widths)


def _cpu_ms(cpu: dict[str, float] | None, group: str, count: float) -> float | None:
    return 1000 * cpu[group] / count if cpu and count else None


def figures(r: dict[str, Any]) -> list[tuple[str, str, float | None]]:
    """Every figure of a run, by name, with the direction that is better ("higher" or
    "lower"): what `make bench BENCH_BASELINE=…` compares (bench/compare.py)."""
    out: list[tuple[str, str, float | None]] = []

    def add(name: str, better: str, value: float | None) -> None:
        out.append((name, better, None if value is None else float(value)))

    for name in ("lifecycle", "contention"):
        data = r.get(name) or {}
        if http := data.get("http"):
            life, requests = http["latency"].get("lifecycle", {}), http["requests"]
            done = http["statuses"].get("lifecycle 200", 0)
            add(f"{name}: lifecycles/s", "higher", life.get("rate"))
            add(f"{name}: requests/s", "higher", requests["rate"])
            add(f"{name}: request p50 ms", "lower", requests["p50_ms"])
            add(f"{name}: request p99 ms", "lower", requests["p99_ms"])
            add(f"{name}: lifecycle p50 ms", "lower", life.get("p50_ms"))
            add(f"{name}: lifecycle p99 ms", "lower", life.get("p99_ms"))
            add(f"{name}: service CPU ms per lifecycle", "lower",
                _cpu_ms(http["cpu"], "service", done))  # fmt: skip
            add(f"{name}: postgres CPU ms per lifecycle", "lower",
                _cpu_ms(http["cpu"], "postgres", done))  # fmt: skip
        if data.get("statements"):
            add(f"{name}: SQL statements per lifecycle", "lower",
                sum(s[1] for s in data["statements"]))  # fmt: skip
            add(f"{name}: round trips per lifecycle", "lower",
                sum(s[2] for s in data["statements"]))  # fmt: skip
        if data.get("ceiling"):
            add(f"{name}: pgbench ceiling, lifecycles/s", "higher",
                data["ceiling"]["lifecycle"]["rate"])  # fmt: skip
    life = r.get("lifecycle") or {}
    if life.get("floor"):
        add("lifecycle floor, same SQL: lifecycles/s", "higher", _lifecycles(life["floor"]))
    if functions := life.get("functions"):
        add("lifecycle floor, PL/pgSQL: lifecycles/s", "higher", _lifecycles(functions["http"]))
        add("lifecycle PL/pgSQL ceiling: lifecycles/s", "higher",
            functions["ceiling"]["lifecycle"]["rate"])  # fmt: skip
    for key, label in (
        ("read", "read: GET one order"),
        ("list", "list: ?status=released"),
        ("noop", "no-op route (same code)"),
    ):
        if not (part := r.get(key)):
            continue
        wrk = part["wrk"]
        add(f"{label}: requests/s", "higher", wrk["rate"])
        add(f"{label}: p50 ms", "lower", wrk["p50_ms"])
        add(f"{label}: p99 ms", "lower", wrk["p99_ms"])
        add(f"{label}: service CPU ms per request", "lower",
            _cpu_ms(wrk.get("cpu"), "service", wrk["count"]))  # fmt: skip
        if paced := part.get("paced"):
            latency = paced["latency"]["get"]
            add(f"{label}: open loop p50 ms", "lower", latency["p50_ms"])
            add(f"{label}: open loop p99 ms", "lower", latency["p99_ms"])
    return out
