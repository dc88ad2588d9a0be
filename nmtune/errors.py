"""Typed errors of the client: each carries the service's error envelope
``{"error": Type, "detail": message, "field": path}``."""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIError",
    "AuthenticationError",
    "ConflictError",
    "JobFailedError",
    "NmtuneError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitError",
    "ServerError",
    "ServiceUnavailableError",
    "TimeoutError",
    "UpstreamError",
    "ValidationError",
    "error_for",
]


class NmtuneError(Exception):
    """Every error the client raises."""


class TimeoutError(NmtuneError):
    """A wait ran past its timeout."""


class APIError(NmtuneError):
    """The service answered with an error (status >= 400)."""

    def __init__(
        self, status_code: int, error: str, detail: str, field: str | None, body: Any
    ) -> None:
        super().__init__(f"{status_code} {error}: {detail}")
        self.status_code = status_code
        self.error = error
        self.detail = detail
        self.field = field
        self.body = body


class ValidationError(APIError):
    """422: the request is invalid; ``field`` names the part at fault."""


class AuthenticationError(APIError):
    """401: missing, invalid or revoked API key."""


class NotFoundError(APIError):
    """404."""


class ConflictError(APIError):
    """409: e.g. a head that is not ready, an Idempotency-Key reused for another body."""


class PayloadTooLargeError(APIError):
    """413."""


class RateLimitError(APIError):
    """429 after the client's retries."""


class ServiceUnavailableError(APIError):
    """503 after the client's retries (job queue or backbone down)."""


class UpstreamError(APIError):
    """502: the embedding backbone failed."""


class ServerError(APIError):
    """Any other 5xx."""


_BY_STATUS: dict[int, type[APIError]] = {
    401: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitError,
    502: UpstreamError,
    503: ServiceUnavailableError,
}


def error_for(status_code: int, body: Any, text: str = "") -> APIError:
    """The typed error of a response (``body``: its JSON, when it had any)."""
    env = body if isinstance(body, dict) else {}
    error = str(env.get("error") or f"HTTP{status_code}")
    detail = str(env.get("detail") or text or "")
    field = env.get("field")
    cls = _BY_STATUS.get(status_code) or (ServerError if status_code >= 500 else APIError)
    return cls(status_code, error, detail, None if field is None else str(field), body)


class JobFailedError(NmtuneError):
    """A job the client waited for ended failed or cancelled; ``job`` is its last state."""

    def __init__(self, job: Any) -> None:
        err = getattr(job, "error", None)
        why = f": {err.type}: {err.message}" if err is not None else ""
        super().__init__(f"job {job.id} {job.status}{why}")
        self.job = job
