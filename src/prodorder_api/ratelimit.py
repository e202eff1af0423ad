"""Rate limits per API key, on the ``limits`` library.

``PRODORDER_RATE_LIMIT`` is one limit or several (``100/second;5000/hour``), counted
with the sliding-window-counter strategy: no burst of twice the limit at a window's
edge, as fixed windows allow, and two numbers per key and window instead of a log of
every request. The counters live in the process, or in Redis when
``PRODORDER_REDIS_URL`` is set, so that every worker and instance draws on one budget.

A counter store that fails (Redis down) lets the request through and logs a warning:
the limit protects the service, and the service must not stop because of it.
"""

import logging
import math
import time
from dataclasses import dataclass
from typing import Final

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

log = logging.getLogger("prodorder_api.ratelimit")

STORE_TIMEOUT_S: Final = 1.0


class RateLimitSettingError(ValueError):
    """``PRODORDER_RATE_LIMIT`` is not a limit ``limits`` understands."""


def parse(spec: str | None) -> list[RateLimitItem]:
    """The limits of ``spec``; none for unset, empty or ``0``."""
    if spec is None or spec.strip() in ("", "0"):
        return []
    try:
        return parse_many(spec)
    except ValueError as exc:
        raise RateLimitSettingError(
            f"PRODORDER_RATE_LIMIT={spec!r} is not a rate limit; write e.g. "
            "'100/second', '6000/minute' or '100/second;5000/hour' (0 turns it off)"
        ) from exc


@dataclass(frozen=True)
class Verdict:
    """The outcome of one request against the tightest of the limits."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until the window has room again

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset_s).encode()),
        ]
        if not self.allowed:
            headers.append((b"retry-after", str(self.reset_s).encode()))
        return headers


class RateLimits:
    """The configured limits and where their counters live."""

    def __init__(self, spec: str | None, redis_url: str | None = None) -> None:
        self.items = parse(spec)
        self._storage: Storage = (
            RedisStorage(
                f"async+{redis_url}",
                wrap_exceptions=True,
                stream_timeout=STORE_TIMEOUT_S,
                connect_timeout=STORE_TIMEOUT_S,
            )
            if redis_url and self.items
            else MemoryStorage()
        )
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)

    @property
    def enabled(self) -> bool:
        return bool(self.items)

    async def hit(self, identity: str) -> Verdict | None:
        """Count one request of ``identity``; None when no limit is set or the store
        cannot be reached."""
        if not self.items:
            return None
        try:
            tightest: Verdict | None = None
            for item in self.items:
                allowed = await self._limiter.hit(item, identity)
                stats = await self._limiter.get_window_stats(item, identity)
                reset_s = max(1, math.ceil(stats.reset_time - time.time()))
                verdict = Verdict(allowed, item.amount, max(stats.remaining, 0), reset_s)
                if not allowed:
                    return verdict
                if tightest is None or verdict.remaining < tightest.remaining:
                    tightest = verdict
            return tightest
        except Exception as exc:
            log.warning("rate limit store unavailable, request not limited: %r", exc)
            return None

    async def reset(self) -> None:
        """Forget every counter (tests)."""
        await self._storage.reset()
