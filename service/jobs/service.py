from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from nmtune.service.db.base import new_id
from nmtune.service.errors import NotFound
from nmtune.service.jobs import repository as repo
from nmtune.service.jobs.handlers import JobHandlers
from nmtune.service.jobs.models import Job, JobKind, JobStatus
from nmtune.service.jobs.schemas import EpochOut, JobError, JobOut, JobPage, Progress


def new_job(
    session: Session,
    tenant_id: str,
    kind: JobKind | str,
    *,
    head_id: str | None = None,
    dataset_id: str | None = None,
    params: dict[str, Any] | None = None,
) -> Job:
    """A queued job row (flushed, not committed: hand its id to the runner after commit)."""
    job = Job(
        id=new_id("job"),
        tenant_id=tenant_id,
        kind=str(kind),
        head_id=head_id,
        dataset_id=dataset_id,
        params=dict(params or {}),
        status=JobStatus.QUEUED,
        stage=None,
        progress_done=0,
        progress_total=0,
        epochs=[],
        attempts=0,
        cancel_requested=False,
    )
    session.add(job)
    session.flush()
    return job


def to_out(job: Job) -> JobOut:
    return JobOut(
        id=job.id,
        kind=job.kind,
        status=JobStatus(job.status),
        stage=job.stage,  # type: ignore[arg-type]
        progress=Progress(done=job.progress_done, total=job.progress_total),
        epochs=[EpochOut.model_validate(e) for e in job.epochs or []],
        error=JobError(**job.error) if job.error else None,
        attempts=job.attempts,
        head_id=job.head_id,
        dataset_id=job.dataset_id,
        params=dict(job.params or {}),
        result=job.result,
        cancel_requested=job.cancel_requested,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def get_job(session: Session, tenant_id: str, job_id: str) -> Job:
    job = repo.get(session, tenant_id, job_id)
    if job is None:
        raise NotFound(f"job {job_id!r} not found", field="job_id")
    return job


def list_jobs(
    session: Session,
    tenant_id: str,
    limit: int,
    *,
    after: str | None = None,
    statuses: list[JobStatus] | None = None,
    kind: str | None = None,
    head_id: str | None = None,
    dataset_id: str | None = None,
) -> JobPage:
    found = repo.page(
        session,
        tenant_id,
        limit,
        after=after,
        statuses=[str(v) for v in statuses] if statuses else None,
        kind=kind,
        head_id=head_id,
        dataset_id=dataset_id,
    )
    if found is None:
        raise NotFound(f"after: job {after!r} not found", field="after")
    jobs, has_more = found
    return JobPage(
        items=[to_out(j) for j in jobs],
        has_more=has_more,
        next_after=jobs[-1].id if has_more and jobs else None,
        limit=limit,
    )


def cancel_job(session: Session, handlers: JobHandlers, tenant_id: str, job_id: str) -> JobOut:
    """A queued job is cancelled at once (its kind's terminal hook runs); a running one gets
    the request and stops at its next check."""
    job = get_job(session, tenant_id, job_id)
    was = job.status
    repo.request_cancel(session, job)
    if was != JobStatus.CANCELLED and job.status == JobStatus.CANCELLED:
        handlers.ended(session, job, JobStatus.CANCELLED)
    session.flush()
    return to_out(job)
