from __future__ import annotations

from typing import Annotated, Literal

from anyio import to_thread
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from nmtune.service.deps import Ctx, TenantId
from nmtune.service.diagnostics import service
from nmtune.service.diagnostics.schemas import DatasetSpectrum, HeadSpectrum, SpectrumPending
from nmtune.service.diagnostics.svg import spectrum_svg
from nmtune.service.errors import ERROR_RESPONSES

router = APIRouter(tags=["diagnostics"], responses=ERROR_RESPONSES)

_SVG = {"content": {"image/svg+xml": {"schema": {"type": "string"}}}}
Fmt = Annotated[Literal["json", "svg"], Query(description="json (default) or an svg plot")]


@router.get(
    "/v1/datasets/{dataset_id}/spectrum",
    summary="Spectrum of a dataset split under a backbone",
    response_model=DatasetSpectrum,
    responses={
        200: _SVG,
        202: {
            "model": SpectrumPending,
            "description": "Not cached yet: a job is embedding the split.",
        },
    },
)
async def dataset_spectrum(
    dataset_id: str,
    ctx: Ctx,
    tenant: TenantId,
    backbone: Annotated[str, Query(min_length=1, max_length=200)],
    split: Annotated[str, Query(min_length=1, max_length=80)] = "train",
    center: bool = True,
    normalize: bool = False,
    max_samples: Annotated[int | None, Query(ge=2, le=1_000_000)] = None,
    format: Fmt = "json",
) -> Response:
    """Singular values, SVE, LSVR and effective rank of the split's backbone features
    (columns centred by default). Embeds through the cache: if anything is missing a job is
    queued and 202 returned with its id; ask again when it has succeeded."""
    out = await service.dataset_spectrum(
        tenant,
        dataset_id,
        split,
        backbone,
        center,
        normalize,
        max_samples,
        db=ctx.db,
        registry=ctx.registry,
        cache=ctx.cache,
        queue=ctx.queue,
        settings=ctx.settings,
    )
    if isinstance(out, SpectrumPending):
        return JSONResponse(status_code=202, content=out.model_dump())
    if format == "svg":
        svg = spectrum_svg(
            f"{dataset_id} / {split} / {backbone}", {"raw": out.spectrum.model_dump()}
        )
        return Response(svg, media_type="image/svg+xml")
    return JSONResponse(out.model_dump())


@router.get(
    "/v1/heads/{head_id}/spectrum",
    summary="Spectrum of a head's raw vs adapted features on a split",
    response_model=HeadSpectrum,
    responses={200: _SVG},
)
async def head_spectrum(
    head_id: str,
    ctx: Ctx,
    tenant: TenantId,
    split: Annotated[
        str | None, Query(max_length=80, description="Default: test, else validation, else train")
    ] = None,
    format: Fmt = "json",
) -> Response:

    def _read() -> HeadSpectrum:
        with ctx.db.session() as s:
            return service.head_spectrum(s, tenant, head_id, split)

    out = await to_thread.run_sync(_read)
    if format == "svg":
        svg = spectrum_svg(
            f"head {head_id} / {out.split}",
            {"raw": out.raw.model_dump(), "adapted": out.adapted.model_dump()},
        )
        return Response(svg, media_type="image/svg+xml")
    return JSONResponse(out.model_dump())
