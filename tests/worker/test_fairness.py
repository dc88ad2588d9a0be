"""Fair scheduling with ``runner=celery`` (issue 12): a free worker takes the next job round
robin across tenants, so one tenant's backlog delays another tenant's next job by at most
the job already running. Orders are asserted, never durations."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from nmtune.service.auth.service import get_or_create_tenant
from nmtune.service.db.base import utcnow
from nmtune.service.db.migrate import upgrade
from nmtune.service.db.session import Database
from nmtune.service.jobs import repository as jobs_repo
from nmtune.service.jobs.models import Job, JobStatus
from nmtune.service.jobs.service import new_job
from tests.fakes.openai_server import FakeOpenAIServer
from tests.service.conftest import fake_spec, sentiment_records, wait_job
from tests.worker.conftest import Broker, Procs, service_env
from tests.worker.test_worker import celery_kw, create_head


def test_fair_order_is_round_robin_across_tenants(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fair.db'}"
    upgrade(url)
    db = Database(url)
    with db.session() as s:
        ta = get_or_create_tenant(s, "a").id
        tb = get_or_create_tenant(s, "b").id
        tc = get_or_create_tenant(s, "c").id
    with db.session() as s:
        a = [new_job(s, ta, "train").id for _ in range(4)]
    with db.session() as s:
        b = [new_job(s, tb, "train").id for _ in range(2)]
    with db.session() as s:
        c = [new_job(s, tc, "train").id]
    assert jobs_repo.fair_order(db, 3) == [a[0], b[0], c[0], a[1], b[1], a[2], a[3]]
    # A has a job running: B and C (nothing running) go first
    assert jobs_repo.claim(db, a[0], "w", 3) is not None
    assert jobs_repo.fair_order(db, 3) == [b[0], c[0], a[1], b[1], a[2], a[3]]
    # nobody running: the tenant that started a job longest ago goes first (never: first)
    assert jobs_repo.claim(db, b[0], "w", 3) is not None
    with db.session() as s:
        for job_id, ago in ((a[0], 30), (b[0], 60)):
            job = s.get(Job, job_id)
            assert job is not None
            job.status, job.started_at = JobStatus.SUCCEEDED, utcnow() - timedelta(seconds=ago)
    assert jobs_repo.fair_order(db, 3) == [c[0], b[1], a[1], a[2], a[3]]
    db.dispose()


def test_a_tenants_backlog_delays_another_tenants_job_by_at_most_one_job(
    pg_db: str, broker: Broker, serve: Any, procs: Procs, fake_upstream: FakeOpenAIServer
) -> None:
    spec = fake_spec(fake_upstream)
    run = serve(pg_db, [spec], **celery_kw(broker))
    a, b = run.client("a"), run.client("b")
    recs = sentiment_records(6)
    ds_a = a.post("/v1/datasets", json={"name": "a", "records": recs}).json()["id"]
    ds_b = b.post("/v1/datasets", json={"name": "b", "records": recs}).json()["id"]
    # no worker yet: the broker holds A1..A4 then B1, in that (FIFO) order
    a_jobs = [create_head(a, ds_a)["job"]["id"] for _ in range(4)]
    b_job = create_head(b, ds_b)["job"]["id"]
    procs.worker(service_env(pg_db, broker, [spec]))  # one worker, one job at a time
    for job_id in [*a_jobs, b_job]:
        client = b if job_id == b_job else a
        job = wait_job(client, job_id, timeout=180)
        assert job["status"] == "succeeded", (job, procs.logs())
        assert job["attempts"] == 1
    with run.db.session() as s:
        started = {
            j.id: j.started_at for j in s.query(Job).filter(Job.id.in_([*a_jobs, b_job])).all()
        }
    order = sorted(started, key=lambda j: started[j])  # type: ignore[arg-type, return-value]
    # FIFO would be A1 A2 A3 A4 B1; fair: B1 right after the one A job that went first
    assert order == [a_jobs[0], b_job, *a_jobs[1:]], (order, procs.logs())
