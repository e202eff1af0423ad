"""`prodorder-api serve | migrate | openapi`."""

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="prodorder-api")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the API (HOST, PORT, DATABASE_URL)")
    serve.add_argument("--host", default=None, help="default: $HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default: $PORT or 8000")
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--migrate", action="store_true", help="migrate to head first")

    commands.add_parser("migrate", help="apply the database migrations up to head")

    openapi = commands.add_parser("openapi", help="print the OpenAPI document")
    openapi.add_argument("--output", type=Path, default=None, help="write to this file")

    args = parser.parse_args(argv)
    if args.command == "serve":
        _serve(args)
    elif args.command == "migrate":
        _migrate()
    elif args.command == "openapi":
        _openapi(args.output)


def _migrate() -> None:
    from prodorder_api import migrate

    migrate.upgrade()


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from prodorder_api.settings import get_settings

    settings = get_settings()
    if args.migrate:
        _migrate()
    uvicorn.run(
        "prodorder_api.main:app",
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
        proxy_headers=False,
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
