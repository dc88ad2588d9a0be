"""The generic job engine: dispatch on ``Job.kind`` to registered handlers, terminal hooks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from nmtune.service.auth.models import Tenant
from nmtune.service.db.session import Database
from nmtune.service.jobs import service as jobs_service
from nmtune.service.jobs.engine import JobEngine
from nmtune.service.jobs.handlers import JobContext, JobFailed, JobHandlers
from nmtune.service.jobs.models import Job, JobStatus
from nmtune.service.models import Base
from nmtune.service.settings import Settings


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    Base.metadata.create_all(database.engine)
    with database.session() as s:
        s.add(Tenant(id="t1", name="t1"))
    yield database
    database.dispose()


def _settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}", heartbeat_interval_s=60)


def _job(db: Database, kind: str, params: dict[str, Any] | None = None) -> str:
    with db.session() as s:
        return jobs_service.new_job(s, "t1", kind, params=params).id


def _row(db: Database, job_id: str) -> Job:
    with db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job


async def test_unknown_kind_fails_the_job_with_a_clear_error(db: Database, tmp_path: Path) -> None:
    engine = JobEngine(db, JobHandlers(), _settings(tmp_path))
    job_id = _job(db, "label-audit")
    assert await engine.run(job_id) == "failed"
    job = _row(db, job_id)
    assert job.status == JobStatus.FAILED
    assert job.error is not None and job.error["type"] == "UnknownJobKind"
    assert "label-audit" in job.error["message"]


async def test_handler_gets_the_job_and_its_result_is_stored(db: Database, tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    async def echo(jc: JobContext) -> dict[str, Any]:
        seen.append(jc.params)
        await jc.progress("embed", 1, 2)
        return {"echo": jc.params["x"], "cancelled": await jc.cancel_requested()}

    handlers = JobHandlers()
    handlers.register("echo", echo)
    assert handlers.kinds() == ["echo"]
    with pytest.raises(ValueError, match="already registered"):
        handlers.register("echo", echo)
    engine = JobEngine(db, handlers, _settings(tmp_path))
    job_id = _job(db, "echo", {"x": 7})
    assert await engine.run(job_id) == "succeeded"
    assert await engine.run(job_id) == "skipped"  # claimed once only
    job = _row(db, job_id)
    assert seen == [{"x": 7}]
    assert job.result == {"echo": 7, "cancelled": False}
    assert (job.stage, job.progress_done, job.progress_total) == ("embed", 1, 2)


async def test_terminal_hook_runs_on_failure_and_cancel_not_success(
    db: Database, tmp_path: Path
) -> None:
    ended: list[tuple[str, JobStatus]] = []

    def hook(session: Session, job: Job, status: JobStatus) -> None:
        ended.append((job.id, status))

    async def fails(jc: JobContext) -> dict[str, Any]:
        raise JobFailed("Nope", "this job always fails")

    async def works(jc: JobContext) -> dict[str, Any]:
        return {}

    handlers = JobHandlers()
    handlers.register("fails", fails, on_terminal=hook)
    handlers.register("works", works, on_terminal=hook)
    engine = JobEngine(db, handlers, _settings(tmp_path))
    failing, working, queued = _job(db, "fails"), _job(db, "works"), _job(db, "works")
    assert await engine.run(failing) == "failed"
    assert _row(db, failing).error == {"type": "Nope", "message": "this job always fails"}
    assert await engine.run(working) == "succeeded"
    with db.session() as s:  # cancelling a queued job ends it at once: the hook hears it
        out = jobs_service.cancel_job(s, handlers, "t1", queued)
    assert out.status == JobStatus.CANCELLED
    assert ended == [(failing, JobStatus.FAILED), (queued, JobStatus.CANCELLED)]
