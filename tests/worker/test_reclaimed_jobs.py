"""Jobs re-queued after missed heartbeats and claimed again (a worker cut off the network,
tests/worker/test_multihost.py with the partition healed while the other worker ran the job):
the cut worker's pending outcome of its old attempt, success or failure, is dropped instead of
ending the new attempt, and a reaper that read the old attempt does not re-queue the new one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from nmtune.service.auth.service import get_or_create_tenant
from nmtune.service.db.migrate import upgrade
from nmtune.service.db.session import Database
from nmtune.service.jobs import repository as jobs_repo
from nmtune.service.jobs.engine import JobEngine
from nmtune.service.jobs.handlers import JobContext, JobFailed, JobHandlers
from nmtune.service.jobs.models import Job, JobStatus
from nmtune.service.jobs.service import new_job
from tests.service.conftest import make_settings


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
async def test_outcome_of_a_reclaimed_attempt_is_dropped(tmp_path: Path, outcome: str) -> None:
    url = f"sqlite:///{tmp_path / 'fence.db'}"
    upgrade(url)
    db = Database(url)
    settings = make_settings(url, [])
    hooks: list[JobStatus] = []

    def take_over(job_id: str) -> None:
        """What happens while worker A is cut off: its heartbeat goes stale, the reaper
        re-queues the job and worker B claims it."""
        with db.session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=None))
        assert jobs_repo.reap(db, settings.stale_after_s, 3) == [job_id]
        assert jobs_repo.claim(db, job_id, "host-b:1", 3) is not None

    async def handler(jc: JobContext) -> dict[str, Any]:
        take_over(jc.job.id)
        if outcome == "failed":
            raise JobFailed("Boom", "worker A's attempt failed")
        return {"from": "worker A"}

    handlers = JobHandlers()
    handlers.register("train", handler, on_terminal=lambda s, job, st: hooks.append(st))
    engine = JobEngine(db, handlers, settings, worker_id="host-a:1")
    with db.session() as s:
        job_id = new_job(s, get_or_create_tenant(s, "a").id, "train").id

    assert await engine.run(job_id) == "skipped"
    with db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None
        assert (job.status, job.worker_id, job.attempts) == (JobStatus.RUNNING, "host-b:1", 2)
        assert job.result is None and job.finished_at is None and not job.cancel_requested
    assert hooks == []  # worker A's terminal hook never ran
    # worker A's time limit / release path cannot end B's attempt either
    assert not engine.fail_running(job_id, {"type": "TimeLimitExceeded", "message": "x"})
    # ... while B's own outcome is recorded
    b = JobEngine(db, handlers, settings, worker_id="host-b:1")
    with db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None
        assert b._finish(job, JobStatus.SUCCEEDED, None, {"from": "worker B"})
    with db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.status == JobStatus.SUCCEEDED
        assert job.result == {"from": "worker B"}
    db.dispose()


def test_reaper_does_not_requeue_an_attempt_claimed_since_it_looked(
    pg_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two reapers (the API and a worker) find the same dead attempt; the first re-queues it
    and a worker claims it again before the second writes: the second changes nothing."""
    db = Database(pg_db)
    with db.session() as s:
        job_id = new_job(s, get_or_create_tenant(s, "a").id, "train").id
    assert jobs_repo.claim(db, job_id, "host-a:1", 3) is not None
    real_pid_dead = jobs_repo._pid_dead

    def pid_dead(worker_id: str | None) -> bool:
        if worker_id != "host-a:1":
            return real_pid_dead(worker_id)
        # between this reaper's read and its write: the other reaper and worker B
        with db.session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=None))
        assert jobs_repo.reap(db, 60, 3) == [job_id]
        assert jobs_repo.claim(db, job_id, "host-b:1", 3) is not None
        return True  # host A's worker is gone

    monkeypatch.setattr(jobs_repo, "_pid_dead", pid_dead)
    assert jobs_repo.reap(db, 60, 3) == []
    with db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None
        assert (job.status, job.worker_id, job.attempts) == (JobStatus.RUNNING, "host-b:1", 2)
    db.dispose()


def test_progress_of_a_reclaimed_attempt_is_fenced(tmp_path: Path) -> None:
    """Worker A comes back after B claimed the job again: A's heartbeat, progress and epoch
    reports change nothing of B's attempt, and each tells A to stop; B's own writes apply."""
    url = f"sqlite:///{tmp_path / 'fence-progress.db'}"
    upgrade(url)
    db = Database(url)
    with db.session() as s:
        job_id = new_job(s, get_or_create_tenant(s, "a").id, "train").id
    a = jobs_repo.claim(db, job_id, "host-a:1", 3)
    assert a is not None and a.attempts == 1
    a_ctx = JobContext(job=a, db=db)
    assert a_ctx.owner == ("host-a:1", 1)
    assert a_ctx.report_epoch({"epoch": 1}, 1, 10) is False  # A still holds it
    with db.session() as s:
        s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=None))
    assert jobs_repo.reap(db, 1.0, 3) == [job_id]
    b = jobs_repo.claim(db, job_id, "host-b:1", 3)
    assert b is not None and b.attempts == 2
    b_ctx = JobContext(job=b, db=db)
    assert b_ctx.report_epoch({"epoch": 1, "by": "b"}, 1, 10) is False
    with db.session() as s:
        before = s.get(Job, job_id)
        assert before is not None
        beat, epochs = before.heartbeat_at, list(before.epochs)

    # worker A is back: every write of its old attempt is refused and says "stop"
    assert a_ctx.report_epoch({"epoch": 2, "by": "a"}, 2, 10) is True
    assert jobs_repo.heartbeat(db, job_id, a_ctx.owner) is True
    jobs_repo.set_progress(db, job_id, "train", 9, 10, a_ctx.owner)
    assert jobs_repo.cancel_requested(db, job_id, a_ctx.owner) is True
    with db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None
        assert (job.status, job.worker_id, job.attempts) == (JobStatus.RUNNING, "host-b:1", 2)
        assert job.epochs == epochs and job.heartbeat_at == beat
        assert job.progress_done == 1 and not job.cancel_requested
    # B's writes still apply
    assert jobs_repo.heartbeat(db, job_id, b_ctx.owner) is False
    assert jobs_repo.cancel_requested(db, job_id, b_ctx.owner) is False
    assert b_ctx.report_epoch({"epoch": 2, "by": "b"}, 2, 10) is False
    with db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None and [e.get("by") for e in job.epochs] == ["b", "b"]
    db.dispose()
