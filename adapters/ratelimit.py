"""Client-side rate limiting driven by the provider's x-ratelimit-* response headers."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

_DUR = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_reset(value: str | None) -> float | None:
    """Parse OpenAI reset durations such as "1s", "6m0s", "20ms", "1h2m3.5s" or "0.5"."""
    if not value:
        return None
    v = value.strip()
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    parts = _DUR.findall(v)
    if not parts or "".join(a + b for a, b in parts) != v:
        return None
    return sum(float(a) * _UNIT[u] for a, u in parts)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class HeaderRateLimiter:
    """Waits before a request when the last headers say the budget is exhausted.

    Tracks remaining requests/tokens and when each resets; decrements locally for requests
    in flight so that concurrent senders do not all rush into an exhausted window.
    """

    def __init__(self, max_wait_s: float = 300.0) -> None:
        self.max_wait_s = max_wait_s
        self.remaining_requests: int | None = None
        self.remaining_tokens: int | None = None
        self.reset_requests_at = 0.0
        self.reset_tokens_at = 0.0
        self.waited_s = 0.0

    def _delay(self, tokens: int, now: float) -> float:
        delay = 0.0
        if now >= self.reset_requests_at:
            self.remaining_requests = None
        if now >= self.reset_tokens_at:
            self.remaining_tokens = None
        if self.remaining_requests is not None and self.remaining_requests <= 0:
            delay = max(delay, self.reset_requests_at - now)
        if self.remaining_tokens is not None and self.remaining_tokens < tokens:
            delay = max(delay, self.reset_tokens_at - now)
        return min(delay, self.max_wait_s)

    async def acquire(self, tokens: int) -> None:
        now = time.monotonic()
        delay = self._delay(tokens, now)
        if delay > 0:
            log.info("client-side rate limit: waiting %.3fs", delay)
            self.waited_s += delay
            await asyncio.sleep(delay)
            now = time.monotonic()
            self._delay(tokens, now)  # clear windows that have reset
        if self.remaining_requests is not None:
            self.remaining_requests -= 1
        if self.remaining_tokens is not None:
            self.remaining_tokens -= tokens

    def update(self, headers: Mapping[str, str]) -> None:
        now = time.monotonic()
        rr = _int(headers.get("x-ratelimit-remaining-requests"))
        rt = _int(headers.get("x-ratelimit-remaining-tokens"))
        if rr is not None:
            self.remaining_requests = rr
            reset = parse_reset(headers.get("x-ratelimit-reset-requests"))
            self.reset_requests_at = now + (reset if reset is not None else 1.0)
        if rt is not None:
            self.remaining_tokens = rt
            reset = parse_reset(headers.get("x-ratelimit-reset-tokens"))
            self.reset_tokens_at = now + (reset if reset is not None else 1.0)
