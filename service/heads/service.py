"""The heads domain: create, read, delete heads; every head status change happens here."""

from __future__ import annotations

import hashlib
from typing import Any

from anyio import to_thread
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nmtune.adapters import AdapterError, BackendRegistry, EmbeddingBackend
from nmtune.service.audits import service as audits_service
from nmtune.service.backbones.service import check_modality, known_backend
from nmtune.service.datasets import repository as datasets_repo
from nmtune.service.datasets.models import Dataset
from nmtune.service.db.base import new_id, utcnow
from nmtune.service.db.session import Database
from nmtune.service.errors import Conflict, NotFound, ValidationFailed
from nmtune.service.heads import repository as repo
from nmtune.service.heads.models import Head, HeadStatus
from nmtune.service.heads.records import HeadConfigOut
from nmtune.service.heads.schemas import (
    ClassMetricsPage,
    ClassMetricsRow,
    HeadCreate,
    HeadCreated,
    HeadOut,
    HeadPage,
)
from nmtune.service.jobs import repository as jobs_repo
from nmtune.service.jobs import service as jobs_service
from nmtune.service.jobs.handlers import JobFailed
from nmtune.service.jobs.models import Job, JobKind, JobStatus
from nmtune.service.jobs.runner import JobQueue
from nmtune.tuner import ConfigError, resolve_config
from nmtune.tuner.budget import training_work
from nmtune.tuner.config import HeadConfig


def summarized_metrics(metrics: dict[str, Any] | None, max_classes: int) -> dict[str, Any] | None:
    """``metrics`` with each split's per_class and confusion_matrix (which grow with the
    classes, squared) left out where a split has more than ``max_classes`` labels
    (``per_class_omitted`` true). GET /v1/heads/{id} keeps them."""
    if not metrics:
        return metrics
    out: dict[str, Any] = {}
    for split, m in metrics.items():
        if isinstance(m, dict) and "per_class" in m and len(m.get("labels") or ()) > max_classes:
            m = dict(m, per_class={}, confusion_matrix=[], per_class_omitted=True)
        out[split] = m
    return out


def to_out(head: Head, job_id: str | None, per_class_max: int | None = None) -> HeadOut:
    metrics = head.metrics
    if per_class_max is not None:
        metrics = summarized_metrics(metrics, per_class_max)
    return HeadOut(
        id=head.id,
        name=head.name,
        dataset_id=head.dataset_id,
        backbone=head.backbone,
        backbone_identity=head.backbone_identity,
        method=head.method,
        preset=head.preset,
        overrides=dict(head.overrides or {}),
        seed=head.seed,
        metadata=dict(head.user_metadata or {}),
        status=HeadStatus(head.status),
        classes=head.classes,
        dim=head.dim,
        config=HeadConfigOut.model_validate(head.config) if head.config else None,
        metrics=metrics,
        spectra=head.spectra,
        job_id=job_id,
        created_at=head.created_at,
        trained_at=head.trained_at,
    )


def config_error_field(exc: ConfigError) -> str:
    """The request field a tuner ConfigError is about: method, preset or overrides.<name>."""
    if exc.field in ("method", "preset"):
        return exc.field
    if exc.field is None or exc.field == "overrides":
        return "overrides"
    return f"overrides.{exc.field}"


def check_config(method: str, preset: str, overrides: dict[str, Any]) -> HeadConfig:
    if "seed" in overrides:  # the head's seed is a request field of its own (HeadCreate.seed)
        raise ValidationFailed(
            "overrides.seed: set the seed with the request's `seed` field, not an override",
            field="overrides.seed",
        )
    try:
        return resolve_config(method, preset, overrides)
    except ConfigError as exc:
        path = config_error_field(exc)
        raise ValidationFailed(f"{path}: {exc}", field=path) from exc


#: the dimension assumed for the budget when a remote backbone's is not known yet
BUDGET_DEFAULT_DIM = 1024


def check_budget(
    config: HeadConfig,
    body: HeadCreate,
    ds: Dataset,
    backend: EmbeddingBackend | None,
    max_train_work: float,
) -> None:
    """422 if the overrides raise the estimated training work (``tuner.budget``) above
    ``max_train_work`` and above the same job without overrides (defaults always pass)."""
    if not body.overrides:
        return
    splits = ds.counts.get("splits", {})
    train = splits.get("train")
    n_rows = int(sum(train.values())) if isinstance(train, dict) else int(ds.n_examples)
    n_classes = len(ds.counts.get("classes", [])) or 2
    dim = ds.dim
    if dim is None and backend is not None:
        try:
            dim = backend.dim
        except (AdapterError, AttributeError):
            dim = None
    dim = int(dim or BUDGET_DEFAULT_DIM)
    work = training_work(config, n_rows, dim, n_classes)
    if work.total <= max_train_work:
        return
    baseline = training_work(resolve_config(body.method, body.preset, {}), n_rows, dim, n_classes)
    if work.total <= baseline.total:
        return
    named = [f"overrides.{k}" for k in body.overrides if k in work.fields] or ["overrides"]
    raise ValidationFailed(
        f"{', '.join(named)}: the estimated training work, {work.total:.3g} multiply-adds "
        f"({work.explanation}), exceeds the compute budget max_train_work "
        f"{max_train_work:.3g}; lower {', '.join(n.removeprefix('overrides.') for n in named)}",
        field=named[0],
    )


def request_digest(body: HeadCreate) -> str:
    # empty metadata is left out: keys stored before `metadata` existed still replay
    body_json = body.model_dump_json(exclude={"metadata"} if not body.metadata else None)
    return hashlib.sha256(body_json.encode("utf-8")).hexdigest()


def replay(session: Session, tenant_id: str, key: str, body: HeadCreate) -> tuple[Head, Job] | None:
    """The head (and its first job) created earlier with this `Idempotency-Key`, if any."""
    head = repo.by_idempotency_key(session, tenant_id, key)
    if head is None:
        return None
    if head.request_sha256 != request_digest(body):
        raise Conflict(
            "Idempotency-Key: this key was used for a different request; use a new key",
            field="Idempotency-Key",
        )
    job = jobs_repo.first_for_head(session, head.id)
    if job is None:
        raise Conflict("Idempotency-Key: the job of that request is gone", field="Idempotency-Key")
    return head, job


def vector_backbone(ds: Dataset, name: str, backend: EmbeddingBackend | None) -> str:
    """The identity a head on a vector dataset gets: the dataset's declared one. ``name`` is
    the dataset's own `backbone` name, or a configured backbone of that same identity (whose
    head can then also predict from inputs)."""
    assert ds.backbone_identity is not None
    if backend is not None and name != ds.backbone:
        if backend.identity != ds.backbone_identity:
            raise ValidationFailed(
                f"backbone: {name!r} has identity {backend.identity!r}; the dataset's vectors "
                f"come from {ds.backbone_identity!r}",
                field="backbone",
            )
        try:
            dim: int | None = backend.dim
        except AdapterError:  # a local model not loaded yet: its identity was checked
            dim = None
        if dim is not None and dim != ds.dim:
            raise ValidationFailed(
                f"backbone: {name!r} embeds {dim}-d vectors, the dataset's are {ds.dim}-d",
                field="backbone",
            )
    elif backend is None and name != ds.backbone:
        raise ValidationFailed(
            f"backbone: the dataset holds vectors of {ds.backbone!r} "
            f"({ds.backbone_identity}); name that, or a configured backbone of that identity",
            field="backbone",
        )
    return ds.backbone_identity


def create_head(
    session: Session,
    tenant_id: str,
    body: HeadCreate,
    backend: EmbeddingBackend | None,
    idempotency_key: str | None = None,
    max_train_work: float | None = None,
) -> tuple[Head, Job]:
    """``backend`` is the configured backbone of that name (None: none is; allowed only for
    a vector dataset that names the model as its `backbone`)."""
    ds = datasets_repo.get(session, tenant_id, body.dataset_id)
    if ds is None:
        raise NotFound(f"dataset {body.dataset_id!r} not found", field="dataset_id")
    if ds.backbone_identity is not None:
        identity = vector_backbone(ds, body.backbone, backend)
    else:
        if backend is None:
            raise ValidationFailed(
                f"backbone: unknown backbone {body.backbone!r}", field="backbone"
            )
        check_modality(backend, body.backbone, ds.modality)
        identity = backend.identity
    config = check_config(body.method, body.preset, body.overrides)
    if max_train_work is not None:
        check_budget(config, body, ds, backend, max_train_work)
    params: dict[str, Any] = {"backbone": body.backbone, "method": body.method}
    if body.audit_id is not None:
        audits_service.check_usable(session, tenant_id, ds.id, body.audit_id)
        params.update(audit_id=body.audit_id, audit_use=body.audit_use)
    head = Head(
        id=new_id("hd"),
        tenant_id=tenant_id,
        dataset_id=ds.id,
        name=body.name,
        backbone=body.backbone,
        backbone_identity=identity,
        method=body.method,
        preset=body.preset,
        overrides=body.overrides,
        seed=body.seed,
        user_metadata=dict(body.metadata),
        status=HeadStatus.PENDING,
        idempotency_key=idempotency_key,
        request_sha256=request_digest(body) if idempotency_key else None,
    )
    session.add(head)
    session.flush()
    job = jobs_service.new_job(
        session,
        tenant_id,
        JobKind.TRAIN,
        head_id=head.id,
        dataset_id=ds.id,
        params=params,
    )
    return head, job


def created_out(head: Head, job: Job) -> HeadCreated:
    return HeadCreated(head=to_out(head, job.id), job=jobs_service.to_out(job))


async def submit_head(
    body: HeadCreate,
    tenant_id: str,
    idempotency_key: str | None,
    *,
    db: Database,
    registry: BackendRegistry,
    queue: JobQueue,
    max_train_work: float | None = None,
) -> HeadCreated:
    """Create a head and queue its training job (or replay an earlier identical request)."""

    def _replayed() -> HeadCreated | None:
        if not idempotency_key:
            return None
        with db.session() as s:
            found = replay(s, tenant_id, idempotency_key, body)
            return created_out(*found) if found else None

    replayed = await to_thread.run_sync(_replayed)
    if replayed is not None:
        return replayed
    # not loaded here: a local backbone loads in the job (POST /v1/heads returns at once);
    # a vector dataset may name its own model, which no configured backbone is
    backend: EmbeddingBackend | None = None
    if body.backbone in registry.names() or not await to_thread.run_sync(
        _is_vector_dataset, db, tenant_id, body.dataset_id
    ):
        backend = known_backend(registry, body.backbone)  # 422: unknown backbone
    await queue.check(tenant_id)

    def _create() -> HeadCreated:
        try:
            with db.session() as s:
                out = created_out(
                    *create_head(s, tenant_id, body, backend, idempotency_key, max_train_work)
                )
        except IntegrityError:  # a concurrent request with the same key won the race
            again = _replayed()
            if again is None:
                raise
            return again
        return out

    created = await to_thread.run_sync(_create)
    await queue.submit(created.job.id)
    return created


def _is_vector_dataset(db: Database, tenant_id: str, dataset_id: str) -> bool:
    with db.session() as s:
        ds = datasets_repo.get(s, tenant_id, dataset_id)
        return ds is not None and ds.backbone_identity is not None


def get_head(session: Session, tenant_id: str, head_id: str) -> Head:
    head = repo.get(session, tenant_id, head_id)
    if head is None:
        raise NotFound(f"head {head_id!r} not found", field="head_id")
    return head


def head_out(session: Session, head: Head, per_class_max: int | None = None) -> HeadOut:
    return to_out(head, jobs_repo.latest_id_for_head(session, head.id), per_class_max)


def class_metrics_page(
    session: Session, tenant_id: str, head_id: str, split: str, limit: int, offset: int
) -> ClassMetricsPage:
    """A page of one split's per-class metrics with their confusion-matrix rows."""
    head = get_head(session, tenant_id, head_id)
    if head.status != HeadStatus.READY or not head.metrics:
        raise Conflict(
            f"head {head_id!r} is {head.status}; metrics exist once it is ready", field="head_id"
        )
    m = head.metrics.get(split)
    if not isinstance(m, dict) or "per_class" not in m:
        known = ", ".join(
            k for k, v in head.metrics.items() if isinstance(v, dict) and "per_class" in v
        )
        raise NotFound(f"split: no metrics for split {split!r} (has: {known})", field="split")
    labels = list(m.get("labels") or [])
    matrix = m.get("confusion_matrix") or []
    per_class = m.get("per_class") or {}
    rows = []
    for i in range(offset, min(offset + limit, len(labels))):
        label = labels[i]
        scores = per_class.get(str(label), {})
        rows.append(
            ClassMetricsRow(
                label=label,
                precision=float(scores.get("precision", 0.0)),
                recall=float(scores.get("recall", 0.0)),
                f1=float(scores.get("f1", 0.0)),
                support=int(scores.get("support", 0)),
                confusion=[int(x) for x in matrix[i]] if i < len(matrix) else [],
            )
        )
    return ClassMetricsPage(
        head_id=head.id,
        split=split,
        labels=labels,
        items=rows,
        total=len(labels),
        limit=limit,
        offset=offset,
        has_more=offset + limit < len(labels),
    )


def list_heads(
    session: Session,
    tenant_id: str,
    limit: int,
    offset: int,
    dataset_id: str | None,
    after: str | None = None,
    per_class_max: int | None = None,
) -> HeadPage:
    """A page of heads; with ``per_class_max``, heads with more classes than that carry
    summarised metrics (``summarized_metrics``)."""
    cursor = None
    if after is not None:
        cursor = repo.get(session, tenant_id, after)
        if cursor is None:
            raise NotFound(f"after: head {after!r} not found", field="after")
    items, total, has_more = repo.page(session, tenant_id, limit, offset, dataset_id, cursor)
    return HeadPage(
        items=[
            to_out(h, jobs_repo.latest_id_for_head(session, h.id), per_class_max) for h in items
        ],
        total=total,
        limit=limit,
        offset=offset,
        has_more=has_more,
        next_after=items[-1].id if has_more and items else None,
    )


def delete_head(session: Session, tenant_id: str, head_id: str) -> None:
    head = get_head(session, tenant_id, head_id)
    busy = jobs_repo.unfinished(session, head_id=head.id)
    if busy:
        raise Conflict(f"head {head_id!r} is being trained by job {busy[0].id}; cancel it first")
    session.delete(head)


# ------------------------------------------------------------- the training job's side
def load_for_training(db: Database, head_id: str) -> tuple[Head, Dataset | None]:
    """The head and its dataset (detached), or JobFailed if the head is gone."""
    with db.session() as s:
        head = s.get(Head, head_id)
        if head is None:
            raise JobFailed("HeadDeleted", "the head was deleted")
        ds = datasets_repo.get(s, head.tenant_id, head.dataset_id) if head.dataset_id else None
        s.expunge_all()
        return head, ds


def mark_ready(db: Database, head_id: str, trained: dict[str, Any]) -> None:
    """pending -> ready with the trained weights, config, metrics, spectra, dim, classes."""
    with db.session() as s:
        head = s.get(Head, head_id)
        if head is None:
            raise JobFailed("HeadDeleted", "the head was deleted during training")
        if head.status == HeadStatus.READY:
            return
        for name in ("weights", "config", "metrics", "spectra", "dim", "classes"):
            setattr(head, name, trained[name])
        head.status, head.trained_at = HeadStatus.READY, utcnow()


def on_train_job_ended(session: Session, job: Job, status: JobStatus) -> None:
    """Terminal hook of `train` jobs: a pending head follows its failed/cancelled job."""
    if not job.head_id:
        return
    head = session.get(Head, job.head_id)
    if head is not None and head.status == HeadStatus.PENDING:
        head.status = HeadStatus(status.value)
