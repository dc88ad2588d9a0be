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
from collections import Counter, deque
from typing import Protocol

from sqlalchemy.orm import Session

from nmtune.service.db.session import Database
from nmtune.service.errors import ServiceUnavailable, TooManyRequests
from nmtune.service.jobs import repository as jobs_repo
from nmtune.service.jobs.engine import JobEngine
from nmtune.service.settings import Settings

log = logging.getLogger(__name__)

REQUEUE_DELAY_S = 2.0
BROKER_RETRY_AFTER_S = 5.0  # Retry-After of a 503 when the broker / runner is down


class JobRunner(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def submit(self, job_id: str) -> None: ...
    async def check(self) -> None:
        """Raise if the runner cannot accept work (used by /readyz and job creation)."""
        ...


class JobQueue:
    """The runner as the domains see it: API errors instead of runner exceptions, and the
    per-tenant job quota (``max_jobs_per_tenant`` queued + running jobs)."""

    #: Retry-After of a 429 for the job quota: about when a short job has ended.
    QUOTA_RETRY_AFTER_S = 10.0

    def __init__(
        self, runner: JobRunner, db: Database | None = None, max_per_tenant: int | None = None
    ) -> None:
        self.runner = runner
        self.db = db
        self.max_per_tenant = max_per_tenant

    async def check(self, tenant_id: str | None = None) -> None:
        """Raise 503 if jobs cannot be accepted now, 429 if ``tenant_id`` is at its quota."""
        try:
            await self.runner.check()
        except Exception as exc:
            raise ServiceUnavailable(
                f"the job queue is unavailable: {exc}", retry_after=BROKER_RETRY_AFTER_S
            ) from exc
        if tenant_id is None or self.db is None or self.max_per_tenant is None:
            return
        db = self.db

        def _check() -> None:
            with db.session() as s:
                self.enforce_quota(s, tenant_id)

        await asyncio.to_thread(_check)

    def enforce_quota(self, session: Session, tenant_id: str) -> None:
        """Raise 429 if ``tenant_id`` already has ``max_per_tenant`` unfinished jobs (call it
        in the transaction that creates the job)."""
        if self.max_per_tenant is None:
            return
        n = jobs_repo.count_unfinished(session, tenant_id)
        if n >= self.max_per_tenant:
            raise TooManyRequests(
                f"this tenant has {n} queued or running jobs (max_jobs_per_tenant "
                f"{self.max_per_tenant}); wait for one to finish",
                retry_after=self.QUOTA_RETRY_AFTER_S,
            )

    async def submit(self, job_id: str) -> None:
        try:
            await self.runner.submit(job_id)
        except Exception as exc:
            # the job row stays queued: the runner picks it up when it is back
            log.error("could not hand job %s to the runner: %s", job_id, exc)
            raise ServiceUnavailable(
                f"job {job_id} was stored but could not be queued now ({exc}); it will run "
                "when the queue is back",
                retry_after=BROKER_RETRY_AFTER_S,
            ) from exc


class InlineRunner:
    """Runs jobs on this event loop with ``runner_concurrency`` slots, fairly: the next job
    is taken round robin across tenants (oldest first within a tenant), and one tenant never
    has more than ``running_jobs_per_tenant`` jobs running. So one tenant's backlog delays
    another tenant's next job by at most the one job already running in its slot."""

    def __init__(self, db: Database, engine: JobEngine, settings: Settings) -> None:
        self.db = db
        self.engine = engine
        self.settings = settings
        self.per_tenant = settings.running_jobs_per_tenant
        self._pending: dict[str, deque[str]] = {}  # tenant -> queued job ids, oldest first
        self._turn: deque[str] = deque()  # tenants with pending jobs, in round-robin order
        self._running: Counter[str] = Counter()
        self._tenant_of: dict[str, str] = {}  # queued job -> tenant
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for i in range(self.settings.runner_concurrency):
            self._tasks.append(asyncio.create_task(self._work(), name=f"nmtune-runner-{i}"))
        self._tasks.append(asyncio.create_task(self._reaper(), name="nmtune-reaper"))
        # pick up what a previous process left: dead workers' jobs, then everything queued
        await asyncio.to_thread(
            jobs_repo.reap, self.db, self.settings.stale_after_s, self.settings.job_max_attempts
        )
        for job_id, tenant_id in await asyncio.to_thread(jobs_repo.queued_with_tenants, self.db):
            self._enqueue(job_id, tenant_id)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()

    async def submit(self, job_id: str) -> None:
        tenant_id = self._tenant_of.get(job_id)
        if tenant_id is None:
            tenant_id = await asyncio.to_thread(jobs_repo.tenant_of, self.db, job_id) or ""
        self._enqueue(job_id, tenant_id)

    def _enqueue(self, job_id: str, tenant_id: str) -> None:
        if job_id in self._tenant_of:
            return
        self._tenant_of[job_id] = tenant_id
        if tenant_id not in self._pending:
            self._pending[tenant_id] = deque()
            self._turn.append(tenant_id)
        self._pending[tenant_id].append(job_id)
        self._changed.set()

    def _next(self) -> tuple[str, str] | None:
        """The next (job, tenant): the first tenant in turn below its running cap."""
        for _ in range(len(self._turn)):
            tenant_id = self._turn[0]
            self._turn.rotate(-1)  # this tenant goes to the back of the line
            if self._running[tenant_id] >= self.per_tenant:
                continue
            jobs = self._pending[tenant_id]
            job_id = jobs.popleft()
            if not jobs:
                del self._pending[tenant_id]
                self._turn.remove(tenant_id)
            del self._tenant_of[job_id]
            return job_id, tenant_id
        return None

    def queued(self) -> list[str]:
        """Queued job ids in the order they would start if no other work arrived."""
        return [job for jobs in self._pending.values() for job in jobs]

    async def check(self) -> None:
        if not self._tasks or all(t.done() for t in self._tasks):
            raise RuntimeError("inline runner is not running")

    async def _work(self) -> None:
        while True:
            picked = self._next()
            if picked is None:
                self._changed.clear()
                await self._changed.wait()
                continue
            job_id, tenant_id = picked
            self._running[tenant_id] += 1
            try:
                outcome = await self.engine.run(job_id)
            except Exception:
                log.exception("runner: job %s raised", job_id)
                continue
            finally:
                self._running[tenant_id] -= 1
                if self._running[tenant_id] <= 0:
                    del self._running[tenant_id]
                self._changed.set()  # a tenant may be below its cap again
            if outcome == "requeued":
                self._resubmit_later(job_id, tenant_id, delay=REQUEUE_DELAY_S)

    def _resubmit_later(self, job_id: str, tenant_id: str, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self._enqueue, job_id, tenant_id)

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
