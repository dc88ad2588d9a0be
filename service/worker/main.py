"""``nmtune worker``: a Celery worker that runs jobs through the same JobEngine as the API.

Each worker process keeps ONE asyncio event loop and one AppContext (built by the same
``build_context`` as the API) for its lifetime and runs
``loop.run_until_complete(engine.run(job_id))`` per task. With ``--concurrency 1`` (one job
per GPU) the solo pool runs jobs in the worker process itself. The task is registered at
module level (``shared_task``): the API process, which only sends jobs by name, never
imports this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import uuid
from typing import Any

from celery import shared_task

from nmtune.service.composition import build_context
from nmtune.service.context import AppContext
from nmtune.service.db.session import Database
from nmtune.service.jobs import repository as jobs_repo
from nmtune.service.jobs.celery import TASK_NAME, Dispatcher, create_celery_app
from nmtune.service.jobs.runner import REQUEUE_DELAY_S
from nmtune.service.settings import Settings, get_settings

log = logging.getLogger(__name__)


class WorkerState:
    """One per worker process: a persistent event loop and the context bound to it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.ctx: AppContext = build_context(settings)

    def run(self, job_id: str) -> str:
        return str(self.loop.run_until_complete(self._run(job_id)))

    async def _run(self, job_id: str) -> str:
        limit = self.settings.celery_task_time_limit_s
        try:
            return await asyncio.wait_for(self.ctx.engine.run(job_id), timeout=limit)
        except TimeoutError:
            log.error("job %s ran past the time limit (%d s)", job_id, limit)
            err = {"type": "TimeLimitExceeded", "message": f"ran past {limit} s"}
            await asyncio.to_thread(self.ctx.engine.fail_running, job_id, err)
            return "failed"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(self.ctx.aclose())
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


#: how many of the fairest queued jobs a message tries before its own job
FAIR_CANDIDATES = 5


def _candidates(state: WorkerState, job_id: str) -> list[str]:
    """The jobs a message for ``job_id`` tries, in order: the fairest queued jobs across
    tenants (``jobs_repo.fair_order``), then ``job_id`` itself. Every job sends one message
    and every message runs at most one job, so a job whose message ran another job is run
    by a later message (a message with nothing left to run is a no-op)."""
    try:
        fair = jobs_repo.fair_order(state.ctx.db, state.settings.job_max_attempts)
    except Exception as exc:  # the database is away: the claim below says so too
        log.warning("fair order unavailable (%s): running job %s", type(exc).__name__, job_id)
        fair = []
    out = fair[:FAIR_CANDIDATES]
    return [*out, job_id] if job_id not in out else out


def _run_job(task: Any, job_id: str) -> str:
    state = worker_state(get_settings())
    outcome, ran = "skipped", job_id
    for candidate in _candidates(state, job_id):
        outcome = state.run(candidate)
        if outcome != "skipped":  # claimed (someone else may have taken the others)
            ran = candidate
            break
    if ran != job_id:
        log.info("message for job %s ran job %s (fair across tenants)", job_id, ran)
    if outcome == "requeued":  # transient backend error: try again a little later
        dispatcher = Dispatcher(state.settings, task.app, state.ctx.db)
        try:
            dispatcher.send(ran, force=True, countdown=REQUEUE_DELAY_S)
        finally:
            dispatcher.close()
    return outcome


#: the ``nmtune.run_job`` task, bound to every Celery app this process creates
run_job = shared_task(name=TASK_NAME, bind=True)(_run_job)


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

    from nmtune.service.ops.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json, settings.secret_values())
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
