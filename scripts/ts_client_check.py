"""`make ts-client-check`: the bicycle walk through a TypeScript client, beside the
Python one (client_check.py).

Generates the client's types from openapi/openapi.json with openapi-typescript, with
its default flags (clients/ts/generated/api.ts, never committed), compiles
clients/ts/src/bicycle.ts with `tsc --strict` (clients/ts/tsconfig.json) after making
sure it holds no type assertion (`as`), no `any` and no `@ts-ignore`, then starts the
real server on loopback with a fresh SQLite database and runs the compiled walk
against it with openapi-fetch. The Node tools come from clients/ts/package-lock.json
(`npm ci`, run by the Makefile).
"""

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from live_server import ROOT, live_server

TS = ROOT / "clients" / "ts"
SPEC = ROOT / "openapi" / "openapi.json"
SOURCES = sorted((TS / "src").glob("*.ts"))
BIN = TS / "node_modules" / ".bin"

# What would let a wrong type through: assertions, `any`, and silenced errors.
# (`@ts-expect-error` is allowed: it fails the build when the line below compiles.)
ESCAPES = {
    "a type assertion (`as`)": re.compile(r"[\w)\]}>]\s+as\s+[\w{\[(<\"']"),
    "`any`": re.compile(r"(?<![\w.\"'])any(?![\w\"'])"),
    "`@ts-ignore` or `@ts-nocheck`": re.compile(r"@ts-(ignore|nocheck)"),
}
_COMMENT = re.compile(r"//(?!\s*@ts-).*$", re.MULTILINE)
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|`(?:\\.|[^`\\])*`')


def escapes(source: str) -> list[str]:
    """Each type-system escape in ``source``, outside comments and strings."""
    code = _STRING.sub('""', _COMMENT.sub("", source))
    found = []
    for number, line in enumerate(code.splitlines(), 1):
        found += [f"line {number}: {what}" for what, rule in ESCAPES.items() if rule.search(line)]
    return found


def run(*command: str) -> None:
    subprocess.run(command, cwd=TS, check=True, timeout=300)


def build() -> None:
    for source in SOURCES:
        if problems := escapes(source.read_text()):
            raise SystemExit(f"{source.relative_to(ROOT)}: " + "; ".join(problems))
    (TS / "generated").mkdir(exist_ok=True)
    run(str(BIN / "openapi-typescript"), str(SPEC), "--output", "generated/api.ts")
    run(str(BIN / "tsc"), "--strict", "--project", "tsconfig.json")


def main() -> None:
    started = time.monotonic()
    build()
    with (
        tempfile.TemporaryDirectory(prefix="ts-client-check-") as tmp,
        live_server(Path(tmp)) as server,
    ):
        env = {
            **os.environ,
            "PRODORDER_BASE_URL": server.base_url,
            "PRODORDER_TOKEN": server.token,
        }
        walk = subprocess.run(
            ["node", "build/src/bicycle.js"], cwd=TS, env=env, timeout=300, check=False
        )
    if walk.returncode != 0:
        sys.exit(walk.returncode)
    print(f"ts-client-check: generated, compiled and ran in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
