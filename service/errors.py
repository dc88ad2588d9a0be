"""One error envelope for every 4xx/5xx: ``{"error": Type, "detail": msg, "field": path|null}``."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: str = Field(description="Error type, e.g. ValidationError, NotFound.")
    detail: str = Field(description="Human-readable message naming the field at fault.")
    field: str | None = Field(default=None, description="Dotted path of the field at fault.")


class ApiError(Exception):
    status_code = 400
    error = "BadRequest"

    def __init__(
        self, detail: str, *, field: str | None = None, retry_after: float | None = None
    ) -> None:
        if field and not detail.startswith(field):
            detail = f"{field}: {detail}"
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.retry_after = retry_after

    def headers(self) -> dict[str, str] | None:
        if self.retry_after is None:
            return None
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


class ValidationFailed(ApiError):
    status_code = 422
    error = "ValidationError"


class NotFound(ApiError):
    status_code = 404
    error = "NotFound"


class Conflict(ApiError):
    status_code = 409
    error = "Conflict"


class PayloadTooLarge(ApiError):
    status_code = 413
    error = "PayloadTooLarge"


class Unauthorized(ApiError):
    status_code = 401
    error = "Unauthorized"


class TooManyRequests(ApiError):
    """A per-tenant quota or rate limit; ``retry_after`` seconds go into Retry-After."""

    status_code = 429
    error = "TooManyRequests"


class ServiceUnavailable(ApiError):
    status_code = 503
    error = "ServiceUnavailable"


class UpstreamError(ApiError):
    status_code = 502
    error = "UpstreamError"


_STATUS_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    408: "RequestTimeout",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "ValidationError",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def envelope(
    status: int,
    error: str,
    detail: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=error, detail=detail, field=field).model_dump()
    return JSONResponse(status_code=status, content=body, headers=headers)


_UNION_TAG = re.compile(r"^(str|int|float|bool|list|dict|none|[a-z-]+\[.*\])$")


def _loc_to_field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    parts = [p for p in parts if not _UNION_TAG.match(p)]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or ".".join(str(p) for p in loc)


def _validation_msg(error: Mapping[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        ctx = error.get("ctx") or {}
        return f"invalid JSON ({ctx.get('error', 'cannot be decoded')})"
    msg = str(error.get("msg", "invalid request"))
    return msg.removeprefix("Value error, ")


def validation_detail(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """(field, detail) of a request's validation errors: the first error's field, every
    message about that field (a union's alternatives: "a valid string or a valid integer"),
    and how many errors concern other fields."""
    if not errors:
        return "body", "body: invalid request"
    first = errors[0]
    # A JSON decode error's loc is ("body", <character offset>): no field to name.
    invalid_json = first.get("type") == "json_invalid"
    field = "body" if invalid_json else _loc_to_field(first.get("loc", ()))
    same = [e for e in errors if e is first or _loc_to_field(e.get("loc", ())) == field]
    msgs = list(dict.fromkeys(_validation_msg(e) for e in same))
    lead = "Input should be "
    if len(msgs) > 1 and all(m.startswith(lead) for m in msgs):  # a union's alternatives
        msgs = [lead + " or ".join(m.removeprefix(lead) for m in msgs)]
    others = len(errors) - len(same)
    more = f" (and {others} more)" if others else ""
    return field, f"{field}: {'; '.join(msgs)}{more}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return envelope(exc.status_code, exc.error, exc.detail, exc.field, exc.headers())

    # Database trouble is handled here (not by the catch-all below, which re-raises and so
    # resets the connection): unavailable -> 503 + Retry-After; a value the database refuses
    # (validation should have caught it first) -> 422. Never the SQL parameters or the
    # database's own message in the response (they may hold tenants' data).
    @app.exception_handler(sa_exc.OperationalError)
    @app.exception_handler(sa_exc.InterfaceError)
    @app.exception_handler(sa_exc.TimeoutError)
    async def _db_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "database unavailable on %s %s: %s",
            request.method,
            request.url.path,
            _db_error_name(exc),
        )
        return envelope(
            503,
            "ServiceUnavailable",
            "the database is unavailable; retry later",
            None,
            {"Retry-After": str(DB_RETRY_AFTER_S)},
        )

    @app.exception_handler(sa_exc.DataError)
    async def _db_rejected(request: Request, exc: Exception) -> JSONResponse:
        log.warning(
            "database rejected a value on %s %s: %s",
            request.method,
            request.url.path,
            _db_error_name(exc),
        )
        return envelope(422, "ValidationError", "a value in the request cannot be stored")

    @app.exception_handler(sa_exc.DBAPIError)
    async def _db_other(request: Request, exc: sa_exc.DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return await _db_unavailable(request, exc)
        log.error(
            "database error on %s %s: %s", request.method, request.url.path, _db_error_name(exc)
        )
        return envelope(500, "InternalError", "internal server error")

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        field, detail = validation_detail(exc.errors())
        return envelope(422, "ValidationError", detail, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        name = _STATUS_NAMES.get(exc.status_code, "HTTPError")
        headers = dict(exc.headers) if exc.headers else None
        return envelope(exc.status_code, name, str(exc.detail), None, headers)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return envelope(500, "InternalError", "internal server error")


DB_RETRY_AFTER_S = 5


def _db_error_name(exc: Exception) -> str:
    """The error class and the statement's first words: no parameters, no message text."""
    orig = getattr(exc, "orig", None)
    name = type(orig).__name__ if orig is not None else type(exc).__name__
    stmt = getattr(exc, "statement", None)
    verb = str(stmt).split(None, 2)[:2] if stmt else []
    return f"{name} ({' '.join(verb)})" if verb else name


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": desc}
    for code, desc in {
        401: "Missing or invalid API key.",
        404: "Not found (or owned by another tenant).",
        413: "Request too large.",
        422: "Invalid input; `field` names the field at fault.",
        408: "The request body did not arrive in time.",
        429: "A per-tenant quota or rate limit was hit; see the Retry-After header.",
        503: "The database (or the job queue) is unavailable; see the Retry-After header.",
    }.items()
}


class WorkCancelled(Exception):
    """Background work stopped because its job was cancelled (e.g. between embedding chunks).

    Shared by the embedding cache and the job engine so that neither imports the other."""
