from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from nmtune.adapters import BackendRegistry
from nmtune.service.backbones.service import check_modality, get_backend
from nmtune.service.datasets import service as datasets_service
from nmtune.service.datasets.models import Dataset
from nmtune.service.datasets.service import load_examples
from nmtune.service.db.session import Database
from nmtune.service.diagnostics.schemas import (
    DatasetSpectrum,
    HeadSpectrum,
    SpectrumOut,
    SpectrumPending,
)
from nmtune.service.embeddings.service import EmbeddingCache
from nmtune.service.errors import Conflict, NotFound, ValidationFailed
from nmtune.service.heads import service as heads_service
from nmtune.service.heads.models import HeadStatus
from nmtune.service.jobs import repository as jobs_repo
from nmtune.service.jobs import service as jobs_service
from nmtune.service.jobs.models import JobKind
from nmtune.service.jobs.runner import JobQueue
from nmtune.service.settings import Settings
from nmtune.service.spectra import SpectrumOptions, summarize_spectrum
from nmtune.service.ttl_cache import TTLCache

_CORE = ("singular_values", "sve", "lsvr", "effective_rank", "n_samples", "n_features")


#: Dataset split spectra computed in this process (datasets are immutable; a deleted one
#: is refused before the cache is read).
_SPECTRA: TTLCache[tuple[str, str, str, str, bool, bool, int], SpectrumOut] = TTLCache(
    256, 24 * 3600.0
)


def spectrum_out(d: dict[str, Any]) -> SpectrumOut:
    opts: dict[str, Any] = {k: d[k] for k in ("center", "normalize", "max_samples") if k in d}
    opts.update(d.get("options", {}) if isinstance(d.get("options"), dict) else {})
    extra = {
        k: None if v is None else float(v)
        for k, v in d.items()
        if k not in _CORE
        and k != "options"
        and k not in ("center", "normalize", "max_samples")
        and (v is None or isinstance(v, int | float))
    }
    return SpectrumOut(
        singular_values=[float(v) for v in d.get("singular_values", [])],
        sve=float(d["sve"]),
        lsvr=float(d["lsvr"]),
        effective_rank=float(d["effective_rank"]),
        n_samples=int(d["n_samples"]),
        n_features=int(d.get("n_features", 0)),
        options=SpectrumOptions.model_validate(opts),
        extra=extra,
    )


async def dataset_spectrum(
    tenant_id: str,
    dataset_id: str,
    split: str,
    backbone: str,
    center: bool,
    normalize: bool,
    max_samples: int | None,
    *,
    db: Database,
    registry: BackendRegistry,
    cache: EmbeddingCache,
    queue: JobQueue,
    settings: Settings,
) -> DatasetSpectrum | SpectrumPending:
    """200 with the spectrum when the split is cached; else a job embeds it (202)."""

    def _dataset() -> Dataset:
        with db.session() as s:
            ds = datasets_service.get_dataset(s, tenant_id, dataset_id)
            s.expunge(ds)
            return ds

    ds = await asyncio.to_thread(_dataset)
    modality, splits = ds.modality, dict(ds.counts.get("splits", {}))
    if split not in splits:
        raise ValidationFailed(
            f"split: dataset has no split {split!r} (has: {', '.join(sorted(splits))})",
            field="split",
        )
    cap = min(max_samples or settings.max_spectrum_samples, settings.max_spectrum_samples)
    if ds.backbone_identity is not None:  # a vector dataset: its own vectors, no backbone
        if backbone != ds.backbone:
            raise ValidationFailed(
                f"backbone: the dataset holds vectors of {ds.backbone!r}; ask for that",
                field="backbone",
            )
        ex = await asyncio.to_thread(load_examples, db, dataset_id)
        rows = np.flatnonzero(np.asarray(ex.splits) == split)
        xv = (await asyncio.to_thread(datasets_service.load_vectors, db, ds))[rows]
        d = await asyncio.to_thread(
            summarize_spectrum, xv, cap, 0, center=center, normalize=normalize
        )
        return DatasetSpectrum(
            dataset_id=dataset_id, split=split, backbone=backbone, spectrum=spectrum_out(d)
        )
    backend = await get_backend(registry, backbone)
    check_modality(backend, backbone, modality)
    cap = min(max_samples or settings.max_spectrum_samples, settings.max_spectrum_samples)
    # a dataset never changes: its split's spectrum under one backbone identity and options
    # is computed once (the dataset's existence was checked above)
    key = (tenant_id, dataset_id, split, backend.identity, center, normalize, cap)
    hit = _SPECTRA.get(key)
    if hit is not None:
        return DatasetSpectrum(dataset_id=dataset_id, split=split, backbone=backbone, spectrum=hit)
    ex = await asyncio.to_thread(load_examples, db, dataset_id, [split])
    # the dataset's snapshot when a head or audit stored one, else one bulk cache read
    x = await cache.cached_dataset(
        tenant_id, (dataset_id, ds.n_examples), backend, ex.keys, ex.positions
    )
    if x is None:
        job_id = await _embed_job(db, queue, tenant_id, dataset_id, split, backbone)
        return SpectrumPending(status="embedding", job_id=job_id)
    d = await asyncio.to_thread(summarize_spectrum, x, cap, 0, center=center, normalize=normalize)
    out = spectrum_out(d)
    _SPECTRA.put(key, out)
    return DatasetSpectrum(dataset_id=dataset_id, split=split, backbone=backbone, spectrum=out)


async def _embed_job(
    db: Database, queue: JobQueue, tenant_id: str, dataset_id: str, split: str, backbone: str
) -> str:
    """The id of the unfinished embed job of this dataset, or of a new one (submitted)."""
    await queue.check()

    def _find_or_create() -> tuple[str, bool]:
        with db.session() as s:
            existing = jobs_repo.unfinished(
                s, tenant_id=tenant_id, kind=JobKind.EMBED, dataset_id=dataset_id
            )
            if existing:
                return existing[0].id, False
            queue.enforce_quota(s, tenant_id)
            params = {"backbone": backbone, "split": split}
            job = jobs_service.new_job(
                s, tenant_id, JobKind.EMBED, dataset_id=dataset_id, params=params
            )
            return job.id, True

    job_id, created = await asyncio.to_thread(_find_or_create)
    if created:
        await queue.submit(job_id)
    return job_id


def head_spectrum(
    session: Session, tenant_id: str, head_id: str, split: str | None
) -> HeadSpectrum:
    head = heads_service.get_head(session, tenant_id, head_id)
    if head.status != HeadStatus.READY or not head.spectra:
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
