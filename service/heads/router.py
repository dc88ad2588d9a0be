from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Header, Query, Response
from fastapi import Path as PathParam

from nmtune.service.deps import Ctx, TenantId
from nmtune.service.errors import ERROR_RESPONSES
from nmtune.service.heads import export, service
from nmtune.service.heads.schemas import (
    ClassMetricsPage,
    HeadCreate,
    HeadCreated,
    HeadOut,
    HeadPage,
)

router = APIRouter(prefix="/v1/heads", tags=["heads"], responses=ERROR_RESPONSES)


@router.post(
    "",
    status_code=202,
    summary="Train a head (returns at once with the job)",
    responses={503: ERROR_RESPONSES[404] | {"description": "The job queue is down."}},
)
async def create_head(
    body: HeadCreate,
    ctx: Ctx,
    tenant: TenantId,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            description="Retry-safe creation: a repeated request with the same key returns the "
            "first head and job instead of training again (409 if the body differs).",
        ),
    ] = None,
) -> HeadCreated:
    """Create a head and queue its training job: embed the dataset through the cache, train
    with the chosen method and preset, evaluate every split, store the weights. Poll
    GET /v1/jobs/{job_id} or stream /v1/jobs/{job_id}/events."""
    return await service.submit_head(
        body,
        tenant,
        idempotency_key,
        db=ctx.db,
        registry=ctx.registry,
        queue=ctx.queue,
        max_train_work=ctx.settings.max_train_work,
    )


@router.get("", summary="List heads")
def list_heads(
    ctx: Ctx,
    tenant: TenantId,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    dataset_id: Annotated[str | None, Query(max_length=80)] = None,
    after: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=80,
            description="Cursor: the `next_after` of the previous page (offset then counts "
            "from it).",
        ),
    ] = None,
) -> HeadPage:
    with ctx.db.session() as s:
        return service.list_heads(
            s, tenant, limit, offset, dataset_id, after, ctx.settings.list_per_class_max
        )


@router.get("/{head_id}", summary="A head: resolved config, metrics per split, spectra")
def get_head(head_id: str, ctx: Ctx, tenant: TenantId) -> HeadOut:
    """Splits with more labels than `head_per_class_max` carry no per_class /
    confusion_matrix (`per_class_omitted`): page them with GET
    /v1/heads/{head_id}/metrics/{split}."""
    with ctx.db.session() as s:
        head = service.get_head(s, tenant, head_id)
        return service.head_out(s, head, ctx.settings.head_per_class_max)


@router.get(
    "/{head_id}/metrics/{split}",
    summary="One split's per-class metrics and confusion-matrix rows, paged by label",
    responses={409: ERROR_RESPONSES[404] | {"description": "Head not ready."}},
)
def head_class_metrics(
    head_id: str,
    split: Annotated[str, PathParam(min_length=1, max_length=80)],
    ctx: Ctx,
    tenant: TenantId,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> ClassMetricsPage:
    with ctx.db.session() as s:
        return service.class_metrics_page(s, tenant, head_id, split, limit, offset)


@router.delete(
    "/{head_id}",
    status_code=204,
    summary="Delete a head",
    responses={409: ERROR_RESPONSES[404] | {"description": "Still training."}},
)
def delete_head(head_id: str, ctx: Ctx, tenant: TenantId) -> Response:
    with ctx.db.session() as s:
        service.delete_head(s, tenant, head_id)
    ctx.head_cache.forget(head_id)
    return Response(status_code=204)


@router.get(
    "/{head_id}/export",
    summary="Download a trained head: safetensors + JSON (+ ONNX), runnable without the server",
    response_class=Response,
    responses={
        200: {
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "description": "A zip: head.json (record, config, plan of operations), "
            "weights.safetensors (float32 tensors the plan names), labels.json, head.onnx "
            "(features -> probabilities, logits, adapted), tuner.safetensors (the server's "
            "own blob). Load it with `nmtune.load_head(path)` (numpy only).",
        },
        409: ERROR_RESPONSES[404] | {"description": "Head not ready."},
    },
)
async def export_head(head_id: str, ctx: Ctx, tenant: TenantId) -> Response:
    """The head's adapter and classifier as plain tensors and a plan of operations: equal
    predictions offline to 1e-5 (see the README's "Export and offline use")."""
    data = await to_thread.run_sync(export.export_zip, ctx.db, tenant, head_id)
    return Response(
        content=data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{head_id}.zip"'},
    )
