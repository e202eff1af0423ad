"""`prodorder-api serve | worker | migrate | keys | openapi`."""

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import NoReturn


def main(argv: list[str] | None = None) -> None:
    from prodorder_api import __version__

    parser = argparse.ArgumentParser(prog="prodorder-api")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the API (HOST, PORT, DATABASE_URL)")
    serve.add_argument("--host", default=None, help="default: $HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default: $PORT or 8000")
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--migrate", action="store_true", help="migrate to head first")

    commands.add_parser(
        "worker",
        help="deliver webhooks until stopped (beside or instead of the in-app dispatcher: "
        "PRODORDER_DISPATCHER=false)",
    )

    commands.add_parser("migrate", help="apply the database migrations up to head")

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True
    )
    create = keys.add_parser("create", help="create a key and print its token (only once)")
    create.add_argument("--name", required=True)
    create.add_argument("--scope", choices=["read", "write", "admin"], default="write")
    keys.add_parser("list", help="list keys (never their tokens)")
    revoke = keys.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")

    openapi = commands.add_parser("openapi", help="print the OpenAPI document")
    openapi.add_argument("--output", type=Path, default=None, help="write to this file")

    args = parser.parse_args(argv)
    if args.command == "serve":
        _serve(args)
    elif args.command == "worker":
        asyncio.run(_worker())
    elif args.command == "migrate":
        _migrate()
    elif args.command == "openapi":
        _openapi(args.output)
    elif args.command == "keys":
        asyncio.run(_keys(args))


def _fail(message: str) -> NoReturn:
    """A user's mistake: one clear line on stderr and exit status 2, no traceback."""
    print(f"prodorder-api: {message}", file=sys.stderr)
    raise SystemExit(2)


def _existing_database(url: str) -> None:
    """Refuse a SQLite file that does not exist yet, instead of creating an empty one."""
    from sqlalchemy.engine import make_url

    from prodorder_api.db import is_sqlite

    database = make_url(url).database
    if is_sqlite(url) and database and database != ":memory:" and not Path(database).exists():
        _fail(
            f"no database at {Path(database).resolve()}: run `prodorder-api migrate` first, "
            "in the project folder, or set DATABASE_URL"
        )


async def _keys(args: argparse.Namespace) -> None:
    from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

    from prodorder_api.errors import AppError

    try:
        await _manage_keys(args)
    except AppError as exc:
        _fail(exc.detail)
    except (OperationalError, ProgrammingError) as exc:
        if "no such table" in str(exc) or "does not exist" in str(exc):
            _fail("the database has no tables yet: run `prodorder-api migrate` first")
        _fail(f"the database refused: {exc.orig}")
    except (DBAPIError, OSError) as exc:
        _fail(f"cannot reach the database: {exc}")


async def _manage_keys(args: argparse.Namespace) -> None:
    from prodorder_api.auth import service
    from prodorder_api.db import create_engine, create_sessionmaker
    from prodorder_api.settings import get_settings

    url = get_settings().database_url
    _existing_database(url)
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            if args.keys_command == "create":
                _, token = await service.create(session, args.name, args.scope)
                print(token)
            elif args.keys_command == "list":
                for key in await service.list_keys(session):
                    state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
                    print(f"{key.id}  {key.prefix}…  {key.scope:<5}  {state:<18}  {key.name}")
            elif args.keys_command == "revoke":
                key = await service.revoke(session, args.key_id)
                print(f"revoked {key.id} ({key.name})")
    finally:
        await engine.dispose()


async def _first_key() -> None:
    """On a first start with no key at all, make an admin key and show it once."""
    from prodorder_api.auth import service
    from prodorder_api.db import create_engine, create_sessionmaker
    from prodorder_api.settings import get_settings

    settings = get_settings()
    if settings.bootstrap_key:
        problem = service.bootstrap_problem(settings.bootstrap_key)
        if problem:
            sys.exit(f"prodorder-api: {problem}")
        return
    engine = create_engine(settings.database_url, pgbouncer=settings.db_pgbouncer)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            if await service.any_active(session):
                return
            _, token = await service.create(session, "first start", "admin")
    finally:
        await engine.dispose()
    print(
        f"\nNo API key existed, so an admin key was created. It is shown only now:\n\n"
        f"    export PRODORDER_KEY={token}\n\n"
        f"Send it as `Authorization: Bearer $PRODORDER_KEY`. More keys: "
        f"`prodorder-api keys create --name NAME --scope read|write|admin`.\n",
        file=sys.stderr,
        flush=True,
    )


async def _worker() -> None:
    """The webhook dispatcher on its own; SIGTERM or SIGINT stops it gracefully."""
    import signal

    from prodorder_api.db import create_engine, create_sessionmaker
    from prodorder_api.observability import configure_logging
    from prodorder_api.settings import get_settings
    from prodorder_api.webhooks.dispatcher import Dispatcher

    settings = get_settings()
    configure_logging(settings.log_level)
    engine = create_engine(
        settings.database_url, pool_size=settings.db_pool_size, pgbouncer=settings.db_pgbouncer
    )
    dispatcher = Dispatcher(create_sessionmaker(engine), settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print("prodorder-api worker: delivering webhooks (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        await dispatcher.run(stop)
    finally:
        await dispatcher.aclose()
        await engine.dispose()


def _migrate() -> None:
    from prodorder_api import migrate

    migrate.upgrade()


def _serve(args: argparse.Namespace) -> None:
    from prodorder_api import serve
    from prodorder_api.settings import get_settings

    settings = get_settings()
    if args.migrate:
        _migrate()
    asyncio.run(_first_key())
    serve.run(
        "prodorder_api.main:app",
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
        proxy_headers=False,
        # Connection cap, head size and head timeout (http_protocol.py).
        http="prodorder_api.http_protocol:LimitedHttpToolsProtocol",
        timeout_keep_alive=settings.keep_alive_s,
        access_log=False,  # our own JSON access log carries the request id
        timeout_graceful_shutdown=20,
    )


def _openapi(output: Path | None) -> None:
    from prodorder_api.app import create_app

    text = json.dumps(create_app().openapi(), indent=2, sort_keys=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)


if __name__ == "__main__":
    main()
