"""Runs one job end to end, whatever its kind. Shared by the in-process runner and the worker.

The job row is the source of truth: claim (queued -> running, atomic), heartbeat while the
kind's handler runs, then one terminal transaction (status, error, result, and the kind's
terminal hook). Errors are mapped here, once: cancellation -> cancelled; a rate limit or an
unavailable backend -> re-queued until the attempts are used up; other adapter and tuner
errors, :class:`JobFailed` and an unknown kind -> failed with the error type; anything else ->
failed with ``InternalError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any, Literal

from nmtune.adapters import AdapterError, RateLimitedError, UnavailableError
from nmtune.service.db.session import Database
from nmtune.service.errors import WorkCancelled
from nmtune.service.jobs import repository as jobs_repo
from nmtune.service.jobs.handlers import JobContext, JobFailed, JobHandlers
from nmtune.service.jobs.models import Job, JobStatus
from nmtune.service.ops import metrics
from nmtune.service.settings import Settings
from nmtune.tuner import TrainingCancelled, TunerInputError

log = logging.getLogger(__name__)

Outcome = Literal["succeeded", "failed", "cancelled", "requeued", "skipped"]

RETRY_END_DELAY_S = 0.5
#: Pauses before each attempt to release a job whose terminal write failed (alternately
#: with and without the kind's terminal hook).
RELEASE_DELAYS_S = (0.0, 0.0, 0.5, 0.5, 2.0, 2.0)


class JobEngine:
    def __init__(
        self,
        db: Database,
        handlers: JobHandlers,
        settings: Settings,
        worker_id: str | None = None,
    ) -> None:
        self.db = db
        self.handlers = handlers
        self.settings = settings
        self.worker_id = worker_id or jobs_repo.worker_identity()

    async def run(self, job_id: str) -> Outcome:
        job = await asyncio.to_thread(
            jobs_repo.claim, self.db, job_id, self.worker_id, self.settings.job_max_attempts
        )
        if job is None:
            return "skipped"
        log.info("job started", extra={"job_id": job_id, "kind": job.kind, "attempt": job.attempts})
        beat = asyncio.create_task(self._heartbeat(job_id, (self.worker_id, job.attempts)))
        try:
            handler = self.handlers.handler(job.kind)
            result = await handler(JobContext(job=job, db=self.db))
        except (WorkCancelled, TrainingCancelled):
            return await self._end(job, JobStatus.CANCELLED)
        except (RateLimitedError, UnavailableError) as exc:
            err = _error(exc)
            if job.attempts < self.settings.job_max_attempts:
                log.warning("job %s: transient backend error, re-queued: %s", job_id, exc)
                await asyncio.to_thread(jobs_repo.requeue, self.db, job_id, err)
                return "requeued"
            return await self._end(job, JobStatus.FAILED, err)
        except JobFailed as exc:
            return await self._end(
                job, JobStatus.FAILED, {"type": exc.type, "message": exc.message}
            )
        except (AdapterError, TunerInputError) as exc:
            return await self._end(job, JobStatus.FAILED, _error(exc))
        except Exception as exc:
            log.exception("job %s crashed", job_id)
            err = {"type": "InternalError", "message": str(exc)[:500]}
            return await self._end(job, JobStatus.FAILED, err)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        return await self._end(job, JobStatus.SUCCEEDED, None, result)

    def fail_running(
        self,
        job_id: str,
        error: dict[str, str],
        *,
        with_hook: bool = True,
        attempt: int | None = None,
    ) -> bool:
        """End a job that this worker is still running as failed (a time limit): synchronous;
        the kind's terminal hook runs in the same transaction (unless ``with_hook`` is false).
        Returns whether the job was running here (``attempt``: in that attempt)."""
        with self.db.session() as s:
            changed = jobs_repo.finish(
                s,
                job_id,
                JobStatus.FAILED,
                error=error,
                only_running=True,
                owner=(self.worker_id, attempt),
            )
            job = s.get(Job, job_id)
            if changed and job is not None and with_hook:
                self.handlers.ended(s, job, JobStatus.FAILED)
        if changed and job is not None:
            metrics.JOBS.labels(kind=job.kind, status=JobStatus.FAILED.value).inc()
        return changed

    # ------------------------------------------------------------------ helpers
    async def _end(
        self,
        job: Job,
        status: JobStatus,
        error: dict[str, str] | None = None,
        result: dict[str, Any] | None = None,
    ) -> Outcome:
        try:
            recorded = await asyncio.to_thread(self._finish, job, status, error, result)
        except Exception as exc:
            log.exception("job %s: recording its outcome (%s) failed", job.id, status.value)
            await asyncio.sleep(RETRY_END_DELAY_S)
            try:  # once more as it was (a transient database error)
                recorded = await asyncio.to_thread(self._finish, job, status, error, result)
            except Exception:
                return await self._release(job, exc)
        if not recorded:
            return "skipped"
        return status.value  # type: ignore[return-value]

    async def _release(self, job: Job, exc: Exception) -> Outcome:
        """The terminal write failed twice (a database error, a failing terminal hook): end
        the job as failed now instead of leaving it running until the reaper. Tries with the
        kind's hook, then without it, a few times; if the database stays away the reaper
        ends it."""
        err = {
            "type": "InternalError",
            "message": f"the job's outcome could not be recorded ({type(exc).__name__})",
        }
        for attempt, delay in enumerate(RELEASE_DELAYS_S):
            await asyncio.sleep(delay)
            try:
                changed = await asyncio.to_thread(
                    functools.partial(
                        self.fail_running,
                        job.id,
                        err,
                        with_hook=attempt % 2 == 0,
                        attempt=job.attempts,
                    )
                )
            except Exception:
                log.warning("job %s: release attempt %d failed", job.id, attempt + 1)
                continue
            if changed:
                log.info("job released as failed", extra={"job_id": job.id})
            return "failed"
        log.error("job %s: could not be released; the reaper will end it", job.id)
        return "failed"

    def _finish(
        self,
        job: Job,
        status: JobStatus,
        error: dict[str, str] | None,
        result: dict[str, Any] | None,
    ) -> bool:
        """Record the outcome if this attempt still holds the job; returns whether it did."""
        with self.db.session() as s:
            owner = (self.worker_id, job.attempts)
            if not jobs_repo.finish(s, job.id, status, error=error, result=result, owner=owner):
                log.warning(
                    "job %s: attempt %d is no longer running here (re-queued after missed "
                    "heartbeats?); its outcome (%s) is dropped",
                    job.id,
                    job.attempts,
                    status.value,
                )
                return False
            self.handlers.ended(s, job, status)
        metrics.JOBS.labels(kind=job.kind, status=status.value).inc()
        log.info("job finished", extra={"job_id": job.id, "status": status.value})
        return True

    async def _heartbeat(self, job_id: str, owner: jobs_repo.Owner) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval_s)
            try:
                await asyncio.to_thread(jobs_repo.heartbeat, self.db, job_id, owner)
            except Exception:  # a missed beat is not fatal
                log.warning("heartbeat failed for job %s", job_id, exc_info=True)


def _error(exc: Exception) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": str(exc)}
