"""Run the docs' walkthrough pages against a live server and compare what they print.

The convention (docs/walkthroughs/*.md, explained in docs/walkthroughs/index.md):

- a ```` ```bash ```` block is run; a ```` ```sh ```` block is shown only (``make run``,
  things the reader does outside the walk);
- the fenced block right after a ``bash`` block (only blank lines between them), in
  any other language (``json``, ``http``, ``text``), is what that block prints. A
  ``bash`` block with no such block must print nothing;
- all the ``bash`` blocks of one page run in order in one bash session (``set -euo
  pipefail``), so shell variables carry from block to block, and nothing carries from
  page to page: each page creates what it uses. The session starts in an empty
  directory with ``API`` (the server's ``/v1``) and ``PRODORDER_KEY`` (an admin token)
  in its environment.

Before comparing, both sides are normalised: UUIDs become ``<id-N>`` numbered in the
order they first appear on the page (so an id that should repeat must repeat),
RFC 3339 timestamps ``<time>``, tokens and secrets ``<token>``/``<secret>``, order
numbers ``MO-<n>`` and ``PO-<n>``, cursors, durations and volatile HTTP headers likewise.

    python scripts/walkthrough.py [--update] [--postgres SERVER_URL] [PAGE ...]

runs the pages (default: all) on a fresh SQLite file (or a fresh PostgreSQL database
on SERVER_URL) and reports every difference; ``--update`` writes what the server
printed into the pages instead (then read the diff before committing it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from difflib import unified_diff
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.live_server import LiveServer, fresh_postgres_database, live_server

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "docs" / "walkthroughs"
PAGE_TIMEOUT_S = 60

# Pages that need their own server with these settings; the others share one server
# per database (they use their own SKUs and codes, so the order they run in is free).
OWN_SERVER: dict[str, dict[str, str]] = {
    "events-and-webhooks.md": {
        "PRODORDER_WEBHOOKS_ALLOW_PRIVATE": "true",
        "PRODORDER_DISPATCH_INTERVAL_S": "0.2",
    },
    "make-to-order.md": {
        "PRODORDER_WEBHOOKS_ALLOW_PRIVATE": "true",
        "PRODORDER_DISPATCH_INTERVAL_S": "0.2",
    },
}

FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Block:
    line: int  # 1-based line of the opening fence of the bash block
    code: str
    expected: str | None  # None: no output block follows
    output_lang: str | None
    output_span: tuple[int, int] | None  # lines [start, end) of the output block's body


def parse(text: str) -> list[Block]:
    """The page's ``bash`` blocks, each with the output block that follows it."""
    lines = text.split("\n")
    fences: list[tuple[str, int, int]] = []  # (lang, first body line, end fence line), 0-based
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match:
            j = i + 1
            while j < len(lines) and lines[j].rstrip() != "```":
                j += 1
            if j == len(lines):
                raise ValueError(f"line {i + 1}: a code block that never ends")
            fences.append((match.group(1), i + 1, j))
            i = j + 1
        else:
            i += 1
    blocks: list[Block] = []
    for index, (lang, start, end) in enumerate(fences):
        if lang != "bash":
            continue
        follower = fences[index + 1] if index + 1 < len(fences) else None
        between = lines[end + 1 : follower[1] - 1] if follower else []
        if follower and follower[0] != "bash" and all(not s.strip() for s in between):
            f_lang, f_start, f_end = follower
            blocks.append(
                Block(
                    start,
                    "\n".join(lines[start:end]),
                    "\n".join(lines[f_start:f_end]),
                    f_lang,
                    (f_start, f_end),
                )
            )
        else:
            blocks.append(Block(start, "\n".join(lines[start:end]), None, None, None))
    return blocks


def _script(blocks: list[Block], outdir: Path) -> str:
    parts = ["set -euo pipefail"]
    for n, block in enumerate(blocks):
        parts.append(f"printf '%s' {n} > '{outdir}/current'")
        parts.append("{")
        parts.append(block.code)
        parts.append(f"}} > '{outdir}/{n}.out' 2>&1")
    parts.append("printf done > '" + str(outdir) + "/current'")
    return "\n".join(parts) + "\n"


@dataclass
class PageRun:
    outputs: list[str]
    failure: str | None  # the block that failed and how, or None


def run_page(page: Path, server: LiveServer) -> PageRun:
    """All of a page's bash blocks in one bash session; each block's output."""
    blocks = parse(page.read_text())
    with tempfile.TemporaryDirectory(prefix="walk-") as tmp:
        work = Path(tmp) / "work"
        outdir = Path(tmp) / "out"
        work.mkdir()
        outdir.mkdir()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(work),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TZ": "UTC",
            "API": f"{server.base_url}/v1",
            "PRODORDER_KEY": server.token,
        }
        process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-c", _script(blocks, outdir)],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        failure = None
        try:
            stray, _ = process.communicate(timeout=PAGE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            stray = b""
            failure = f"timed out after {PAGE_TIMEOUT_S} s"
        finally:
            # the page's background jobs (a webhook receiver) go with it
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        outputs = [
            (outdir / f"{n}.out").read_text(errors="replace")
            if (outdir / f"{n}.out").exists()
            else ""
            for n in range(len(blocks))
        ]
        current = (outdir / "current").read_text() if (outdir / "current").exists() else "0"
        if failure is None and current != "done":
            block = blocks[int(current)]
            failure = (
                f"{page.name}:{block.line}: the block failed (exit {process.returncode}):\n"
                f"{block.code}\n--- it printed:\n{outputs[int(current)]}{stray.decode()}"
            )
        elif failure is None and stray.strip():
            failure = f"{page.name}: printed outside any block: {stray.decode()}"
        return PageRun(outputs, failure)


# --- normalisation ------------------------------------------------------------------

UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
SUBSTITUTIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})"), "<time>"),
    (re.compile(r"(?im)^(date|content-length|etag|ratelimit-reset): .*$"), r"\1: <…>"),
    (re.compile(r"(?im)^x-request-id: [0-9a-f]{32}$"), "x-request-id: <request-id>"),
    (re.compile(r"\bpo_[A-Za-z0-9_-]+"), "<token>"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]+"), "<secret>"),
    (re.compile(r"\bMO-\d+\b"), "MO-<n>"),
    (re.compile(r"\bPO-\d+\b"), "PO-<n>"),
    (re.compile(r"//127\.0\.0\.1:\d+"), "//127.0.0.1:<port>"),
    (re.compile(r'("next_cursor": )"[^"]*"'), r'\1"<cursor>"'),
    (re.compile(r'("duration_ms": )[\d.]+'), r"\1<ms>"),
]


class Normaliser:
    """One per page and side: numbers the UUIDs in the order they first appear."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def _id(self, match: re.Match[str]) -> str:
        return self.ids.setdefault(match.group(0), f"<id-{len(self.ids) + 1}>")

    def __call__(self, text: str) -> str:
        text = UUID.sub(self._id, text)
        for pattern, replacement in SUBSTITUTIONS:
            text = pattern.sub(replacement, text)
        lines = [line.rstrip() for line in text.strip("\n").split("\n")]
        return "\n".join(lines).strip("\n")


def differences(page: Path, blocks: list[Block], run: PageRun) -> list[str]:
    """One message per block whose output differs from the page (after normalising)."""
    expected_side, actual_side = Normaliser(), Normaliser()
    problems = []
    for block, actual in zip(blocks, run.outputs, strict=True):
        want = expected_side(block.expected or "")
        got = actual_side(actual)
        if want != got:
            diff = "\n".join(
                unified_diff(
                    want.split("\n"), got.split("\n"), "the page", "the server", lineterm=""
                )
            )
            problems.append(f"{page.name}:{block.line}:\n{block.code}\n{diff}")
    return problems


# --- update -------------------------------------------------------------------------


def _language(output: str) -> str:
    if re.match(r"HTTP/\d", output):
        return "http"
    try:
        decoder = json.JSONDecoder()
        rest = output.strip()
        while rest:
            _, end = decoder.raw_decode(rest)
            rest = rest[end:].lstrip()
        return "json"
    except ValueError:
        return "text"


def update(page: Path, run: PageRun) -> None:
    """Write each block's actual output into the page as its output block."""
    text = page.read_text()
    lines = text.split("\n")
    blocks = parse(text)
    # from the end, so earlier line numbers stay valid
    for block, output in reversed(list(zip(blocks, run.outputs, strict=True))):
        body = output.rstrip("\n").split("\n") if output.strip() else []
        if block.output_span:
            start, end = block.output_span
            if body:
                lines[start:end] = body
            else:  # the output block itself goes, with the blank line before it
                lines[start - 2 : end + 1] = []
        elif body:
            closing = block.line + block.code.count("\n") + 1  # the bash block's end fence
            lines[closing + 1 : closing + 1] = ["", f"```{_language(output)}", *body, "```"]
    page.write_text("\n".join(lines))


# --- running every page -------------------------------------------------------------


def pages() -> list[Path]:
    return sorted(p for p in PAGES.glob("*.md") if p.name != "index.md")


@contextmanager
def servers(workdir: Path, postgres: str | None, settings: dict[str, str]) -> Iterator[LiveServer]:
    workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        url = stack.enter_context(fresh_postgres_database(postgres)) if postgres else None
        yield stack.enter_context(live_server(workdir, url, settings))


def run_all(selected: list[Path], postgres: str | None) -> dict[Path, PageRun]:
    """Every page, on a shared server except those in OWN_SERVER."""
    results: dict[Path, PageRun] = {}
    shared = [p for p in selected if p.name not in OWN_SERVER]
    own = [p for p in selected if p.name in OWN_SERVER]
    with tempfile.TemporaryDirectory(prefix="walk-server-") as tmp:
        if shared:
            with servers(Path(tmp) / "shared", postgres, {}) as server:
                for page in shared:
                    results[page] = run_page(page, server)
        for n, page in enumerate(own):
            with servers(Path(tmp) / f"own{n}", postgres, OWN_SERVER[page.name]) as server:
                results[page] = run_page(page, server)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pages", nargs="*", type=Path)
    parser.add_argument("--update", action="store_true")
    parser.add_argument("--postgres", metavar="SERVER_URL")
    args = parser.parse_args()
    selected = [p.resolve() for p in args.pages] or pages()
    results = run_all(selected, args.postgres)
    failed = False
    for page, run in results.items():
        if run.failure:
            print(run.failure, file=sys.stderr)
            failed = True
        if args.update:
            update(page, run)
            print(f"updated {page.relative_to(ROOT)}")
        else:
            problems = differences(page, parse(page.read_text()), run)
            for problem in problems:
                print(problem, file=sys.stderr)
            failed = failed or bool(problems)
            print(f"{page.relative_to(ROOT)}: {len(run.outputs)} blocks, {len(problems)} differ")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
