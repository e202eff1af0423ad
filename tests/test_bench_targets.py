"""Every bench target runs to its end, small, so that none can rot unnoticed again.

Each is started as its make target starts it (``python -m bench.X`` from the
repository's root, this checkout's ``src/`` on ``PYTHONPATH``) with tiny sizes and
durations, against the test suite's PostgreSQL server (``TEST_DATABASE_URL``, see
conftest.py); each creates its own database there and drops it at the end. They are
all started at once, when the first of these tests begins (they spend much of their
time waiting for servers to boot), and each test then waits for its own.

What is asserted: exit status 0, every figure line printed, the invariants each bench
checks reported as holding, and no database left behind. Never a speed: the figures
of runs this small mean nothing.

``make bench`` needs wrk and pgbench (the target installs them); without them its
test is skipped, and fails under ``CI=true``. ``make soak``'s test is skipped unless
``BENCH_TEST_SOAK=1``: its kill and restart take some 25 s more on 2 cores, more than
this file may add to the suite.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from bench import compare, report
from sqlalchemy.engine import make_url

from tests.conftest import postgres_server_url

ROOT = Path(__file__).resolve().parents[1]
# A guard against a hang, not a speed: together they take some 30 s on 2 cores.
TIMEOUT = 300
SOAK = os.environ.get("BENCH_TEST_SOAK") == "1"


@dataclass(frozen=True)
class Target:
    module: str
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    tools: tuple[str, ...] = ()
    # Each must match a line of the standard output.
    printed: tuple[str, ...] = ()


def _options(**values: object) -> tuple[str, ...]:
    """Command-line options from keywords: first_kill=1 is --first-kill 1, True a flag."""
    args: list[str] = []
    for name, value in values.items():
        args.append("--" + name.replace("_", "-"))
        if value is not True:
            args.append(str(value))
    return tuple(args)


TARGETS = {
    "bench": Target(
        "bench.run",
        env={
            "BENCH_WORKERS": "1",
            "BENCH_CLIENTS": "2",
            "BENCH_DURATION": "1",
            "BENCH_WARMUP": "0",
            "BENCH_RATE": "50",
            "BENCH_LIST_ORDERS": "200",
        },
        tools=("wrk", "pgbench"),
        printed=(
            r"^prodorder-api benchmark, .* CPUs",
            r"^lifecycle: own product & parts, per request +2 ",
            r"^  same, per lifecycle \(4 requests\)",
            r"^  ceiling: pgbench, same SQL, per lifecycle +2 ",
            r"^  floor: same SQL, no application code +2 ",
            r"^  floor: one PL/pgSQL call per request +2 ",
            r"^  ceiling: pgbench, the same calls +2 ",
            r"^contention: one shared part, per request +2 ",
            r"^read: GET one order \(wrk\) +2 ",
            r"^  same, open loop at 50/s",
            r"^  ceiling: no-op JSON route \(wrk\) +2 ",
            r"^list: \?status=released, \d+ orders +2 ",
            r"^CPU ms per unit of work",
            r"^lifecycle: HTTP ÷ pgbench ceiling +\d+ %",
            r"^SQL statements per lifecycle +\d+ ",
            r"^lifecycle +\d+ +\d+ +\d+ +\d+$",  # the statements table's total
            r"^  after lifecycle +ok$",
            r"^  after contention +ok$",
            r"^  final +ok$",
            r"^  lifecycle +\d+ orders made, \d+ completed",
        ),
    ),
    "bench-mrp": Target(
        "bench.mrp_bench",
        _options(items=30, runs=1),
        printed=(
            r"^30 items over 10 levels, \d+ BOM lines",
            r"^  proposals: \d+ \(\d+ purchases\), [\d,]+ pegs",
            r"^  service run \+ commit: .* s wall .* \d+ SQL statements$",
            r"^    last run: load [\d.]+ s, MRP in memory [\d.]+ s",
            r"^  HTTP POST …/run, first: .* SQL statements",
            r"^  HTTP POST …/run, second: .* SQL statements",
            r"^  invariants after the runs: ok$",
            r"^SQL statements per run do not grow with the items",
        ),
    ),
    "bench-reports": Target(
        "bench.reports_bench",
        _options(movements=1000, open_orders=20, calls=1),
        printed=(
            r"^database prodorder_bench_\w+: .* 1000 stock_movements, \d+ events",
            r"^endpoint +rows +p50 ms +p95 ms",
            *(
                rf"^{re.escape(name)} +\d+ +[\d.]+ +[\d.]+"
                for name in (
                    "shortages",
                    "stock-valuation",
                    "consumption, 180 days",
                    "consumption, 30 days",
                    "production, 180 days",
                    "capacity",
                    "lots, 500 per page",
                    "lots of one item",
                    "one lot",
                    "trace forward, lot in most orders",
                    "trace forward, two levels",
                    "trace backward, finished lot",
                )
            ),
            r"^every p95 under 200 ms: (yes|NO)$",
        ),
    ),
    "bench-metadata": Target(
        "bench.metadata_bench",
        _options(orders=3000, calls=5, warmup=2),
        printed=(
            r"^seeded 3000 orders",
            r"^selective: one customer +\d+ +\d+ +[\d.]+",
            r"^p99 ms over 3000 orders, by phase",
            r"^  selective: one customer( +[\d.]+){4}$",
        ),
    ),
    "soak": Target(
        "bench.soak",
        # One kill a second into 3 s of load (the load lasts until it is back).
        _options(duration=3, first_kill=1, kill_every=30, min_tail=1, both_up=1)
        + _options(workers=1, lifecycles=2, contenders=3, replay_sample=10, require_outbox=True),
        printed=(
            r"^#1 at +[\d.]+s +kill -9 instance",
            r"^=== totals \(the load\) ===",
            r"^\[  ok   \] ledger == balances",
            r"^\[  ok   \] outbox: every order has its production_order.created event",
            r"^\[  ok   \] tests/invariants.py \(the suite's whole-database checks\) agrees",
            r"^soak: PASS; \d+ checks, 0 skipped$",
        ),
    ),
}
DATABASE = re.compile(r"\bprodorder_(?:bench|mrp_bench|soak)_[0-9a-f]{8,12}\b")


@dataclass
class Started:
    target: Target
    process: subprocess.Popen[bytes] | None  # None: not started (``missing`` says why)
    stdout: Path
    stderr: Path
    out: Path  # BENCH_OUT
    missing: str = ""  # why it cannot run here
    skipped: str = ""  # why it is not run

    def finish(self) -> tuple[int, str, str]:
        assert self.process is not None
        try:
            code = self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            stop(self.process)
            pytest.fail(f"{self.target.module} still running after {TIMEOUT} s\n{self.tail()}")
        return code, self.stdout.read_text(), self.stderr.read_text()

    def tail(self, lines: int = 60) -> str:
        text = self.stdout.read_text() + "\n--- stderr ---\n" + self.stderr.read_text()
        return "\n".join(text.splitlines()[-lines:])


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT first: a bench's ``finally`` stops its servers and drops its database."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _selected(request: pytest.FixtureRequest) -> list[str]:
    names = set()
    for item in request.session.items:
        if getattr(item, "module", None) is not request.module:
            continue
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "target" in callspec.params:
            names.add(callspec.params["target"])
        if item.name.startswith("test_the_baseline_comparison"):
            names.add("bench")
    return [n for n in TARGETS if n in names]


@pytest.fixture(scope="module")
def server() -> str:
    return postgres_server_url()


@pytest.fixture(scope="module")
def started(
    request: pytest.FixtureRequest, server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Started]]:
    runs: dict[str, Started] = {}
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    base_env |= {"PYTHONPATH": str(ROOT / "src"), "TEST_DATABASE_URL": server}
    try:
        for name in _selected(request):
            target = TARGETS[name]
            work = tmp_path_factory.mktemp(name)
            run = Started(target, None, work / "stdout.txt", work / "stderr.txt", work / "out")
            runs[name] = run
            if name == "soak" and not SOAK:
                run.skipped = "set BENCH_TEST_SOAK=1 to run it (about 25 s more)"
                continue
            missing = [tool for tool in target.tools if shutil.which(tool) is None]
            if missing:
                them = "it" if len(missing) == 1 else "them"
                run.missing = f"{' and '.join(missing)} not installed (make bench installs {them})"
                continue
            env = base_env | target.env | {"BENCH_OUT": str(run.out), "BENCH_DATABASE_URL": server}
            args = [sys.executable, "-m", target.module, *target.args]
            if target.module == "bench.soak":
                args += ["--server", server]
            with run.stdout.open("wb") as stdout, run.stderr.open("wb") as stderr:
                run.process = subprocess.Popen(
                    args, cwd=ROOT, env=env, stdout=stdout, stderr=stderr
                )
        yield runs
    finally:
        for run in runs.values():
            if run.process is not None:
                stop(run.process)


def _finished(started: dict[str, Started], name: str) -> tuple[Started, int, str, str]:
    run = started[name]
    if run.skipped:
        pytest.skip(f"{run.target.module}: {run.skipped}")
    if run.missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {run.target.module} cannot run: {run.missing}")
        pytest.skip(f"{run.target.module}: {run.missing}")
    return run, *run.finish()


async def _databases_left(server: str, names: set[str]) -> list[str]:
    dsn = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname = ANY($1)", names)
    finally:
        await conn.close()
    return [r["datname"] for r in rows]


@pytest.mark.parametrize("target", list(TARGETS))
async def test_a_bench_target_runs_to_its_end(
    target: str, started: dict[str, Started], server: str
) -> None:
    run, code, stdout, stderr = _finished(started, target)
    assert code == 0, f"{run.target.module} exited {code}:\n{run.tail()}"
    lines = stdout.splitlines()
    missing = [p for p in run.target.printed if not any(re.search(p, line) for line in lines)]
    assert not missing, f"not printed: {missing}\n{run.tail()}"
    names = set(DATABASE.findall(stdout + stderr))
    assert not await _databases_left(server, names), "a bench left its database behind"


def test_the_baseline_comparison_alternates_runs_and_prints_both_medians(
    started: dict[str, Started], tmp_path: Path
) -> None:
    """``make bench BENCH_BASELINE=…`` without its two real runs a round: the results of
    the small ``make bench`` above stand in for every run, on a worktree of HEAD."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    run, code, _, _ = _finished(started, "bench")
    assert code == 0, run.tail()
    results: dict[str, Any] = json.loads((run.out / "latest.json").read_text())
    seen: list[tuple[str, int, bool]] = []
    trees: list[Path] = []

    def fake(side: compare.Side, round_: int, out: Path) -> compare.Run:
        seen.append((side.name, round_, (side.src / "prodorder_api" / "app.py").is_file()))
        if side.name == "baseline":
            trees.append(side.src.parent)
        return compare.Run(side.name, round_, 0, results, out)

    text, status = compare.compare("HEAD", 2, tmp_path, fake)
    assert status == 0
    assert seen == [("baseline", 1, True), ("head", 1, True), ("baseline", 2, True),
                    ("head", 2, True)]  # fmt: skip
    assert trees[0] != ROOT and not trees[0].exists(), "the baseline's worktree is left"
    listed = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True)
    assert str(trees[0]) not in listed.stdout
    figures = report.figures(results)
    assert len(figures) > 30
    for name, better, value in figures:
        row = next(line for line in text.splitlines() if line.startswith(name + " "))
        assert better in row
        if value not in (None, 0.0, float("inf")):
            assert row.rstrip().endswith("1.00×"), row
    assert "  1-baseline  exit 0, invariants ok" in text
    assert "  2-head      exit 0, invariants ok" in text


def test_a_comparison_refuses_a_commit_that_does_not_exist(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    with pytest.raises(SystemExit, match="names no commit"):
        compare.compare("no-such-commit-" + "0" * 8, 2, tmp_path, lambda *a: pytest.fail())
