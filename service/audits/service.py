"""The audits domain: create (+ its `audit` job), read, page, export, delete audits; every
audit status change happens here."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from anyio import to_thread
from sqlalchemy.orm import Session

from nmtune.adapters import BackendRegistry, EmbeddingBackend
from nmtune.service.audits import repository as repo
from nmtune.service.audits.models import Audit, AuditStatus
from nmtune.service.audits.schemas import (
    AuditCreate,
    AuditCreated,
    AuditDetail,
    AuditExample,
    AuditOut,
    AuditPage,
    AuditSummary,
    ExamplePage,
)
from nmtune.service.backbones.service import check_modality, get_backend
from nmtune.service.datasets import repository as datasets_repo
from nmtune.service.datasets.models import Dataset
from nmtune.service.datasets.service import get_dataset
from nmtune.service.db.base import new_id, utcnow
from nmtune.service.db.session import Database
from nmtune.service.errors import Conflict, NotFound, ValidationFailed
from nmtune.service.jobs import service as jobs_service
from nmtune.service.jobs.handlers import JobFailed
from nmtune.service.jobs.models import Job, JobKind, JobStatus
from nmtune.service.jobs.runner import JobQueue

EXPORT_FIELDS = ("position", "split", "text", "image_sha256", "given", "suggested", "score")


def _label(value: str, label_kind: str) -> str | int:
    return int(value) if label_kind == "int" else value


def to_out(audit: Audit, job_id: str | None) -> AuditOut:
    return AuditOut(
        id=audit.id,
        dataset_id=audit.dataset_id,
        backbone=audit.backbone,
        splits=list(audit.splits),
        options=dict(audit.options or {}),
        status=AuditStatus(audit.status),
        summary=AuditSummary(**audit.summary) if audit.summary else None,
        job_id=job_id,
        created_at=audit.created_at,
        finished_at=audit.finished_at,
    )


def check_request(ds: Dataset, body: AuditCreate) -> None:
    """422 with the field at fault: unknown split, fewer than 2 classes, or a class with
    fewer than ``folds`` examples in the audited splits."""
    splits: dict[str, dict[str, int]] = ds.counts.get("splits", {})
    for i, split in enumerate(body.splits):
        if split not in splits:
            raise ValidationFailed(
                f"splits[{i}]: dataset has no split {split!r} (has: {', '.join(sorted(splits))})",
                field=f"splits[{i}]",
            )
    if len(set(body.splits)) != len(body.splits):
        raise ValidationFailed("splits: a split is listed twice", field="splits")
    counts: dict[str, int] = {}
    for split in body.splits:
        for label, n in splits[split].items():
            counts[label] = counts.get(label, 0) + int(n)
    if len(counts) < 2:
        raise ValidationFailed(
            f"splits: an audit needs at least 2 classes in {body.splits}, found {len(counts)}",
            field="splits",
        )
    small = sorted(label for label, n in counts.items() if n < body.folds)
    if small:
        raise ValidationFailed(
            f"folds: every class needs at least folds={body.folds} examples in the audited "
            f"splits; too few in {small[:10]} (smallest has {min(counts.values())}); lower "
            "folds or add examples",
            field="folds",
        )


def create_audit(
    session: Session,
    tenant_id: str,
    dataset_id: str,
    body: AuditCreate,
    backend: EmbeddingBackend | None,
) -> tuple[Audit, Job]:
    """``backend`` None: a vector dataset, audited on its own vectors (``body.backbone`` is
    the backbone it declares)."""
    ds = get_dataset(session, tenant_id, dataset_id)
    if backend is None:
        if ds.backbone_identity is None or body.backbone != ds.backbone:
            raise ValidationFailed(
                f"backbone: the dataset holds vectors of {ds.backbone!r}; audit with that",
                field="backbone",
            )
        identity = ds.backbone_identity
    else:
        check_modality(backend, body.backbone, ds.modality)
        identity = backend.identity
    check_request(ds, body)
    audit = Audit(
        id=new_id("au"),
        tenant_id=tenant_id,
        dataset_id=ds.id,
        backbone=body.backbone,
        backbone_identity=identity,
        splits=list(body.splits),
        options=body.model_dump(exclude={"backbone", "splits"}),
        status=AuditStatus.PENDING,
        n_examples=0,
        n_flagged=0,
    )
    session.add(audit)
    session.flush()
    job = jobs_service.new_job(
        session,
        tenant_id,
        JobKind.AUDIT,
        dataset_id=ds.id,
        params={"audit_id": audit.id, "backbone": body.backbone},
    )
    audit.job_id = job.id
    return audit, job


async def submit_audit(
    tenant_id: str,
    dataset_id: str,
    body: AuditCreate,
    *,
    db: Database,
    registry: BackendRegistry,
    queue: JobQueue,
) -> AuditCreated:
    """Create an audit and queue its job (embeds through the cache, or reads a vector
    dataset's own vectors, then audits)."""

    def _holds_vectors() -> bool:
        with db.session() as s:
            return get_dataset(s, tenant_id, dataset_id).backbone_identity is not None

    vectors = await to_thread.run_sync(_holds_vectors)
    backend = None if vectors else await get_backend(registry, body.backbone)
    await queue.check(tenant_id)  # 503 if down, 429 at the per-tenant job quota

    def _create() -> AuditCreated:
        with db.session() as s:
            audit, job = create_audit(s, tenant_id, dataset_id, body, backend)
            return AuditCreated(audit=to_out(audit, job.id), job=jobs_service.to_out(job))

    created = await to_thread.run_sync(_create)
    await queue.submit(created.job.id)
    return created


def get_audit(session: Session, tenant_id: str, dataset_id: str, audit_id: str) -> Audit:
    get_dataset(session, tenant_id, dataset_id)
    audit = repo.get(session, tenant_id, dataset_id, audit_id)
    if audit is None:
        raise NotFound(f"audit {audit_id!r} not found", field="audit_id")
    return audit


def _example(row: Any, label_kind: str) -> AuditExample:
    position, split, text, sha, given, suggested, score, flagged = row
    return AuditExample(
        position=int(position),
        split=split,
        text=text,
        image_sha256=None if text is not None else sha,
        given=_label(given, label_kind),
        suggested=_label(suggested, label_kind),
        score=float(score),
        flagged=bool(flagged),
    )


def audit_detail(
    session: Session,
    tenant_id: str,
    dataset_id: str,
    audit_id: str,
    *,
    flagged_only: bool,
    sort: str,
    limit: int,
    offset: int,
) -> AuditDetail:
    """The audit, its summary and one page of examples (flagged ones by default)."""
    audit = get_audit(session, tenant_id, dataset_id, audit_id)
    out = to_out(audit, audit.job_id)
    examples = None
    if audit.status == AuditStatus.READY:
        kind = get_dataset(session, tenant_id, dataset_id).label_kind
        rows, total = repo.items_page(session, audit, flagged_only, sort, limit, offset)
        examples = ExamplePage(
            items=[_example(r, kind) for r in rows],
            total=total,
            limit=limit,
            offset=offset,
            sort=sort,  # type: ignore[arg-type]
            flagged_only=flagged_only,
        )
    return AuditDetail(**out.model_dump(), examples=examples)


def list_audits(
    session: Session, tenant_id: str, dataset_id: str, limit: int, offset: int
) -> AuditPage:
    get_dataset(session, tenant_id, dataset_id)
    items, total = repo.page(session, tenant_id, dataset_id, limit, offset)
    return AuditPage(
        items=[to_out(a, a.job_id) for a in items],
        total=total,
        limit=limit,
        offset=offset,
    )


def delete_audit(session: Session, tenant_id: str, dataset_id: str, audit_id: str) -> None:
    audit = get_audit(session, tenant_id, dataset_id, audit_id)
    if audit.status == AuditStatus.PENDING:
        raise Conflict(f"audit {audit_id!r} is running; cancel its job first", field="audit_id")
    session.delete(audit)


def export_lines(
    db: Database,
    tenant_id: str,
    dataset_id: str,
    audit_id: str,
    fmt: str,
    flagged_only: bool,
    sort: str,
) -> Iterator[str]:
    """Check the audit (404 / 409 raised before anything is sent), then a generator of
    CSV or JSONL lines of its examples."""
    with db.session() as s:
        audit = get_audit(s, tenant_id, dataset_id, audit_id)
        if audit.status != AuditStatus.READY:
            raise Conflict(
                f"audit {audit_id!r} is {audit.status}; exports exist once it is ready",
                field="audit_id",
            )
        kind = get_dataset(s, tenant_id, dataset_id).label_kind
        s.expunge(audit)

    def lines() -> Iterator[str]:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        if fmt == "csv":
            writer.writerow([*EXPORT_FIELDS, "flagged"])
            yield _drain(buf)
        with db.session() as s:
            for row in repo.iter_items(s, audit, flagged_only, sort):
                ex = _example(row, kind).model_dump()
                if fmt == "jsonl":
                    yield json.dumps(ex, ensure_ascii=False) + "\n"
                else:
                    writer.writerow([*(ex[k] for k in EXPORT_FIELDS), str(ex["flagged"]).lower()])
                    yield _drain(buf)

    return lines()


def _drain(buf: io.StringIO) -> str:
    out = buf.getvalue()
    buf.seek(0)
    buf.truncate()
    return out


# ------------------------------------------------------------- the audit job's side
def load_for_job(db: Database, audit_id: str) -> tuple[Audit, Dataset]:
    """The audit and its dataset (detached), or JobFailed if either is gone."""
    with db.session() as s:
        audit = s.get(Audit, audit_id)
        if audit is None:
            raise JobFailed("AuditDeleted", "the audit was deleted")
        ds = datasets_repo.get(s, audit.tenant_id, audit.dataset_id)
        if ds is None:
            raise JobFailed("DatasetDeleted", "the dataset was deleted before the audit")
        s.expunge_all()
        return audit, ds


def audited_rows(
    db: Database, dataset_id: str, splits: list[str]
) -> list[tuple[int, str, str, str | None, bytes | None, str]]:
    with db.session() as s:
        return repo.dataset_rows(s, dataset_id, splits)


def mark_ready(
    db: Database,
    audit_id: str,
    summary: dict[str, Any],
    items: list[dict[str, Any]],
) -> None:
    """pending -> ready with the summary and one item per audited example."""
    with db.session() as s:
        audit = s.get(Audit, audit_id)
        if audit is None:
            raise JobFailed("AuditDeleted", "the audit was deleted while it ran")
        if audit.status == AuditStatus.READY:
            return
        repo.replace_items(s, audit_id, [dict(r, audit_id=audit_id) for r in items])
        audit.summary = summary
        audit.n_examples = int(summary["n_examples"])
        audit.n_flagged = int(summary["n_flagged"])
        audit.status, audit.finished_at = AuditStatus.READY, utcnow()


def on_audit_job_ended(session: Session, job: Job, status: JobStatus) -> None:
    """Terminal hook of `audit` jobs: a pending audit follows its failed/cancelled job."""
    audit_id = (job.params or {}).get("audit_id")
    audit = session.get(Audit, audit_id) if audit_id else None
    if audit is not None and audit.status == AuditStatus.PENDING:
        audit.status = AuditStatus(status.value)
        audit.finished_at = utcnow()


# ------------------------------------------------------------- for the heads domain
def check_usable(session: Session, tenant_id: str, dataset_id: str, audit_id: str) -> Audit:
    """A ready audit of this tenant's dataset (404 for none, 422 when not ready)."""
    audit = repo.get(session, tenant_id, dataset_id, audit_id)
    if audit is None:
        raise NotFound(
            f"audit_id: no audit {audit_id!r} of dataset {dataset_id!r}", field="audit_id"
        )
    if audit.status != AuditStatus.READY:
        raise ValidationFailed(
            f"audit_id: audit {audit_id!r} is {audit.status}; train through it once it is ready",
            field="audit_id",
        )
    return audit


def flagged_positions(db: Database, audit_id: str) -> tuple[set[int], dict[str, Any]] | None:
    """(positions of the flagged examples, a record of the audit) for the training job;
    None when the audit was deleted since the head was created. The record's ``c`` (the
    audit's logistic-regression C) is for audit_use auto's check; the job takes it out."""
    with db.session() as s:
        audit = s.get(Audit, audit_id)
        if audit is None or audit.status != AuditStatus.READY:
            return None
        flags = repo.weights_by_position(s, audit_id)
        record = {
            "audit_id": audit.id,
            "backbone": audit.backbone,
            "splits": list(audit.splits),
            "options": dict(audit.options or {}),
            "n_audited": audit.n_examples,
            "n_flagged": audit.n_flagged,
            "estimated_noise_rate": (audit.summary or {}).get("estimated_noise_rate"),
            "c": (audit.summary or {}).get("c"),  # the audit's logistic regression C
        }
    return {p for p, (_, flagged) in flags.items() if flagged}, record
