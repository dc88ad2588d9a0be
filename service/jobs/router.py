from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from nmtune.service.deps import Ctx, TenantId
from nmtune.service.errors import ERROR_RESPONSES
from nmtune.service.jobs import service
from nmtune.service.jobs.models import TERMINAL, JobKind, JobStatus
from nmtune.service.jobs.schemas import JobOut, JobPage

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES)


@router.get("", summary="List jobs, newest first, with filters and a cursor")
def list_jobs(
    ctx: Ctx,
    tenant: TenantId,
    status: Annotated[
        list[JobStatus] | None,
        Query(description="Only jobs in these statuses (repeat the parameter for several)."),
    ] = None,
    kind: Annotated[JobKind | None, Query(description="Only jobs of this kind.")] = None,
    head_id: Annotated[
        str | None, Query(max_length=80, description="Only the jobs of this head.")
    ] = None,
    dataset_id: Annotated[
        str | None, Query(max_length=80, description="Only the jobs of this dataset.")
    ] = None,
    after: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=80,
            description="Cursor: the `next_after` of the previous page (a job id).",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JobPage:
    """Pages are stable under inserts: a job created meanwhile never shifts a page (it is
    newer than every cursor). `has_more` says whether to ask again with `after`."""
    with ctx.db.session() as s:
        return service.list_jobs(
            s,
            tenant,
            limit,
            after=after,
            statuses=status,
            kind=kind,
            head_id=head_id,
            dataset_id=dataset_id,
        )


@router.get("/{job_id}", summary="Job status, stage, progress, per-epoch losses, error")
def get_job(job_id: str, ctx: Ctx, tenant: TenantId) -> JobOut:
    with ctx.db.session() as s:
        return service.to_out(service.get_job(s, tenant, job_id))


@router.post(
    "/{job_id}/cancel",
    summary="Cancel a job",
    description="A queued job is cancelled at once; a running one stops between "
    "embedding batches or epochs. Cancelling a finished job changes nothing.",
)
def cancel_job(job_id: str, ctx: Ctx, tenant: TenantId) -> JobOut:
    with ctx.db.session() as s:
        return service.cancel_job(s, ctx.handlers, tenant, job_id)


@router.get(
    "/{job_id}/events",
    summary="Server-sent events: the job, each time it changes, until it finishes",
    description="At most `max_streams_per_tenant` streams per tenant at once (429 beyond).",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`event: job` messages with the JobOut JSON as data.",
        }
    },
)
async def job_events(
    job_id: str, request: Request, ctx: Ctx, tenant: TenantId
) -> StreamingResponse:
    def _load() -> JobOut:
        with ctx.db.session() as s:
            return service.to_out(service.get_job(s, tenant, job_id))

    first = await asyncio.to_thread(_load)  # 404 before the stream starts
    ctx.streams.check(tenant)  # 429 over max_streams_per_tenant, before the stream starts

    async def stream() -> AsyncIterator[str]:
        last = ""
        job = first
        with ctx.streams.slot(tenant):
            while True:
                body = job.model_dump_json()
                if body != last:
                    yield f"event: job\ndata: {body}\n\n"
                    last = body
                if job.status in TERMINAL or await request.is_disconnected():
                    yield f"event: end\ndata: {json.dumps({'status': job.status})}\n\n"
                    return
                await asyncio.sleep(0.5)
                job = await asyncio.to_thread(_load)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
