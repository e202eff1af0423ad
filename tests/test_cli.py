"""The command line answers a user's mistakes with one clear line and exit status 2."""

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _cli(
    *args: str, cwd: Path, database_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "prodorder_api.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_version(tmp_path: Path) -> None:
    done = _cli("--version", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith("prodorder-api ")


def test_keys_before_migrate_say_so_and_leave_no_file(tmp_path: Path) -> None:
    done = _cli("keys", "create", "--name", "shop", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("prodorder-api: no database at ")
    assert "prodorder-api migrate" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_keys_on_an_empty_database_and_an_unknown_id(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    (tmp_path / "empty.db").touch()
    done = _cli("keys", "list", cwd=tmp_path, database_url=url)
    assert (done.returncode, done.stderr.strip()) == (
        2,
        "prodorder-api: the database has no tables yet: run `prodorder-api migrate` first",
    )
    assert _cli("migrate", cwd=tmp_path, database_url=url).returncode == 0
    for key_id in ("nope", "01a2364b-5588-743a-a448-57eceb13154a"):
        done = _cli("keys", "revoke", key_id, cwd=tmp_path, database_url=url)
        assert (done.returncode, done.stderr.strip()) == (
            2,
            f"prodorder-api: no API key with id {key_id}",
        )


def test_a_short_bootstrap_key_stops_serve_before_it_starts(tmp_path: Path) -> None:
    env_url = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    env = {**os.environ, "PYTHONPATH": str(SRC), "DATABASE_URL": env_url}
    env["PRODORDER_BOOTSTRAP_KEY"] = "hunter2"
    done = subprocess.run(
        [sys.executable, "-m", "prodorder_api.cli", "serve", "--port", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "PRODORDER_BOOTSTRAP_KEY is 7 characters long" in done.stderr
    assert "at least 32" in done.stderr
