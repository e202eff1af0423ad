"""The ceiling's trace reader: a step is the request's one transaction, whatever the
guard did before it."""

import json
from pathlib import Path

import pytest
from bench import pgbench

LOOKUP = (
    "SELECT api_keys.id, api_keys.scope, api_keys.last_used_at \nFROM api_keys \n"
    "WHERE api_keys.token_hash = $1::VARCHAR AND api_keys.revoked_at IS NULL"
)
NOTE_USE = "UPDATE api_keys SET last_used_at=$1::TIMESTAMP WITH TIME ZONE WHERE api_keys.id = $2"


def _write(path: Path, prefix: str, steps: dict[str, list[list[str]]]) -> None:
    lines = []
    for name, transactions in steps.items():
        for statements in transactions:
            events = [{"event": "begin"}]
            events += [{"event": "sql", "sql": sql, "params": []} for sql in statements]
            events.append({"event": "commit"})
            for e in events:
                lines.append(json.dumps({**e, "request_id": f"{prefix}-{name}"}))
    path.write_text("\n".join(lines) + "\n")


def test_the_key_lookup_before_a_step_is_left_out(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    work = ["INSERT INTO production_orders (id) VALUES ($1)", "UPDATE stock_balances SET x = 1"]
    _write(
        trace,
        "t",
        {
            "create": [[LOOKUP, NOTE_USE], work],  # the cache had run out: a lookup first
            "release": [work],
            "start": [[LOOKUP], work],
            "complete": [work],
        },
    )
    lifecycle = pgbench.read_trace(trace, "t")
    assert [s.name for s in lifecycle.steps] == list(pgbench.STEPS)
    assert [len(s.events) for s in lifecycle.steps] == [2, 2, 2, 2]
    assert all("api_keys" not in e["sql"] for s in lifecycle.steps for e in s.events)


def test_two_transactions_of_the_request_itself_are_still_refused(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    work = ["UPDATE production_orders SET status = 'released'"]
    steps = {name: [work] for name in pgbench.STEPS}
    steps["release"] = [work, work]
    _write(trace, "t", steps)
    with pytest.raises(pgbench.TraceError, match="more than one transaction"):
        pgbench.read_trace(trace, "t")
