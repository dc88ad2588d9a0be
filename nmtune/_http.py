"""What the sync and async clients share: configuration, request building, the retry
policy (429 / 503 / connection errors, honouring Retry-After) and error mapping."""

from __future__ import annotations

import email.utils
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from nmtune.errors import error_for

DEFAULT_BASE_URL = "http://localhost:8000"
RETRY_STATUSES = (429, 503)


def user_agent() -> str:
    from nmtune import __version__

    return f"nmtune-python/{__version__} httpx/{httpx.__version__}"


@dataclass(frozen=True)
class Call:
    """One API call: method, path and body; ``retry_unsent_only``: a call that is not
    idempotent is retried only when the server said it did not process it (429 / 503) or
    the connection failed before the request was sent."""

    method: str
    path: str
    params: list[tuple[str, Any]] | None = None
    json: Any = None
    files: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    idempotent: bool = True


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    backoff_s: float = 0.5
    max_wait_s: float = 60.0

    def wait_s(self, attempt: int, response: httpx.Response | None) -> float:
        """Seconds before retry ``attempt`` (0-based): Retry-After when the server sent it
        (seconds or an HTTP date), else exponential backoff with jitter; at most max_wait_s."""
        if response is not None:
            after = parse_retry_after(response.headers.get("Retry-After"))
            if after is not None:
                return min(after, self.max_wait_s)
        base = self.backoff_s * (2**attempt)
        return float(min(base * (0.5 + random.random() / 2), self.max_wait_s))


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def settings(base_url: str | None, api_key: str | None) -> tuple[str, dict[str, str]]:
    url = (base_url or os.environ.get("NMTUNE_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    key = api_key if api_key is not None else os.environ.get("NMTUNE_API_KEY")
    headers = {"User-Agent": user_agent(), "Accept": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return url, headers


def request_kwargs(call: Call) -> dict[str, Any]:
    kw: dict[str, Any] = {"params": call.params, "headers": call.headers or None}
    if call.json is not None:
        kw["json"] = call.json
    if call.files is not None:
        kw["files"] = call.files
    if call.data is not None:
        kw["data"] = call.data
    return kw


def should_retry(call: Call, response: httpx.Response | None, exc: Exception | None) -> bool:
    if response is not None:
        return response.status_code in RETRY_STATUSES
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return True  # never reached the server
    return call.idempotent and isinstance(exc, httpx.TransportError)


def check(response: httpx.Response) -> httpx.Response:
    """The response, or its typed error."""
    if response.status_code < 400:
        return response
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    raise error_for(response.status_code, body, response.text[:500])
