"""The job-kind registry: what a job of each kind runs, and who hears when it ends.

``service.jobs`` knows no domain. The composition root (``service.composition``) registers a
handler per ``Job.kind``; the engine claims a job, looks its kind up here and calls the
handler with a :class:`JobContext`. A handler returns the job's result (a JSON dict), raises
:class:`JobFailed` for an expected failure, or lets ``WorkCancelled`` / adapter / tuner
errors through for the engine to map. An optional terminal hook runs, in the transaction
that ends the job, when a job of that kind fails or is cancelled (e.g. the heads domain marks
its pending head).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from nmtune.service.db.session import Database
from nmtune.service.jobs import repository as jobs_repo
from nmtune.service.jobs.models import Job, JobStatus


class JobFailed(Exception):
    """An expected failure: the job ends ``failed`` with this error type and message."""

    def __init__(self, type_: str, message: str) -> None:
        super().__init__(message)
        self.type = type_
        self.message = message


class UnknownJobKind(JobFailed):
    def __init__(self, kind: str) -> None:
        super().__init__("UnknownJobKind", f"no handler is registered for job kind {kind!r}")


@dataclass
class JobContext:
    """What a handler sees: the claimed job row (detached) and the job's progress channel."""

    job: Job
    db: Database

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.job.params or {})

    @property
    def owner(self) -> jobs_repo.Owner | None:
        """This worker's claim (worker id, attempt): every progress write is fenced by it."""
        if self.job.worker_id is None:
            return None
        return (self.job.worker_id, self.job.attempts)

    async def progress(self, stage: str, done: int, total: int) -> None:
        await asyncio.to_thread(
            jobs_repo.set_progress, self.db, self.job.id, stage, done, total, self.owner
        )

    async def embed_progress(self, done: int, total: int) -> None:
        """``on_progress`` for ``EmbeddingCache.embed``: the job's `embed` stage."""
        await self.progress("embed", done, total)

    def report_progress(self, stage: str, done: int, total: int) -> bool:
        """Progress from a worker thread (e.g. an audit's solves); returns whether to stop (the
        user asked to cancel, or this attempt no longer holds the job)."""
        jobs_repo.set_progress(self.db, self.job.id, stage, done, total, self.owner)
        return jobs_repo.cancel_requested(self.db, self.job.id, self.owner)

    def report_epoch(self, report: dict[str, Any], done: int, total: int) -> bool:
        """Append an epoch report (call from a training thread); returns whether to stop (the
        user asked to cancel, or this attempt no longer holds the job)."""
        return jobs_repo.add_epoch(self.db, self.job.id, report, done, total, self.owner)

    async def cancel_requested(self) -> bool:
        return await asyncio.to_thread(jobs_repo.cancel_requested, self.db, self.job.id, self.owner)


JobHandler = Callable[[JobContext], Awaitable[dict[str, Any]]]
#: (session of the transaction that ends the job, the job row, its new terminal status)
TerminalHook = Callable[[Session, Job, JobStatus], None]


@dataclass(frozen=True)
class JobKindSpec:
    handler: JobHandler
    on_terminal: TerminalHook | None = None


class JobHandlers:
    """kind -> handler (+ optional terminal hook); filled by the composition root."""

    def __init__(self) -> None:
        self._kinds: dict[str, JobKindSpec] = {}

    def register(
        self, kind: str, handler: JobHandler, *, on_terminal: TerminalHook | None = None
    ) -> None:
        if kind in self._kinds:
            raise ValueError(f"job kind {kind!r} is already registered")
        self._kinds[kind] = JobKindSpec(handler, on_terminal)

    def kinds(self) -> list[str]:
        return sorted(self._kinds)

    def handler(self, kind: str) -> JobHandler:
        spec = self._kinds.get(kind)
        if spec is None:
            raise UnknownJobKind(kind)
        return spec.handler

    def ended(self, session: Session, job: Job, status: JobStatus) -> None:
        """Run the kind's terminal hook (failed / cancelled only)."""
        spec = self._kinds.get(job.kind)
        if spec is None or spec.on_terminal is None:
            return
        if status in (JobStatus.FAILED, JobStatus.CANCELLED):
            spec.on_terminal(session, job, status)
