from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from nmtune.service.db.migrate import is_up_to_date
from nmtune.service.deps import Ctx

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: database reachable and writable, schema current, runner up; "
    "backbones warmed",
    description="The write probe updates the schema version row to itself and rolls back: "
    "a read-only database (file, replica, full disk) is not ready. `backbones` shows the "
    "local backbones warmed at start-up (loading, ready, error: ...); informational.",
    responses={503: {"description": "Not ready; `checks` says which part failed."}},
)
async def readyz(ctx: Ctx, request: Request) -> JSONResponse:
    checks: dict[str, Any] = {"database": "error: unreachable"}

    def _database() -> None:
        with ctx.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
            try:
                conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
                checks["database_write"] = "ok"
            except Exception as exc:
                checks["database_write"] = f"error: {type(getattr(exc, 'orig', exc)).__name__}"
            finally:
                conn.rollback()
        checks["schema"] = "ok" if is_up_to_date(ctx.db.engine, ctx.db.url) else "out of date"

    try:
        await to_thread.run_sync(_database)
    except Exception as exc:
        if checks["database"] == "ok":
            checks["schema"] = f"error: {type(exc).__name__}"
        else:
            checks["database"] = f"error: {type(exc).__name__}"
    try:
        await ctx.runner.check()
        checks["runner"] = "ok"
    except Exception as exc:
        checks["runner"] = f"error: {exc}"
    ok = all(v == "ok" for v in checks.values())
    warmup = getattr(request.app.state, "warmup", None)
    return JSONResponse(
        status_code=200 if ok else 503,
        content={
            "status": "ready" if ok else "not ready",
            "checks": checks,
            # local backbones warmed at start-up: loading | ready | error: ... (informational:
            # a loading backbone only makes its first requests wait)
            "backbones": dict(warmup.state) if warmup is not None else {},
        },
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def prometheus_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
