from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from nmtune.service.backbones.service import describe_all
from nmtune.service.deps import Ctx, TenantId
from nmtune.service.errors import ERROR_RESPONSES
from nmtune.service.json_types import Scalar

router = APIRouter(prefix="/v1/backbones", tags=["backbones"], responses=ERROR_RESPONSES)


class BackboneLimits(BaseModel):
    max_inputs_per_request: int
    max_tokens_per_request: int | None
    max_tokens_per_input: int | None
    max_concurrency: int


class BackboneUsage(BaseModel):
    """This tenant's usage since this API process started: requests sent, inputs embedded,
    tokens, retries, failures (work done by other processes, e.g. Celery workers, is not
    counted here)."""

    requests: int
    inputs: int
    tokens: int
    retries: int
    failures: int


class BackboneOut(BaseModel):
    name: str
    kind: str
    modality: str = Field(description="text or image.")
    dim: int | None = Field(description="Vector size (null until the backbone first loads).")
    identity: str = Field(description="What the cache and heads are keyed on.")
    device: str | None = Field(default=None, description="Local backbones: where they run.")
    limits: BackboneLimits
    usage: BackboneUsage
    config: dict[str, Scalar | list[Scalar] | dict[str, Scalar]] = Field(
        description="The backbone's configuration, secrets masked."
    )


class BackboneList(BaseModel):
    items: list[BackboneOut] = Field(
        description="Configured backbones: name, kind, modality, model, limits; never secrets."
    )


@router.get("", summary="List configured backbones (never their secrets)")
def list_backbones(ctx: Ctx, tenant: TenantId) -> BackboneList:
    items = describe_all(ctx.registry, lambda name: ctx.cache.usage_of(tenant, name))
    return BackboneList.model_validate({"items": items})
