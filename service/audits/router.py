from __future__ import annotations

from typing import Annotated, Literal

from anyio import to_thread
from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from nmtune.service.audits import service
from nmtune.service.audits.schemas import (
    AuditCreate,
    AuditCreated,
    AuditDetail,
    AuditPage,
    AuditSort,
)
from nmtune.service.deps import Ctx, TenantId
from nmtune.service.errors import ERROR_RESPONSES

router = APIRouter(prefix="/v1/datasets", tags=["audits"], responses=ERROR_RESPONSES)

Sort = Annotated[
    AuditSort,
    Query(description="-score (default: most suspicious first), score, position, -position"),
]
FlaggedOnly = Annotated[
    bool, Query(description="Only the flagged examples (default); false: every audited one.")
]


@router.post(
    "/{dataset_id}/audit",
    status_code=202,
    summary="Audit a dataset's labels (returns at once with the job)",
    responses={503: ERROR_RESPONSES[404] | {"description": "The job queue is down."}},
)
async def create_audit(
    dataset_id: str, body: AuditCreate, ctx: Ctx, tenant: TenantId
) -> AuditCreated:
    """Queue a label-noise audit of the given splits: embed them through the cache (no
    backbone call for cached examples), compute out-of-fold probabilities of a
    cross-validated logistic regression and flag likely mislabelled examples with
    confident learning. Poll GET /v1/jobs/{job_id}; cancel with POST /v1/jobs/{job_id}/cancel."""
    return await service.submit_audit(
        tenant, dataset_id, body, db=ctx.db, registry=ctx.registry, queue=ctx.queue
    )


@router.get("/{dataset_id}/audits", summary="List a dataset's audits")
def list_audits(
    dataset_id: str,
    ctx: Ctx,
    tenant: TenantId,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AuditPage:
    with ctx.db.session() as s:
        return service.list_audits(s, tenant, dataset_id, limit, offset)


@router.get(
    "/{dataset_id}/audits/{audit_id}",
    summary="An audit: summary and a page of flagged examples",
)
def get_audit(
    dataset_id: str,
    audit_id: str,
    ctx: Ctx,
    tenant: TenantId,
    sort: Sort = "-score",
    flagged_only: FlaggedOnly = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AuditDetail:
    """Summary (estimated noise rate, per-class counts, joint given x true matrix) and the
    examples with their text, given label, suggested label and score (higher = more likely
    mislabelled), once the audit is ready."""
    with ctx.db.session() as s:
        return service.audit_detail(
            s,
            tenant,
            dataset_id,
            audit_id,
            flagged_only=flagged_only,
            sort=sort,
            limit=limit,
            offset=offset,
        )


@router.get(
    "/{dataset_id}/audits/{audit_id}/export",
    summary="Export an audit's examples as CSV or JSONL",
    responses={
        200: {"content": {"text/csv": {}, "application/x-ndjson": {}}},
        409: ERROR_RESPONSES[404] | {"description": "The audit is not ready."},
    },
)
async def export_audit(
    dataset_id: str,
    audit_id: str,
    ctx: Ctx,
    tenant: TenantId,
    format: Annotated[Literal["csv", "jsonl"], Query(description="csv (default) or jsonl")] = "csv",
    sort: Sort = "-score",
    flagged_only: FlaggedOnly = True,
) -> Response:
    """Columns / keys: position, split, text, image_sha256, given, suggested, score, flagged."""
    lines = await to_thread.run_sync(
        lambda: service.export_lines(
            ctx.db, tenant, dataset_id, audit_id, format, flagged_only, sort
        )
    )
    media = "text/csv" if format == "csv" else "application/x-ndjson"
    name = f"{audit_id}.{format}"
    return StreamingResponse(
        lines,
        media_type=f"{media}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.delete(
    "/{dataset_id}/audits/{audit_id}",
    status_code=204,
    summary="Delete an audit",
    responses={409: ERROR_RESPONSES[404] | {"description": "Still running."}},
)
def delete_audit(dataset_id: str, audit_id: str, ctx: Ctx, tenant: TenantId) -> Response:
    with ctx.db.session() as s:
        service.delete_audit(s, tenant, dataset_id, audit_id)
    return Response(status_code=204)
