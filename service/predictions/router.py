from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from nmtune.service.deps import Ctx, TenantId
from nmtune.service.errors import ERROR_RESPONSES
from nmtune.service.ops.fast_json import FastJSONRoute
from nmtune.service.predictions import service
from nmtune.service.predictions.schemas import (
    ClassifyRequest,
    ClassifyResponse,
    EmbeddingsRequest,
    EmbeddingsResponse,
    PredictRequest,
    PredictResponse,
)

# FastJSONRoute: the float matrices of these bodies decoded by pydantic-core (same objects)
router = APIRouter(
    prefix="/v1/heads",
    tags=["predictions"],
    responses=ERROR_RESPONSES,
    route_class=FastJSONRoute,
)


@router.post(
    "/{head_id}/predict",
    summary="Predict labels and class probabilities",
    response_model=PredictResponse,
    responses={
        409: ERROR_RESPONSES[404] | {"description": "Head not ready, or its backbone changed."}
    },
)
async def predict(head_id: str, body: PredictRequest, ctx: Ctx, tenant: TenantId) -> Response:
    """`inputs` are embedded with the head's own backbone through the cache (a warm cache
    makes no backend call); `embeddings` must have the head's dimension and be finite."""
    out = await service.predict(
        body,
        tenant,
        head_id,
        db=ctx.db,
        registry=ctx.registry,
        cache=ctx.cache,
        head_cache=ctx.head_cache,
        settings=ctx.settings,
    )
    # hot path: serialise the already-validated model once (no second validation pass)
    return Response(content=out.model_dump_json(), media_type="application/json")


#: OpenAI-compatible serving (the official `openai` client works against it unchanged)
openai_router = APIRouter(
    prefix="/v1", tags=["openai"], responses=ERROR_RESPONSES, route_class=FastJSONRoute
)


@openai_router.post(
    "/embeddings",
    summary="OpenAI-compatible embeddings: a head's adapted features",
    responses={
        409: ERROR_RESPONSES[404] | {"description": "Head not ready, or its backbone changed."}
    },
)
async def create_embeddings(
    body: EmbeddingsRequest, ctx: Ctx, tenant: TenantId
) -> EmbeddingsResponse:
    """`model` is a head id; each input is embedded by the head's backbone (through the
    cache) and returned as the head's adapted features z, the features its classifier
    reads: `openai.OpenAI(base_url=".../v1", api_key=<nmtune key>).embeddings.create(
    model=head_id, input=[...])`."""
    return await service.adapted_embeddings(
        body,
        tenant,
        db=ctx.db,
        registry=ctx.registry,
        cache=ctx.cache,
        head_cache=ctx.head_cache,
        settings=ctx.settings,
    )


@openai_router.post(
    "/classify",
    summary="Classify plain texts with a head (`model` = head id)",
    responses={
        409: ERROR_RESPONSES[404] | {"description": "Head not ready, or its backbone changed."}
    },
)
async def classify(body: ClassifyRequest, ctx: Ctx, tenant: TenantId) -> ClassifyResponse:
    """The shape embedding servers use for classification (`{model, input}` in, one
    `{label, score, scores}` per text out); the same head and cache as
    POST /v1/heads/{id}/predict."""
    return await service.classify_texts(
        body,
        tenant,
        db=ctx.db,
        registry=ctx.registry,
        cache=ctx.cache,
        head_cache=ctx.head_cache,
        settings=ctx.settings,
    )
