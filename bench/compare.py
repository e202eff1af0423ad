"""`make bench BENCH_BASELINE=<commit>`: make bench's scenarios on a baseline commit and
on this checkout, alternated, and the medians of every figure side by side.

How the runs alternate, and why a whole run at a time: see bench/run.py's docstring.
Each run is ``python -m bench.run`` in a process of its own, on a fresh database, with
this checkout's harness (bench/, tests/invariants.py) and one side's application:
``PYTHONPATH`` names the baseline worktree's ``src/`` (its migrations come with it,
``settings.migrations_dir``) or this checkout's. Each run's report and JSON are kept
in ``bench/out/compare/<time>-<pid>/<round>-<side>/`` (a directory of its own for
each comparison: two at once must not share one); the comparison is printed and
saved as ``bench/out/compare-latest.txt``.
"""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.procs import ROOT

DEFAULT_ROUNDS = 2


@dataclass(frozen=True)
class Side:
    name: str  # "baseline" or "head"
    label: str  # what it is, for the header
    src: Path  # its application code: PYTHONPATH of its runs


@dataclass
class Run:
    side: str
    round: int
    code: int  # bench.run's exit status: 0, 1 (broken invariant, unexpected error), 2
    results: dict[str, Any] | None  # its latest.json; None when it wrote none
    out: Path


Runner = Callable[[Side, int, Path], Run]


def say(message: str) -> None:
    print(f"compare  {message}", file=sys.stderr, flush=True)


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def resolve(commit: str) -> str:
    """The full id of ``commit`` (any name git knows), or SystemExit."""
    try:
        return _git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")
    except subprocess.CalledProcessError:
        raise SystemExit(f"bench: BENCH_BASELINE={commit!r} names no commit here") from None


def head_label() -> str:
    """HEAD's short id, and whether the application code has uncommitted changes (they
    are measured: the head side runs this checkout's src/ as it is)."""
    label = _git("rev-parse", "--short", "HEAD")
    if _git("status", "--porcelain", "--", "src", "migrations"):
        label += " + uncommitted changes in src/ or migrations/"
    return label


@contextmanager
def worktree(commit: str) -> Iterator[Path]:
    """A detached git worktree of ``commit`` in a new temporary directory; removed (with
    the directory) however the block ends."""
    parent = Path(tempfile.mkdtemp(prefix="prodorder-baseline-"))
    tree = parent / "tree"
    try:
        _git("worktree", "add", "--quiet", "--detach", str(tree), commit)
        yield tree
    finally:
        if tree.exists():
            removed = subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            if removed.returncode != 0:
                say(f"could not remove the worktree {tree}: {removed.stderr.strip()}")
        shutil.rmtree(parent, ignore_errors=True)


def run_once(side: Side, round_: int, out: Path) -> Run:
    """One ``python -m bench.run`` with ``side``'s application code; its report goes
    to ``out/report.txt``, its progress to our stderr."""
    out.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("BENCH_BASELINE", "BENCH_ROUNDS")}
    env |= {"PYTHONPATH": str(side.src), "BENCH_OUT": str(out)}
    env["BENCH_LABEL"] = f"{side.name} {round_}"
    with (out / "report.txt").open("w") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.run"], cwd=ROOT, env=env, stdout=stdout
        )
    try:
        code = process.wait()
    except KeyboardInterrupt:
        _let_finish(process)
        raise
    path = out / "latest.json"
    results = json.loads(path.read_text()) if path.exists() else None
    return Run(side.name, round_, code, results, out)


def _let_finish(process: subprocess.Popen[bytes]) -> None:
    """After Ctrl-C: the run got it too, and stops its servers and drops its database
    (a second SIGINT would cut that short); it gets one only if it is still running a
    minute later, and is killed half a minute after that."""
    for signal_to_send in (None, signal.SIGINT, signal.SIGKILL):
        if signal_to_send is not None:
            process.send_signal(signal_to_send)
        try:
            process.wait(timeout=60 if signal_to_send is None else 30)
            return
        except subprocess.TimeoutExpired:
            continue


def compare(commit: str, rounds: int, out: Path, runner: Runner = run_once) -> tuple[str, int]:
    """The comparison's text, and 0 when every run exited 0 (else 1)."""
    if rounds < 1:
        raise SystemExit("bench: BENCH_ROUNDS must be at least 1")
    full = resolve(commit)
    head = head_label()
    runs: list[Run] = []
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    directory = out / "compare" / f"{stamp}-{os.getpid()}"
    with worktree(full) as tree:
        say(f"baseline {commit} ({full[:10]}) in {tree}; head {head}; {rounds} round(s)")
        sides = [
            Side("baseline", f"{commit} ({full[:10]})", tree / "src"),
            Side("head", head, ROOT / "src"),
        ]
        for round_ in range(1, rounds + 1):
            for side in sides:  # baseline, head, baseline, head, …
                say(f"round {round_} of {rounds}: {side.name} ({side.label})")
                run = runner(side, round_, directory / f"{round_}-{side.name}")
                say(f"round {round_} of {rounds}: {side.name} exited {run.code}")
                runs.append(run)
    text = render(sides, runs, rounds)
    return text, 0 if all(r.code == 0 for r in runs) else 1


def main(commit: str, rounds: int, out: Path) -> int:
    text, code = compare(commit, rounds, out)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (out / "compare-latest.txt").write_text(text)
    (out / f"compare-{stamp}.txt").write_text(text)
    return code


# --- the table -------------------------------------------------------------------------


def _value(value: float | None) -> str:
    if value is None:
        return "—"
    if value == float("inf"):
        return "overloaded"
    digits = 2 if abs(value) < 10 else 1 if abs(value) < 1000 else 0
    return f"{value:,.{digits}f}"


def _ratio(head: float | None, baseline: float | None) -> str:
    if head is None or baseline is None or baseline == 0 or float("inf") in (head, baseline):
        return "—"
    return f"{head / baseline:.2f}×"


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def medians(runs: list[Run], side: str) -> dict[str, float | None]:
    """Per figure name, the median over ``side``'s runs that have it."""
    values: dict[str, list[float | None]] = {}
    for run in runs:
        if run.side == side and run.results is not None:
            for name, _, value in report.figures(run.results):
                values.setdefault(name, []).append(value)
    return {name: _median(v) for name, v in values.items()}


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _verdict(run: Run) -> str:
    if run.results is None:
        return f"exit {run.code}, no results (see the progress above)"
    broken = sum(len(p) for p in run.results["problems"].values())
    unexpected = len(run.results["unexpected"])
    parts = [f"exit {run.code}", "invariants ok" if not broken else f"{broken} invariants BROKEN"]
    if unexpected:
        parts.append(f"{unexpected} unexpected errors")
    if (busy := run.results["meta"].get("busy_before", 0)) > 0.2:
        parts.append(f"the machine {100 * busy:.0f} % busy at its start")
    return ", ".join(parts)


def render(sides: list[Side], runs: list[Run], rounds: int) -> str:
    baseline, head = medians(runs, "baseline"), medians(runs, "head")
    better: dict[str, str] = {}
    for run in runs:  # every figure's name in a run's order, the first run that has it
        if run.results is not None:
            for name, direction, _ in report.figures(run.results):
                better.setdefault(name, direction)
    first = next((r.results for r in runs if r.results is not None), None)
    lines = [
        f"prodorder-api benchmark: baseline {sides[0].label} against head {sides[1].label}",
        f"{rounds} round(s), each a whole run on the baseline then on head, every run on a "
        f"fresh database; medians of {rounds} run(s) a side",
    ]
    if first is not None:
        m = first["meta"]
        lines.append(
            f"{m['cpus']} CPUs, {m['workers']} uvicorn workers, {m['clients']} clients, "
            f"{m['duration']:g} s per scenario after {m['warmup']:g} s warm-up; the no-op "
            f"route runs the same code on both sides, so its ratios are the noise"
        )
    widths = [54, 8, 12, 12, 14]
    lines += ["", report.row(["figure", "better", "baseline", "head", "head/baseline"], widths)]
    lines.append("-" * sum(widths))
    for name, direction in better.items():
        b, h = baseline.get(name), head.get(name)
        lines.append(report.row([name, direction, _value(b), _value(h), _ratio(h, b)], widths))
    lines += ["", "Runs (each one's report.txt and latest.json in its directory)"]
    lines += [f"  {r.round}-{r.side:<9} {_verdict(r)}; {_shown(r.out)}" for r in runs]
    return "\n".join(lines) + "\n"
