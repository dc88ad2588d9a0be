"""Per-tenant request rate limits (the ``limits`` library) and the SSE stream cap.

Storage: Redis when ``rate_limit_storage_url`` is set (or, with ``runner=celery``, the
broker's Redis), so that every API process shares the counts; in-process memory otherwise
(``MemoryMovingWindow``: the same moving window, without the cleanup task and thread hop that
the library's memory storage schedules on most hits).
A storage failure never fails a request: the limit is skipped and a warning logged.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from nmtune.service.errors import TooManyRequests
from nmtune.service.settings import Settings

log = logging.getLogger(__name__)


def storage_url(settings: Settings) -> str:
    """The ``limits`` storage URI for these settings."""
    if settings.rate_limit_storage_url is not None:
        url = settings.rate_limit_storage_url.get_secret_value()
    elif settings.runner == "celery" and settings.celery_broker_url.get_secret_value().startswith(
        ("redis://", "rediss://")
    ):
        url = settings.celery_broker_url.get_secret_value()
    else:
        return "async+memory://"
    return url if url.startswith("async+") else f"async+{url}"


class MemoryMovingWindow:
    """At most ``amount`` hits per key in any ``period`` seconds, in this process: the moving
    window of ``limits``' ``MovingWindowRateLimiter`` (a hit counts when allowed; a hit at
    time t sees the allowed hits in [t - period, t]), kept as one deque of hit times per key.
    Called from the event loop only."""

    #: keys held before a sweep drops those whose every hit has left the window
    SWEEP_KEYS = 10_000

    def __init__(self, amount: int, period_s: float) -> None:
        self.amount = amount
        self.period_s = period_s
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str, now: float | None = None) -> float | None:
        """None when the hit is allowed (and counted); else the seconds until the oldest hit
        in the window leaves it."""
        now = time.time() if now is None else now
        cutoff = now - self.period_s
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self.SWEEP_KEYS:
                self._sweep(cutoff)
            hits = self._hits[key] = deque()
        while hits and hits[0] < cutoff:
            hits.popleft()
        if len(hits) >= self.amount:
            return hits[0] + self.period_s - now
        hits.append(now)
        return None

    def _sweep(self, cutoff: float) -> None:
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] < cutoff]:
            del self._hits[key]


class TenantRateLimiter:
    """``hit(tenant)`` raises TooManyRequests (429 + Retry-After) over the tenant's limit."""

    def __init__(self, settings: Settings) -> None:
        self.item: RateLimitItem | None = (
            parse(settings.rate_limit) if settings.rate_limit.strip() else None
        )
        url = storage_url(settings)
        self.memory: MemoryMovingWindow | None = None
        self.limiter: MovingWindowRateLimiter | None = None
        if url == "async+memory://":
            if self.item is not None:
                self.memory = MemoryMovingWindow(self.item.amount, self.item.get_expiry())
            return
        options: dict[str, str] = (
            {"implementation": "redispy", "key_prefix": settings.rate_limit_key_prefix}
            if "redis" in url.split("://")[0]
            else {}
        )
        self.storage = storage_from_string(url, **options)
        self.limiter = MovingWindowRateLimiter(self.storage)  # type: ignore[arg-type]

    async def hit(self, tenant_id: str) -> None:
        if self.item is None:
            return
        if self.memory is not None:
            wait = self.memory.hit(tenant_id)
            if wait is not None:
                self._refuse(max(1.0, wait))
            return
        assert self.limiter is not None
        try:
            allowed = await self.limiter.hit(self.item, "tenant", tenant_id)
            if allowed:
                return
            stats = await self.limiter.get_window_stats(self.item, "tenant", tenant_id)
            retry_after = max(1.0, stats.reset_time - time.time())
        except Exception as exc:  # the limit is a protection, not a dependency
            log.warning("rate limit storage unavailable, request allowed: %s", type(exc).__name__)
            return
        self._refuse(retry_after)

    def _refuse(self, retry_after: float) -> NoReturn:
        raise TooManyRequests(
            f"rate limit of {self.item} per tenant exceeded; retry in {retry_after:.0f} s",
            retry_after=retry_after,
        )


class StreamSlots:
    """At most ``limit`` concurrent event streams per tenant (in this process): ``check``
    before the response starts (429), ``slot`` around the stream itself."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: Counter[str] = Counter()

    def check(self, tenant_id: str) -> None:
        if self.open[tenant_id] >= self.limit:
            raise TooManyRequests(
                f"at most {self.limit} concurrent event streams per tenant "
                "(max_streams_per_tenant); close one first",
                retry_after=5,
            )

    @contextmanager
    def slot(self, tenant_id: str) -> Iterator[None]:
        self.open[tenant_id] += 1
        try:
            yield
        finally:
            self.open[tenant_id] -= 1
            if self.open[tenant_id] <= 0:
                del self.open[tenant_id]
