from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from service.backbones.service import describe_all
from service.deps import Ctx, TenantId
from service.errors import ERROR_RESPONSES

router = APIRouter(prefix="/v1/backbones", tags=["backbones"], responses=ERROR_RESPONSES)


class BackboneList(BaseModel):
    items: list[dict[str, Any]] = Field(
        description="Configured backbones: name, kind, modality, model, limits; never secrets."
    )


@router.get("", summary="List configured backbones (never their secrets)")
def list_backbones(ctx: Ctx, _tenant: TenantId) -> BackboneList:
    return BackboneList(items=describe_all(ctx.registry))
