from __future__ import annotations

from sqlalchemy.orm import Session

from service.errors import NotFound
from service.jobs import repository as repo
from service.jobs.models import Job
from service.jobs.schemas import JobError, JobOut, Progress


def to_out(job: Job) -> JobOut:
    return JobOut(
        id=job.id,
        kind=job.kind,  # type: ignore[arg-type]
        status=job.status,  # type: ignore[arg-type]
        stage=job.stage,  # type: ignore[arg-type]
        progress=Progress(done=job.progress_done, total=job.progress_total),
        epochs=list(job.epochs or []),
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


def cancel_job(session: Session, tenant_id: str, job_id: str) -> JobOut:
    job = get_job(session, tenant_id, job_id)
    repo.request_cancel(session, job)
    if job.status == "cancelled" and job.head_id:
        from service.heads.models import Head

        head = session.get(Head, job.head_id)
        if head is not None and head.status == "pending":
            head.status = "cancelled"
    session.flush()
    return to_out(job)
