"""The distributed runner: Celery with a Redis broker, PostgreSQL shared by API and workers.

The job row stays the source of truth; the broker only carries job ids.

* ``CeleryRunner`` (API side, ``NMTUNE_RUNNER=celery``) sends ``nmtune.run_job(job_id)``
  after the job row is committed, pings the broker in ``check()`` (short timeouts, so job
  creation answers 503 at once while Redis is down), and runs a ``Dispatcher`` loop.
* ``Dispatcher.tick()`` (run periodically by the API and by every worker) re-queues running
  jobs whose worker stopped heart-beating (``jobs_repo.reap``) and re-SENDS them, and sends
  queued jobs that never reached the broker (broker down at submit time, or the broker lost
  its data). A per-job marker key in Redis, written when a job is sent, keeps a job that is
  already waiting in the queue from being sent again and again; it lives in the broker's
  own database, so when Redis loses its data, the markers go with the messages and the jobs
  are sent again. Duplicates are harmless: a job is claimed atomically (queued -> running).
* ``run_worker`` (``nmtune worker``) starts a Celery worker. Each worker process keeps ONE
  asyncio event loop and one set of Database / BackendRegistry / EmbeddingCache /
  JobExecutor for its lifetime and runs ``loop.run_until_complete(executor.run(job_id))``
  per task. With ``--concurrency 1`` (one job per GPU) the solo pool runs jobs in the worker
  process itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import redis
from celery import Celery
from sqlalchemy import select, update

import service.db.models  # noqa: F401  (every model mapped: foreign keys resolve)
from adapters import BackendRegistry
from service.db.base import utcnow
from service.db.session import Database
from service.embeddings.service import EmbeddingCache
from service.heads.models import Head
from service.jobs import repository as jobs_repo
from service.jobs.executor import JobExecutor
from service.jobs.models import Job
from service.settings import Settings, get_settings

log = logging.getLogger(__name__)

TASK_NAME = "nmtune.run_job"
#: a queued job whose marker is older than this is sent again (a lost message is not
#: waited for until the visibility timeout; a duplicate is skipped by the atomic claim)
REDISPATCH_AFTER_S = 600
#: the broker keeps an unacknowledged message this much longer than the longest job
VISIBILITY_MARGIN_S = 3600
REQUEUE_DELAY_S = 2.0
BROKER_TIMEOUT_S = 1.0


def _broker_url(settings: Settings) -> str:
    return settings.celery_broker_url.get_secret_value()


def create_celery_app(settings: Settings) -> Any:
    """A Celery app configured from NMTUNE_ settings, with the ``nmtune.run_job`` task."""
    backend = settings.celery_result_backend
    app: Any = Celery(
        "nmtune",
        broker=_broker_url(settings),
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
        # our own asyncio limit (WorkerState.run) ends the job cleanly first; Celery's hard
        # limit (prefork pool) is the backstop
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

    def run_job(job_id: str) -> str:
        state = worker_state(settings)
        outcome = state.run(job_id)
        if outcome == "requeued":  # transient backend error: try again a little later
            Dispatcher(settings, app, state.db).send(job_id, force=True, countdown=REQUEUE_DELAY_S)
        return outcome

    app.task(name=TASK_NAME, ignore_result=backend is None)(run_job)
    return app


class Dispatcher:
    """Sends job ids to the broker and recovers lost work; every method is synchronous."""

    def __init__(self, settings: Settings, app: Any, db: Database) -> None:
        self.settings = settings
        self.app = app
        self.db = db
        self.queue = settings.celery_queue
        self.redis = redis.Redis.from_url(
            _broker_url(settings),
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
        with self.db.session() as s:
            ids = list(
                s.scalars(
                    select(Job.id)
                    .where(Job.status == "queued", Job.created_at < cutoff)
                    .order_by(Job.created_at)
                    .limit(1000)
                ).all()
            )
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

    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self.settings = settings
        self._own_db = db is None
        self.db = db or Database(settings.database_url.get_secret_value())
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
        if self._own_db:
            self.db.dispose()

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


# ---------------------------------------------------------------------------------- worker
class WorkerState:
    """One per worker process: a persistent event loop and the objects bound to it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.db = Database(settings.database_url.get_secret_value())
        self.registry = BackendRegistry.from_specs(settings.backbones)
        self.cache = EmbeddingCache(self.db, chunk_size=settings.embed_chunk_size)
        self.executor = JobExecutor(self.db, self.registry, self.cache, settings)

    def run(self, job_id: str) -> str:
        return str(self.loop.run_until_complete(self._run(job_id)))

    async def _run(self, job_id: str) -> str:
        limit = self.settings.celery_task_time_limit_s
        try:
            return await asyncio.wait_for(self.executor.run(job_id), timeout=limit)
        except TimeoutError:
            await asyncio.to_thread(self._time_limit_exceeded, job_id, limit)
            return "failed"

    def _time_limit_exceeded(self, job_id: str, limit: int) -> None:
        log.error("job %s ran past the time limit (%d s)", job_id, limit)
        with self.db.session() as s:
            s.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "running")
                .values(
                    status="failed",
                    finished_at=utcnow(),
                    cancel_requested=True,  # a training thread still running stops at its epoch
                    error={"type": "TimeLimitExceeded", "message": f"ran past {limit} s"},
                )
            )
            job = s.get(Job, job_id)
            if job is not None and job.head_id:
                head = s.get(Head, job.head_id)
                if head is not None and head.status == "pending":
                    head.status = "failed"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(self.registry.aclose())
        self.db.dispose()
        self.loop.close()


_state: WorkerState | None = None
_state_lock = threading.Lock()


def worker_state(settings: Settings) -> WorkerState:
    """This process's WorkerState, made on first use (after a prefork pool's fork)."""
    global _state
    with _state_lock:
        if _state is None or _state.pid != os.getpid():
            _state = WorkerState(settings)
        return _state


def _close_state() -> None:
    global _state
    if _state is not None and _state.pid == os.getpid():
        _state.close()
        _state = None


def _dispatcher_thread(settings: Settings, app: Any, stop: threading.Event) -> None:
    db = Database(settings.database_url.get_secret_value())
    dispatcher = Dispatcher(settings, app, db)
    try:
        while not stop.wait(settings.celery_dispatch_interval_s):
            try:
                dispatcher.tick()
            except Exception as exc:
                log.warning("worker dispatcher: %s", exc)
    finally:
        dispatcher.close()
        db.dispose()


def run_worker(queues: str | None = None, concurrency: int = 1) -> int:
    """``nmtune worker``: consume ``queues`` (comma-separated; default the celery_queue
    setting). One job per process; on a GPU machine start one worker per GPU with
    CUDA_VISIBLE_DEVICES=N (or NMTUNE_WORKER_DEVICE=cuda:N)."""
    from celery.signals import worker_process_shutdown, worker_shutdown

    from service.ops.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    if settings.runner != "celery":
        log.warning(
            "nmtune worker started with NMTUNE_RUNNER=%s; the API must use celery", settings.runner
        )
    app = create_celery_app(settings)
    worker_shutdown.connect(lambda **_: _close_state(), weak=False)
    worker_process_shutdown.connect(lambda **_: _close_state(), weak=False)
    stop = threading.Event()
    thread = threading.Thread(
        target=_dispatcher_thread, args=(settings, app, stop), name="nmtune-reaper", daemon=True
    )
    thread.start()
    argv = [
        "worker",
        f"--queues={queues or settings.celery_queue}",
        f"--concurrency={concurrency}",
        f"--pool={'solo' if concurrency == 1 else 'prefork'}",
        f"--loglevel={settings.log_level}",
        f"--hostname=nmtune-{uuid.uuid4().hex[:6]}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    log.info(
        "nmtune worker starting",
        extra={
            "queues": queues or settings.celery_queue,
            "concurrency": concurrency,
            "device": settings.worker_device or "auto",
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        },
    )
    try:
        app.worker_main(argv)
    finally:
        stop.set()
        thread.join(timeout=5)
        _close_state()
    return 0


def wait_for_broker(settings: Settings, timeout: float = 30.0) -> None:
    """Block until the broker answers a ping (used by tools and tests)."""
    client = redis.Redis.from_url(_broker_url(settings), socket_connect_timeout=BROKER_TIMEOUT_S)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
