"""The TypeScript client check refuses the escapes that would let a wrong type through
(scripts/ts_client_check.py; `make ts-client-check` runs the check itself)."""

import importlib
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def escapes() -> object:
    sys.path.insert(0, str(SCRIPTS))
    try:
        return importlib.import_module("ts_client_check").escapes
    finally:
        sys.path.remove(str(SCRIPTS))


@pytest.mark.parametrize(
    "line",
    [
        "const order = body as OrderOut;",
        "const total = (await response.json()) as unknown;",
        "const pairs = [a, b] as const;",
        "let loose: any = 1;",
        "const list: Array<any> = [];",
        "// @ts-ignore",
        "// @ts-nocheck",
    ],
)
def test_an_escape_is_refused(escapes: object, line: str) -> None:
    assert callable(escapes) and escapes(line) != []


@pytest.mark.parametrize(
    "line",
    [
        "const alias = basis.has(company);",
        "// what the check refuses: `as` casts, `any`",
        'check(ok, "as any string may say");',
        "// @ts-expect-error a typo does not compile",
        "const many = anyway + 1;",
    ],
)
def test_plain_code_passes(escapes: object, line: str) -> None:
    assert callable(escapes) and escapes(line) == []


def test_the_walk_itself_has_no_escape(escapes: object) -> None:
    walk = SCRIPTS.parent / "clients" / "ts" / "src" / "bicycle.ts"
    assert callable(escapes) and escapes(walk.read_text()) == []
