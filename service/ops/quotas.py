"""Per-tenant request rate limits (the ``limits`` library) and the SSE stream cap.

Storage: Redis when ``rate_limit_storage_url`` is set (or, with ``runner=celery``, the
broker's Redis), so that every API process shares the counts; in-process memory otherwise.
A storage failure never fails a request: the limit is skipped and a warning logged.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

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


class TenantRateLimiter:
    """``hit(tenant)`` raises TooManyRequests (429 + Retry-After) over the tenant's limit."""

    def __init__(self, settings: Settings) -> None:
        self.item: RateLimitItem | None = (
            parse(settings.rate_limit) if settings.rate_limit.strip() else None
        )
        url = storage_url(settings)
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
        try:
            allowed = await self.limiter.hit(self.item, "tenant", tenant_id)
            if allowed:
                return
            stats = await self.limiter.get_window_stats(self.item, "tenant", tenant_id)
            retry_after = max(1.0, stats.reset_time - time.time())
        except Exception as exc:  # the limit is a protection, not a dependency
            log.warning("rate limit storage unavailable, request allowed: %s", type(exc).__name__)
            return
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
