"""Job rows: the source of truth. Every state change is one short transaction."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from nmtune.service.db.base import utcnow
from nmtune.service.db.session import Database
from nmtune.service.jobs.models import TERMINAL, UNFINISHED, Job, JobStatus


def _process_space() -> str:
    """Where this process's pid means something: the hostname plus the PID namespace.

    Containers on the host network share the host's name but each has its own PID namespace
    (the worker is pid 1 in every container), so a pid is comparable only within one space.
    """
    try:
        ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}/pidns-{ns}"


def worker_identity() -> str:
    return f"{_process_space()}:{os.getpid()}"


def get(session: Session, tenant_id: str, job_id: str) -> Job | None:
    job = session.get(Job, job_id)
    return job if job is not None and job.tenant_id == tenant_id else None


def claim(db: Database, job_id: str, worker_id: str, max_attempts: int) -> Job | None:
    """queued -> running, atomically; returns the job or None if someone else has it."""
    now = utcnow()
    with db.session() as s:
        res = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED, Job.attempts < max_attempts)
            .values(
                status=JobStatus.RUNNING,
                attempts=Job.attempts + 1,
                worker_id=worker_id,
                started_at=now,
                heartbeat_at=now,
                # error stays: after a transient backend error or a lost worker it says why
                # this is attempt 2 or later (the outcome replaces it)
                epochs=[],  # each attempt starts a fresh epoch history
                stage=None,
                progress_done=0,
                progress_total=0,
            )
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return s.get(Job, job_id)


#: (worker id, attempt): the claim a worker holds on a running job. Progress writes that carry
#: it apply only while that attempt still runs there: a worker cut off the network, whose job
#: was re-queued and claimed by another, neither keeps the new attempt's heartbeat alive nor
#: writes into its epoch history when it comes back, and is told to stop.
Owner = tuple[str, int]


def _owned(stmt: Any, owner: Owner | None) -> Any:
    if owner is None:
        return stmt
    return stmt.where(
        Job.status == JobStatus.RUNNING, Job.worker_id == owner[0], Job.attempts == owner[1]
    )


def _holds(job: Job | None, owner: Owner | None) -> bool:
    if job is None:
        return False
    if owner is None:
        return True
    return (job.status, job.worker_id, job.attempts) == (JobStatus.RUNNING, *owner)


def heartbeat(db: Database, job_id: str, owner: Owner | None = None) -> bool:
    """Refresh the heartbeat; returns whether the work should stop (cancellation requested,
    or with ``owner``: that attempt no longer holds the job)."""
    with db.session() as s:
        stmt = update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING)
        res = s.execute(_owned(stmt, owner).values(heartbeat_at=utcnow()))
        if owner is not None and res.rowcount != 1:  # type: ignore[attr-defined]
            return True
        return bool(s.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def cancel_requested(db: Database, job_id: str, owner: Owner | None = None) -> bool:
    """Whether the work should stop: cancellation requested (with ``owner``: or that attempt
    no longer holds the job)."""
    with db.session() as s:
        job = s.get(Job, job_id)
        return not _holds(job, owner) or bool(job and job.cancel_requested)


def set_progress(
    db: Database, job_id: str, stage: str, done: int, total: int, owner: Owner | None = None
) -> None:
    with db.session() as s:
        s.execute(
            _owned(update(Job).where(Job.id == job_id), owner).values(
                stage=stage, progress_done=done, progress_total=total, heartbeat_at=utcnow()
            )
        )


#: A job keeps at most this many epoch reports (the latest): its JSON stays bounded.
MAX_EPOCH_REPORTS = 2000


def add_epoch(
    db: Database,
    job_id: str,
    report: dict[str, Any],
    done: int,
    total: int,
    owner: Owner | None = None,
) -> bool:
    """Append an epoch report (keeping the latest MAX_EPOCH_REPORTS); returns whether the work
    should stop (cancellation requested; with ``owner``: or that attempt no longer holds the
    job, and then nothing is written)."""
    with db.session() as s:
        job = s.get(Job, job_id)
        if job is None or not _holds(job, owner):
            return True
        job.epochs = [*job.epochs, report][-MAX_EPOCH_REPORTS:]
        job.stage, job.progress_done, job.progress_total = "train", done, total
        job.heartbeat_at = utcnow()
        return job.cancel_requested


def finish(
    session: Session,
    job_id: str,
    status: JobStatus,
    *,
    error: dict[str, str] | None = None,
    result: dict[str, Any] | None = None,
    only_running: bool = False,
    owner: tuple[str, int | None] | None = None,
) -> bool:
    """Set a terminal status; returns whether the row changed (``only_running``: only a job
    that is still running, e.g. when a time limit ends it; ``owner``: (worker id, attempt or
    None): only while that worker's attempt still holds the running job, so a worker that
    was cut off and whose job was re-queued and claimed by another cannot end the new
    attempt when it comes back)."""
    values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "error": error}
    if result is not None:
        values["result"] = result
    if only_running:
        values["cancel_requested"] = True  # a training thread still running stops at its epoch
    stmt = update(Job).where(Job.id == job_id)
    if only_running or owner is not None:
        stmt = stmt.where(Job.status == JobStatus.RUNNING)
    if owner is not None:
        stmt = stmt.where(Job.worker_id == owner[0])
        if owner[1] is not None:
            stmt = stmt.where(Job.attempts == owner[1])
    res = session.execute(stmt.values(**values))
    return bool(res.rowcount)  # type: ignore[attr-defined]


def requeue(db: Database, job_id: str, error: dict[str, str]) -> None:
    with db.session() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
            .values(status=JobStatus.QUEUED, worker_id=None, error=error)
        )


def request_cancel(session: Session, job: Job) -> None:
    if job.status in TERMINAL:
        return
    job.cancel_requested = True
    if job.status == JobStatus.QUEUED:
        job.status = JobStatus.CANCELLED
        job.finished_at = utcnow()


def _pid_dead(worker_id: str | None) -> bool:
    if not worker_id or ":" not in worker_id:
        return False
    space, _, pid = worker_id.rpartition(":")
    if space != _process_space() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def reap(db: Database, stale_after_s: float, max_attempts: int) -> list[str]:
    """Re-queue running jobs whose worker died (dead local pid or stale heartbeat).

    Jobs that used up their attempts fail instead. Returns the re-queued ids. Each change is
    a compare-and-set on the attempt that was found stale (status, attempt and worker as
    read): the API and every worker reap concurrently, and a job re-queued by one reaper and
    claimed again by a worker in between must not be re-queued by another.
    """
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    requeued: list[str] = []
    with db.session() as s:
        running = s.scalars(select(Job).where(Job.status == JobStatus.RUNNING)).all()
        for job in running:
            hb = job.heartbeat_at
            if hb is not None and hb.tzinfo is None:
                hb = hb.replace(tzinfo=cutoff.tzinfo)
            stale = hb is None or hb < cutoff
            if not (stale or _pid_dead(job.worker_id)):
                continue
            err = {"type": "WorkerLost", "message": f"worker {job.worker_id} stopped"}
            values: dict[str, Any]
            if job.cancel_requested:
                values = {"status": JobStatus.CANCELLED, "finished_at": utcnow(), "error": None}
            elif job.attempts >= max_attempts:
                values = {"status": JobStatus.FAILED, "finished_at": utcnow(), "error": err}
            else:
                values = {"status": JobStatus.QUEUED, "worker_id": None, "error": err}
            same_worker = (
                Job.worker_id.is_(None) if job.worker_id is None else Job.worker_id == job.worker_id
            )
            res = s.execute(
                update(Job)
                .where(
                    Job.id == job.id,
                    Job.status == JobStatus.RUNNING,
                    Job.attempts == job.attempts,
                    same_worker,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if res.rowcount == 1 and values["status"] == JobStatus.QUEUED:  # type: ignore[attr-defined]
                requeued.append(job.id)
    return requeued


def tenant_of(db: Database, job_id: str) -> str | None:
    with db.session() as s:
        return s.scalar(select(Job.tenant_id).where(Job.id == job_id))


def queued_with_tenants(db: Database) -> list[tuple[str, str]]:
    """(job id, tenant id) of every queued job, oldest first."""
    stmt = (
        select(Job.id, Job.tenant_id).where(Job.status == JobStatus.QUEUED).order_by(Job.created_at)
    )
    with db.session() as s:
        return [(row[0], row[1]) for row in s.execute(stmt).all()]


def fair_order(db: Database, max_attempts: int, limit: int = 1000) -> list[str]:
    """Queued job ids in the order a free worker should take them (``runner=celery``):
    round robin across tenants, oldest first within a tenant. Tenants are ordered by how
    many jobs they have running, then by when they last started one (never first), then by
    their oldest queued job; the list is their first jobs in that order, then their second
    jobs, and so on. So one tenant's backlog delays another tenant's next job by at most
    the jobs already running."""
    queued_stmt = (
        select(Job.id, Job.tenant_id)
        .where(Job.status == JobStatus.QUEUED, Job.attempts < max_attempts)
        .order_by(Job.created_at, Job.id)
        .limit(limit)
    )
    with db.session() as s:
        queued = [(row[0], row[1]) for row in s.execute(queued_stmt).all()]
        if not queued:
            return []
        tenants = {t for _, t in queued}
        running: dict[str, int] = {
            row[0]: int(row[1])
            for row in s.execute(
                select(Job.tenant_id, func.count())
                .where(Job.status == JobStatus.RUNNING, Job.tenant_id.in_(tenants))
                .group_by(Job.tenant_id)
            ).all()
        }
        last_start: dict[str, datetime] = {
            row[0]: row[1]
            for row in s.execute(
                select(Job.tenant_id, func.max(Job.started_at))
                .where(Job.tenant_id.in_(tenants), Job.started_at.is_not(None))
                .group_by(Job.tenant_id)
            ).all()
            if row[1] is not None
        }
    per_tenant: dict[str, list[str]] = {}
    for job_id, tenant in queued:
        per_tenant.setdefault(tenant, []).append(job_id)
    position = {tenant: i for i, tenant in enumerate(per_tenant)}  # oldest queued job first

    def rank(tenant: str) -> tuple[int, int, str, int]:
        started = last_start.get(tenant)
        return (
            running.get(tenant, 0),
            0 if started is None else 1,
            "" if started is None else started.isoformat(),
            position[tenant],
        )

    order = sorted(per_tenant, key=rank)
    out: list[str] = []
    for i in range(max(len(v) for v in per_tenant.values())):
        out.extend(per_tenant[t][i] for t in order if i < len(per_tenant[t]))
    return out


def count_unfinished(session: Session, tenant_id: str) -> int:
    stmt = (
        select(func.count())
        .select_from(Job)
        .where(Job.tenant_id == tenant_id, Job.status.in_(UNFINISHED))
    )
    return int(session.scalar(stmt) or 0)


def queued_ids(
    db: Database, created_before: datetime | None = None, limit: int | None = None
) -> list[str]:
    """Queued jobs, oldest first (``created_before``: only those created before then)."""
    stmt = select(Job.id).where(Job.status == JobStatus.QUEUED)
    if created_before is not None:
        stmt = stmt.where(Job.created_at < created_before)
    stmt = stmt.order_by(Job.created_at)
    if limit is not None:
        stmt = stmt.limit(limit)
    with db.session() as s:
        return list(s.scalars(stmt).all())


def unfinished(
    session: Session,
    *,
    tenant_id: str | None = None,
    kind: str | None = None,
    head_id: str | None = None,
    dataset_id: str | None = None,
) -> list[Job]:
    """Queued or running jobs matching every filter given: the one "unfinished jobs" query."""
    stmt = select(Job).where(Job.status.in_(UNFINISHED))
    if tenant_id is not None:
        stmt = stmt.where(Job.tenant_id == tenant_id)
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    if head_id is not None:
        stmt = stmt.where(Job.head_id == head_id)
    if dataset_id is not None:
        stmt = stmt.where(Job.dataset_id == dataset_id)
    return list(session.scalars(stmt.order_by(Job.created_at)).all())


def page(
    session: Session,
    tenant_id: str,
    limit: int,
    *,
    after: str | None = None,
    statuses: list[str] | None = None,
    kind: str | None = None,
    head_id: str | None = None,
    dataset_id: str | None = None,
) -> tuple[list[Job], bool] | None:
    """A tenant's jobs, newest first (``created_at`` then id, descending), that match every
    filter given, starting after the job ``after``; returns (jobs, has_more), or None when
    ``after`` is not one of the tenant's jobs."""
    stmt = select(Job).where(Job.tenant_id == tenant_id)
    if statuses:
        stmt = stmt.where(Job.status.in_(statuses))
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    if head_id is not None:
        stmt = stmt.where(Job.head_id == head_id)
    if dataset_id is not None:
        stmt = stmt.where(Job.dataset_id == dataset_id)
    if after is not None:
        cursor = get(session, tenant_id, after)
        if cursor is None:
            return None
        stmt = stmt.where(
            or_(
                Job.created_at < cursor.created_at,
                and_(Job.created_at == cursor.created_at, Job.id < cursor.id),
            )
        )
    rows = session.scalars(
        stmt.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
    ).all()
    return list(rows[:limit]), len(rows) > limit


def first_for_head(session: Session, head_id: str) -> Job | None:
    return session.scalar(select(Job).where(Job.head_id == head_id).order_by(Job.created_at))


def latest_id_for_head(session: Session, head_id: str) -> str | None:
    return session.scalar(
        select(Job.id).where(Job.head_id == head_id).order_by(Job.created_at.desc()).limit(1)
    )
