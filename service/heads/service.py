from __future__ import annotations

import hashlib
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters import EmbeddingBackend
from service.datasets import repository as datasets_repo
from service.db.base import new_id
from service.errors import Conflict, NotFound, ValidationFailed
from service.heads import repository as repo
from service.heads.models import Head
from service.heads.schemas import HeadCreate, HeadOut, HeadPage
from service.jobs import repository as jobs_repo
from service.jobs.models import Job
from service.jobs.service import to_out as job_out
from tuner import ConfigError, resolve_config


def to_out(head: Head, job_id: str | None) -> HeadOut:
    return HeadOut(
        id=head.id,
        name=head.name,
        dataset_id=head.dataset_id,
        backbone=head.backbone,
        backbone_identity=head.backbone_identity,
        method=head.method,  # type: ignore[arg-type]
        preset=head.preset,
        overrides=dict(head.overrides or {}),
        seed=head.seed,
        status=head.status,  # type: ignore[arg-type]
        classes=head.classes,
        dim=head.dim,
        config=head.config,
        metrics=head.metrics,
        spectra=head.spectra,
        job_id=job_id,
        created_at=head.created_at,
        trained_at=head.trained_at,
    )


_UNKNOWN_FIELD = re.compile(r"unknown config field '([^']+)'")


def _config_error_field(message: str, overrides: dict[str, Any]) -> str:
    """The request field a tuner ConfigError is about: `preset` or `overrides.<name>`."""
    if message.startswith("unknown preset"):
        return "preset"
    m = _UNKNOWN_FIELD.search(message)
    if m:
        return f"overrides.{m.group(1)}"
    first = message.split(" ", 1)[0]
    if first in overrides:
        return f"overrides.{first}"
    return "overrides"


def check_config(method: str, preset: str, overrides: dict[str, Any]) -> None:
    try:
        resolve_config(method, preset, overrides)
    except ConfigError as exc:
        path = _config_error_field(str(exc), overrides)
        raise ValidationFailed(f"{path}: {exc}", field=path) from exc


def request_digest(body: HeadCreate) -> str:
    return hashlib.sha256(body.model_dump_json().encode("utf-8")).hexdigest()


def replay(session: Session, tenant_id: str, key: str, body: HeadCreate) -> tuple[Head, Job] | None:
    """The head (and its first job) created earlier with this `Idempotency-Key`, if any."""
    head = session.scalar(
        select(Head).where(Head.tenant_id == tenant_id, Head.idempotency_key == key)
    )
    if head is None:
        return None
    if head.request_sha256 != request_digest(body):
        raise Conflict(
            "Idempotency-Key: this key was used for a different request; use a new key",
            field="Idempotency-Key",
        )
    job = session.scalar(select(Job).where(Job.head_id == head.id).order_by(Job.created_at))
    if job is None:
        raise Conflict("Idempotency-Key: the job of that request is gone", field="Idempotency-Key")
    return head, job


def create_head(
    session: Session,
    tenant_id: str,
    body: HeadCreate,
    backend: EmbeddingBackend,
    idempotency_key: str | None = None,
) -> tuple[Head, Job]:
    ds = datasets_repo.get(session, tenant_id, body.dataset_id)
    if ds is None:
        raise NotFound(f"dataset {body.dataset_id!r} not found", field="dataset_id")
    if backend.modality != ds.modality:
        raise ValidationFailed(
            f"backbone: {body.backbone!r} embeds {backend.modality}, "
            f"the dataset holds {ds.modality}",
            field="backbone",
        )
    check_config(body.method, body.preset, body.overrides)
    head = Head(
        id=new_id("hd"),
        tenant_id=tenant_id,
        dataset_id=ds.id,
        name=body.name,
        backbone=body.backbone,
        backbone_identity=backend.identity,
        method=body.method,
        preset=body.preset,
        overrides=body.overrides,
        seed=body.seed,
        status="pending",
        idempotency_key=idempotency_key,
        request_sha256=request_digest(body) if idempotency_key else None,
    )
    session.add(head)
    session.flush()
    job = Job(
        id=new_id("job"),
        tenant_id=tenant_id,
        kind="train",
        head_id=head.id,
        dataset_id=ds.id,
        params={"backbone": body.backbone, "method": body.method},
        status="queued",
        stage=None,
        progress_done=0,
        progress_total=0,
        epochs=[],
        attempts=0,
        cancel_requested=False,
    )
    session.add(job)
    session.flush()
    return head, job


def created_out(head: Head, job: Job) -> dict[str, Any]:
    return {"head": to_out(head, job.id), "job": job_out(job)}


def get_head(session: Session, tenant_id: str, head_id: str) -> Head:
    head = repo.get(session, tenant_id, head_id)
    if head is None:
        raise NotFound(f"head {head_id!r} not found", field="head_id")
    return head


def head_out(session: Session, head: Head) -> HeadOut:
    return to_out(head, repo.latest_job_id(session, head.id))


def list_heads(
    session: Session, tenant_id: str, limit: int, offset: int, dataset_id: str | None
) -> HeadPage:
    items, total = repo.page(session, tenant_id, limit, offset, dataset_id)
    return HeadPage(
        items=[head_out(session, h) for h in items], total=total, limit=limit, offset=offset
    )


def delete_head(session: Session, tenant_id: str, head_id: str) -> None:
    head = get_head(session, tenant_id, head_id)
    busy = jobs_repo.unfinished_for(session, head_id=head.id)
    if busy:
        raise Conflict(f"head {head_id!r} is being trained by job {busy[0].id}; cancel it first")
    session.delete(head)
