# syntax=docker/dockerfile:1
# prodorder-api: build a wheel (and wheels of its dependencies), install them in a
# slim runtime image, migrate, serve on 0.0.0.0:8000 as a non-root user.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The dependencies exactly as locked, each checked against its hash; then the package
# itself (README.md is its readme in pyproject.toml, so the build needs it).
COPY requirements.lock ./
RUN pip wheel --require-hashes --wheel-dir /wheels -r requirements.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home app
COPY --from=build /wheels /wheels
# Only the locked wheels are there to be found: nothing newer can slip in.
RUN pip install --no-index --find-links=/wheels prodorder-api && rm -rf /wheels

# The wheel holds the package only. The Alembic scripts stay beside it in the working
# directory, where prodorder_api.settings.migrations_dir() looks (./migrations).
WORKDIR /app
COPY alembic.ini ./
COPY migrations ./migrations
# The default SQLite database lives in /data. Mount a volume there to keep it, or set
# DATABASE_URL=postgresql+asyncpg://... to use PostgreSQL.
RUN mkdir /data && chown app:app /data

USER app
ENV HOST=0.0.0.0 \
    PORT=8000 \
    DATABASE_URL=sqlite+aiosqlite:////data/prodorder.db
EXPOSE 8000
# Ready, not merely alive: /readyz answers 200 only when the database is reachable and
# its schema is at the migrations' head.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/readyz', timeout=4)"]
# `exec` replaces the shell, so the server is PID 1, receives SIGTERM from `docker stop`
# and shuts down gracefully.
CMD ["sh", "-c", "prodorder-api migrate && exec prodorder-api serve"]
