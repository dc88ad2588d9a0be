"""Where jobs run. ``InlineRunner`` runs them in this process on the API's own event loop,
with the heavy work in threads, so request handling never blocks. ``CeleryRunner``
(service.jobs.celery) sends the job id to a worker instead. Both re-run nothing twice:
a job is claimed atomically (queued -> running) before any work. ``JobQueue`` is what the
domains see: check that jobs can be accepted, hand over a committed job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from service.db.session import Database
from service.errors import ServiceUnavailable
from service.jobs import repository as jobs_repo
from service.jobs.engine import JobEngine
from service.settings import Settings

log = logging.getLogger(__name__)

REQUEUE_DELAY_S = 2.0


class JobRunner(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def submit(self, job_id: str) -> None: ...
    async def check(self) -> None:
        """Raise if the runner cannot accept work (used by /readyz and job creation)."""
        ...


class JobQueue:
    """The runner as the domains see it: API errors instead of runner exceptions."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner

    async def check(self) -> None:
        try:
            await self.runner.check()
        except Exception as exc:
            raise ServiceUnavailable(f"the job queue is unavailable: {exc}") from exc

    async def submit(self, job_id: str) -> None:
        try:
            await self.runner.submit(job_id)
        except Exception as exc:
            # the job row stays queued: the runner picks it up when it is back
            log.error("could not hand job %s to the runner: %s", job_id, exc)
            raise ServiceUnavailable(
                f"job {job_id} was stored but could not be queued now ({exc}); it will run "
                "when the queue is back"
            ) from exc


class InlineRunner:
    def __init__(self, db: Database, engine: JobEngine, settings: Settings) -> None:
        self.db = db
        self.engine = engine
        self.settings = settings
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._queued: set[str] = set()

    async def start(self) -> None:
        for i in range(self.settings.runner_concurrency):
            self._tasks.append(asyncio.create_task(self._work(), name=f"nmtune-runner-{i}"))
        self._tasks.append(asyncio.create_task(self._reaper(), name="nmtune-reaper"))
        # pick up what a previous process left: dead workers' jobs, then everything queued
        await asyncio.to_thread(
            jobs_repo.reap, self.db, self.settings.stale_after_s, self.settings.job_max_attempts
        )
        for job_id in await asyncio.to_thread(jobs_repo.queued_ids, self.db):
            await self.submit(job_id)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()

    async def submit(self, job_id: str) -> None:
        self._enqueue(job_id)

    def _enqueue(self, job_id: str) -> None:
        if job_id not in self._queued:
            self._queued.add(job_id)
            self._queue.put_nowait(job_id)

    async def check(self) -> None:
        if not self._tasks or all(t.done() for t in self._tasks):
            raise RuntimeError("inline runner is not running")

    async def _work(self) -> None:
        while True:
            job_id = await self._queue.get()
            self._queued.discard(job_id)
            try:
                outcome = await self.engine.run(job_id)
            except Exception:
                log.exception("runner: job %s raised", job_id)
                continue
            if outcome == "requeued":
                self._resubmit_later(job_id, delay=REQUEUE_DELAY_S)

    def _resubmit_later(self, job_id: str, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self._enqueue, job_id)

    async def _reaper(self) -> None:
        interval = max(1.0, self.settings.stale_after_s / 2)
        while True:
            await asyncio.sleep(interval)
            try:
                ids = await asyncio.to_thread(
                    jobs_repo.reap,
                    self.db,
                    self.settings.stale_after_s,
                    self.settings.job_max_attempts,
                )
                for job_id in ids:
                    await self.submit(job_id)
            except Exception:
                log.warning("reaper failed", exc_info=True)
