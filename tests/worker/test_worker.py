"""The Celery runner over real Redis and PostgreSQL, with real worker subprocesses."""

from __future__ import annotations

import time
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import func, select

from service.db.session import Database
from service.embeddings.models import CachedEmbedding
from service.heads.models import Head
from service.jobs.models import Job
from tests.fakes.openai_server import FakeOpenAIServer
from tests.service.conftest import fake_spec, sentiment_records, wait_job
from tests.worker.conftest import Broker, Procs, service_env


def celery_kw(broker: Broker) -> dict[str, Any]:
    return {
        "runner": "celery",
        "celery_broker_url": SecretStr(broker.url),
        "celery_queue": broker.queue,
        "celery_dispatch_interval_s": 1.0,
    }


def create_head(c: httpx.Client, ds_id: str, **overrides: Any) -> dict[str, Any]:
    r = c.post(
        "/v1/heads",
        json={
            "dataset_id": ds_id,
            "backbone": "fake",
            "method": "lp",
            "overrides": {"lp_epochs": 2, **overrides},
        },
    )
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


def counts(db: Database) -> tuple[int, int]:
    with db.session() as s:
        heads = s.scalar(select(func.count()).select_from(Head).where(Head.status == "ready"))
        rows = s.scalar(select(func.count()).select_from(CachedEmbedding))
    return int(heads or 0), int(rows or 0)


def wait_progress(c: httpx.Client, job_id: str, stage: str, done: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while True:
        job = c.get(f"/v1/jobs/{job_id}").json()
        if job.get("stage") == stage and job["progress"]["done"] >= done:
            return
        assert job["status"] in ("queued", "running"), job
        assert time.time() < deadline, f"job never reached {stage} {done}: {job}"
        time.sleep(0.05)


def test_job_runs_on_worker_and_head_serves_from_api(
    pg_db: str, broker: Broker, serve: Any, procs: Procs, fake_upstream: FakeOpenAIServer
) -> None:
    spec = fake_spec(fake_upstream)
    run = serve(pg_db, [spec], **celery_kw(broker))
    c = run.client()
    assert c.get("/readyz").status_code == 200
    recs = sentiment_records(8)
    ds = c.post("/v1/datasets", json={"name": "w", "records": recs}).json()
    created = create_head(c, ds["id"])  # queued in Redis before any worker exists
    worker = procs.worker(service_env(pg_db, broker, [spec]))
    job = wait_job(c, created["job"]["id"], timeout=60)
    assert job["status"] == "succeeded", (job, procs.logs())
    with run.db.session() as s:
        worker_id = s.get(Job, job["id"]).worker_id  # type: ignore[union-attr]
    assert worker_id is not None and worker_id.endswith(f":{worker.pid}")  # ran on the worker

    hid = created["head"]["id"]
    head = c.get(f"/v1/heads/{hid}").json()
    assert head["status"] == "ready"
    cfg = head["config"]
    assert cfg["device"] == "cpu" and cfg["torch_version"] and "cuda_version" in cfg
    pred = c.post(f"/v1/heads/{hid}/predict", json={"inputs": [recs[0]["text"], "new text"]})
    assert pred.status_code == 200, pred.text
    assert len(pred.json()["predictions"]) == 2

    # the same job id delivered again (e.g. a redelivered message) changes nothing
    app = run.app.state.ctx.runner
    app.dispatcher.send(job["id"], force=True)
    time.sleep(1.5)
    again = c.get(f"/v1/jobs/{job['id']}").json()
    assert again["status"] == "succeeded" and again["attempts"] == 1
    assert counts(run.db) == (1, len({r["text"] for r in recs}) + 1)  # + "new text"


def test_cancel_over_celery(
    pg_db: str, broker: Broker, serve: Any, procs: Procs, fake_upstream: FakeOpenAIServer
) -> None:
    spec = fake_spec(fake_upstream)
    run = serve(pg_db, [spec], embed_chunk_size=5, **celery_kw(broker))
    c = run.client()
    procs.worker(service_env(pg_db, broker, [spec], NMTUNE_EMBED_CHUNK_SIZE="5"))
    ds = c.post("/v1/datasets", json={"name": "x", "records": sentiment_records(20)}).json()
    fake_upstream.inject(status=200, kind="slow", delay=0.3, times=100)
    try:
        created = create_head(c, ds["id"])
        job_id = created["job"]["id"]
        wait_progress(c, job_id, "embed", 5, timeout=60)
        assert c.post(f"/v1/jobs/{job_id}/cancel").status_code in (200, 202)
        job = wait_job(c, job_id, timeout=30)
    finally:
        fake_upstream.reset()
    assert job["status"] == "cancelled", (job, procs.logs())
    assert c.get(f"/v1/heads/{created['head']['id']}").json()["status"] == "cancelled"
