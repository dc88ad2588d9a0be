from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from service.backbones.service import get_backend
from service.datasets import service as datasets_service
from service.db.base import new_id
from service.diagnostics.schemas import (
    DatasetSpectrum,
    HeadSpectrum,
    SpectrumOut,
    SpectrumPending,
)
from service.errors import Conflict, NotFound, ValidationFailed
from service.heads import service as heads_service
from service.jobs.executor import load_examples
from service.jobs.models import Job
from tuner import spectrum

if TYPE_CHECKING:
    from service.context import AppContext

_CORE = ("singular_values", "sve", "lsvr", "effective_rank", "n_samples", "n_features")


def spectrum_out(d: dict[str, Any]) -> SpectrumOut:
    opts: dict[str, Any] = {k: d[k] for k in ("center", "normalize", "max_samples") if k in d}
    opts.update(d.get("options", {}) if isinstance(d.get("options"), dict) else {})
    extra = {
        k: v
        for k, v in d.items()
        if k not in _CORE and k != "options" and k not in ("center", "normalize", "max_samples")
    }
    return SpectrumOut(
        singular_values=[float(v) for v in d.get("singular_values", [])],
        sve=float(d["sve"]),
        lsvr=float(d["lsvr"]),
        effective_rank=float(d["effective_rank"]),
        n_samples=int(d["n_samples"]),
        n_features=int(d.get("n_features", 0)),
        options=opts,
        extra=extra,
    )


async def dataset_spectrum(
    ctx: AppContext,
    tenant_id: str,
    dataset_id: str,
    split: str,
    backbone: str,
    center: bool,
    normalize: bool,
    max_samples: int | None,
) -> DatasetSpectrum | SpectrumPending:
    """200 with the spectrum when the split is cached; else a job embeds it (202)."""
    with ctx.db.session() as s:
        ds = datasets_service.get_dataset(s, tenant_id, dataset_id)
        splits = ds.counts.get("splits", {})
    if split not in splits:
        raise ValidationFailed(
            f"split: dataset has no split {split!r} (has: {', '.join(sorted(splits))})",
            field="split",
        )
    backend = await get_backend(ctx, backbone)
    if backend.modality != ds.modality:
        raise ValidationFailed(
            f"backbone: {backbone!r} embeds {backend.modality}, the dataset holds {ds.modality}",
            field="backbone",
        )
    ex = await asyncio.to_thread(load_examples, ctx.db, dataset_id, [split])
    x = await ctx.cache.cached(tenant_id, backend.identity, ex.keys)  # one bulk read
    if x is None:
        return await _embed_job(ctx, tenant_id, dataset_id, split, backbone)
    cap = min(max_samples or ctx.settings.max_spectrum_samples, ctx.settings.max_spectrum_samples)
    spec = spectrum(x, center=center, normalize=normalize, max_samples=cap, random_state=0)
    d = spec.to_dict()
    d["singular_values"] = [float(v) for v in np.asarray(d["singular_values"])[:256]]
    return DatasetSpectrum(
        dataset_id=dataset_id, split=split, backbone=backbone, spectrum=spectrum_out(d)
    )


async def _embed_job(
    ctx: AppContext, tenant_id: str, dataset_id: str, split: str, backbone: str
) -> SpectrumPending:
    await ctx.runner_check()
    with ctx.db.session() as s:
        existing = s.scalar(
            select(Job.id).where(
                Job.tenant_id == tenant_id,
                Job.kind == "embed",
                Job.dataset_id == dataset_id,
                Job.status.in_(("queued", "running")),
            )
        )
        if existing:
            return SpectrumPending(status="embedding", job_id=existing)
        job = Job(
            id=new_id("job"),
            tenant_id=tenant_id,
            kind="embed",
            dataset_id=dataset_id,
            params={"backbone": backbone, "split": split},
            status="queued",
            epochs=[],
            progress_done=0,
            progress_total=0,
            attempts=0,
            cancel_requested=False,
        )
        s.add(job)
        job_id = job.id
    await ctx.submit(job_id)
    return SpectrumPending(status="embedding", job_id=job_id)


def head_spectrum(ctx: AppContext, tenant_id: str, head_id: str, split: str | None) -> HeadSpectrum:
    with ctx.db.session() as s:
        head = heads_service.get_head(s, tenant_id, head_id)
        if head.status != "ready" or not head.spectra:
            raise Conflict(
                f"head {head_id!r} is {head.status}; spectra exist once it is ready",
                field="head_id",
            )
        spectra = dict(head.spectra)
    if split is None:
        split = next((k for k in ("test", "validation", "train") if k in spectra), None) or next(
            iter(spectra)
        )
    if split not in spectra:
        raise NotFound(
            f"split: no spectrum for split {split!r} (has: {', '.join(spectra)})", field="split"
        )
    entry = spectra[split]
    return HeadSpectrum(
        head_id=head_id,
        split=split,
        raw=spectrum_out(entry["raw"]),
        adapted=spectrum_out(entry["adapted"]),
    )
