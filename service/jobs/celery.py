"""The publishing side of the distributed runner: Celery over a Redis broker, PostgreSQL
shared by API and workers. The job row stays the source of truth; the broker only carries
job ids. The worker side (task, worker boot) is ``service.worker``.

* ``create_celery_app`` configures a Celery app (API and workers use the same settings); it
  registers no task: the API only sends ``nmtune.run_job`` by name.
* ``CeleryRunner`` (API side, ``NMTUNE_RUNNER=celery``) sends ``nmtune.run_job(job_id)``
  after the job row is committed, pings the broker in ``check()`` (short timeouts, so job
  creation answers 503 at once while Redis is down), and runs a ``Dispatcher`` loop. It uses
  the API's own Database (one engine per process).
* ``Dispatcher.tick()`` (run periodically by the API and by every worker) re-queues running
  jobs whose worker stopped heart-beating (``jobs_repo.reap``) and re-SENDS them, and sends
  queued jobs that never reached the broker (broker down at submit time, or the broker lost
  its data). A per-job marker key in Redis, written when a job is sent, keeps a job that is
  already waiting in the queue from being sent again and again; it lives in the broker's
  own database, so when Redis loses its data, the markers go with the messages and the jobs
  are sent again. Duplicates are harmless: a job is claimed atomically (queued -> running).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta
from typing import Any

import redis
from celery import Celery

from nmtune.service.db.base import utcnow
from nmtune.service.db.session import Database
from nmtune.service.jobs import repository as jobs_repo
from nmtune.service.settings import Settings

log = logging.getLogger(__name__)

TASK_NAME = "nmtune.run_job"
#: a queued job whose marker is older than this is sent again (a lost message is not
#: waited for until the visibility timeout; a duplicate is skipped by the atomic claim)
REDISPATCH_AFTER_S = 600
#: the broker keeps an unacknowledged message this much longer than the longest job
VISIBILITY_MARGIN_S = 3600
BROKER_TIMEOUT_S = 1.0


def broker_url(settings: Settings) -> str:
    return settings.celery_broker_url.get_secret_value()


def create_celery_app(settings: Settings) -> Any:
    """A Celery app configured from NMTUNE_ settings (no task: ``service.worker`` adds it)."""
    backend = settings.celery_result_backend
    app: Any = Celery(
        "nmtune",
        broker=broker_url(settings),
        backend=backend.get_secret_value() if backend is not None else None,
    )
    limit = settings.celery_task_time_limit_s
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_ignore_result=backend is None,
        task_default_queue=settings.celery_queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # our own asyncio limit (service.worker.main.WorkerState) ends the job cleanly
        # first; Celery's hard limit (prefork pool) is the backstop
        task_time_limit=limit + 60,
        broker_transport_options={
            "visibility_timeout": limit + VISIBILITY_MARGIN_S,
            "socket_connect_timeout": 2,
        },
        broker_connection_timeout=2,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_channel_error_retry=True,
    )
    return app


class Dispatcher:
    """Sends job ids to the broker and recovers lost work; every method is synchronous."""

    def __init__(self, settings: Settings, app: Any, db: Database) -> None:
        self.settings = settings
        self.app = app
        self.db = db
        self.queue = settings.celery_queue
        self.redis = redis.Redis.from_url(
            broker_url(settings),
            socket_timeout=BROKER_TIMEOUT_S,
            socket_connect_timeout=BROKER_TIMEOUT_S,
        )

    def _marker(self, job_id: str) -> str:
        return f"nmtune:dispatched:{self.queue}:{job_id}"

    def ping(self) -> None:
        self.redis.ping()

    def send(self, job_id: str, *, force: bool = True, countdown: float | None = None) -> bool:
        """Send one job id; with force=False only if it was not sent recently. Returns
        whether it was sent."""
        key = self._marker(job_id)
        if force:
            self.redis.set(key, "1", ex=REDISPATCH_AFTER_S)
        elif not self.redis.set(key, "1", ex=REDISPATCH_AFTER_S, nx=True):
            return False
        try:
            self.app.send_task(TASK_NAME, args=[job_id], queue=self.queue, countdown=countdown)
        except Exception:
            with contextlib.suppress(Exception):
                self.redis.delete(key)
            raise
        return True

    def tick(self) -> list[str]:
        """Reap dead workers' jobs (and re-send them); send queued jobs never dispatched."""
        sent: list[str] = []
        for job_id in jobs_repo.reap(
            self.db, self.settings.stale_after_s, self.settings.job_max_attempts
        ):
            log.warning("re-queued job %s of a worker that stopped", job_id)
            self.send(job_id, force=True)
            sent.append(job_id)
        # jobs younger than one interval are still being submitted by the API
        cutoff = utcnow() - timedelta(seconds=self.settings.celery_dispatch_interval_s)
        ids = jobs_repo.queued_ids(self.db, created_before=cutoff, limit=1000)
        for job_id in ids:
            if job_id not in sent and self.send(job_id, force=False):
                log.info("dispatched queued job %s", job_id)
                sent.append(job_id)
        return sent

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.redis.close()


class CeleryRunner:
    """The JobRunner for ``NMTUNE_RUNNER=celery``: jobs run on ``nmtune worker`` processes."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db  # the API's Database: one engine per process
        self.app = create_celery_app(settings)
        self.dispatcher = Dispatcher(settings, self.app, self.db)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="nmtune-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self.dispatcher.close()
        with contextlib.suppress(Exception):
            self.app.close()

    async def submit(self, job_id: str) -> None:
        await asyncio.wait_for(asyncio.to_thread(self.dispatcher.send, job_id), timeout=10)

    async def check(self) -> None:
        try:
            await asyncio.wait_for(asyncio.to_thread(self.dispatcher.ping), timeout=2)
        except Exception as exc:
            raise RuntimeError(f"broker unreachable ({type(exc).__name__})") from exc

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.dispatcher.tick)
            except Exception as exc:
                log.warning("dispatcher: %s", exc)
            await asyncio.sleep(self.settings.celery_dispatch_interval_s)


def wait_for_broker(settings: Settings, timeout: float = 30.0) -> None:
    """Block until the broker answers a ping (used by tools and tests)."""
    client = redis.Redis.from_url(broker_url(settings), socket_connect_timeout=BROKER_TIMEOUT_S)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
