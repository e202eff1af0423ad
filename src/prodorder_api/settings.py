"""Settings from environment variables, read once and cached."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./prodorder.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    database_url: str = Field(default=DEFAULT_DATABASE_URL, alias="DATABASE_URL")
    host: str = Field(default="127.0.0.1", alias="HOST")
    port: int = Field(default=8000, alias="PORT")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    db_pool_size: int = Field(default=10, alias="PRODORDER_DB_POOL_SIZE")
    sqlite_busy_timeout_ms: int = Field(default=30_000, alias="PRODORDER_SQLITE_BUSY_TIMEOUT_MS")
    bootstrap_key: str | None = Field(default=None, alias="PRODORDER_BOOTSTRAP_KEY")

    # The /v1 guard (guard.py): the key first, then the rate limit, then the body.
    max_body_bytes: int = Field(default=1_048_576, gt=0, alias="PRODORDER_MAX_BODY_BYTES")
    body_timeout_s: float = Field(default=30.0, gt=0, alias="PRODORDER_BODY_TIMEOUT_S")
    # What serve enforces on each connection (http_protocol.py), per worker.
    max_connections: int = Field(default=1000, gt=0, alias="PRODORDER_MAX_CONNECTIONS")
    max_header_bytes: int = Field(default=16_384, gt=0, alias="PRODORDER_MAX_HEADER_BYTES")
    header_timeout_s: float = Field(default=10.0, gt=0, alias="PRODORDER_HEADER_TIMEOUT_S")
    keep_alive_s: float = Field(default=5.0, gt=0, alias="PRODORDER_KEEP_ALIVE_S")
    # "100/second", "6000/minute", "100/second;5000/hour"; unset or "0" turns it off.
    rate_limit: str | None = Field(default=None, alias="PRODORDER_RATE_LIMIT")
    # Shared rate-limit counters (redis://host:port/db); unset, each process counts alone.
    redis_url: str | None = Field(default=None, alias="PRODORDER_REDIS_URL")

    # Webhooks: the dispatcher runs inside every app process unless switched off (then
    # run `prodorder-api worker` instead); several of them may run at once.
    dispatcher: bool = Field(default=True, alias="PRODORDER_DISPATCHER")
    dispatch_interval_s: float = Field(default=1.0, gt=0, alias="PRODORDER_DISPATCH_INTERVAL_S")
    webhook_retry_base_s: float = Field(default=5.0, gt=0, alias="PRODORDER_WEBHOOK_RETRY_BASE_S")
    webhook_max_attempts: int = Field(default=12, ge=1, alias="PRODORDER_WEBHOOK_MAX_ATTEMPTS")
    webhook_timeout_s: float = Field(default=10.0, gt=0, alias="PRODORDER_WEBHOOK_TIMEOUT_S")
    webhooks_allow_private: bool = Field(default=False, alias="PRODORDER_WEBHOOKS_ALLOW_PRIVATE")

    # Past one machine (SPEC §12). PgBouncer in transaction mode between the service and
    # PostgreSQL: no prepared statement outlives its transaction or shares a name.
    db_pgbouncer: bool = Field(default=False, alias="PRODORDER_DB_PGBOUNCER")
    # A streaming replica for pure reads (read_routing.py); writes stay on DATABASE_URL.
    read_database_url: str | None = Field(default=None, alias="PRODORDER_READ_DATABASE_URL")


@lru_cache
def get_settings() -> Settings:
    return Settings()


def migrations_dir() -> Path:
    """The Alembic scripts: beside the source tree, or in the working directory (containers)."""
    source_tree = Path(__file__).resolve().parents[2] / "migrations"
    if source_tree.is_dir():
        return source_tree
    return Path.cwd() / "migrations"
