"""The Celery runner over real Redis and PostgreSQL, with real worker subprocesses."""

from __future__ import annotations

import signal
import time
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import func, select

from nmtune.service.db.session import Database
from nmtune.service.embeddings.models import CachedEmbedding
from nmtune.service.heads.models import Head
from nmtune.service.jobs.models import Job
from tests.fakes.openai_server import FakeOpenAIServer
from tests.service.conftest import fake_spec, free_port, sentiment_records, wait_job
from tests.worker.conftest import Broker, PrivateRedis, Procs, service_env


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


def test_worker_killed_mid_embedding_job_completes_on_new_worker(
    pg_db: str, broker: Broker, serve: Any, procs: Procs
) -> None:
    with FakeOpenAIServer(dim=8) as up:
        spec = fake_spec(up)
        run = serve(pg_db, [spec], embed_chunk_size=5, **celery_kw(broker))
        c = run.client()
        env = service_env(pg_db, broker, [spec], NMTUNE_EMBED_CHUNK_SIZE="5")
        worker = procs.worker(env, "worker1")
        recs = sentiment_records(20, ood=False)  # 40 texts -> 8 chunks of 5
        ds = c.post("/v1/datasets", json={"name": "k", "records": recs}).json()
        up.inject(status=200, kind="slow", delay=0.4, times=100)  # every batch takes 0.4 s
        created = create_head(c, ds["id"])
        job_id = created["job"]["id"]
        wait_progress(c, job_id, "embed", 15, timeout=60)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        _, stored = counts(run.db)
        assert 15 <= stored < 40
        seen_before = list(up.inputs_seen)

        up.reset()
        procs.worker(env, "worker2")  # the API's reaper re-queues and re-sends the job
        job = wait_job(c, job_id, timeout=60)
        assert job["status"] == "succeeded", (job, procs.logs())
        assert job["attempts"] == 2
        # embeddings paid once: the new worker asked only for what was not stored
        assert len(up.inputs_seen) <= 40 - stored
        assert not set(up.inputs_seen) & set(seen_before[:stored])
        assert counts(run.db) == (1, 40)  # one head, no duplicate cache rows
        with run.db.session() as s:
            assert s.scalar(select(func.count()).select_from(Head)) == 1


def test_worker_killed_mid_training_job_completes_on_new_worker(
    pg_db: str, broker: Broker, serve: Any, procs: Procs
) -> None:
    with FakeOpenAIServer(dim=8) as up:
        spec = fake_spec(up)
        run = serve(pg_db, [spec], **celery_kw(broker))
        c = run.client()
        env = service_env(pg_db, broker, [spec])
        worker = procs.worker(env, "worker1")
        recs = sentiment_records(20, ood=False)  # 40 texts
        ds = c.post("/v1/datasets", json={"name": "t", "records": recs}).json()
        created = create_head(c, ds["id"], lp_epochs=400)
        job_id = created["job"]["id"]
        wait_progress(c, job_id, "train", 2, timeout=60)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        assert c.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
        assert counts(run.db) == (0, 40)  # all embeddings stored before training began
        paid = len(up.inputs_seen)
        assert paid == 40

        procs.worker(env, "worker2")  # the reaper re-queues the dead worker's job
        job = wait_job(c, job_id, timeout=90)
        assert job["status"] == "succeeded", (job, procs.logs())
        assert job["attempts"] == 2
        assert len(up.inputs_seen) == paid  # training restarted from the cache: paid once
        assert counts(run.db) == (1, 40)
        with run.db.session() as s:
            assert s.scalar(select(func.count()).select_from(Head)) == 1
        r = c.post(f"/v1/heads/{created['head']['id']}/predict", json={"inputs": [recs[0]["text"]]})
        assert r.status_code == 200


def test_api_restart_mid_job_loses_nothing(pg_db: str, broker: Broker, procs: Procs) -> None:
    from nmtune.service.auth.service import create_key

    db = Database(pg_db)
    with db.session() as s:
        key = create_key(s, "restart").key
    with FakeOpenAIServer(dim=8) as up:
        spec = fake_spec(up)
        env = service_env(pg_db, broker, [spec], NMTUNE_EMBED_CHUNK_SIZE="5")
        port = free_port()
        api = procs.api(env, port, "api1")
        procs.worker(env)
        c = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        recs = sentiment_records(20, ood=False)
        ds = c.post("/v1/datasets", json={"name": "r", "records": recs}).json()
        up.inject(status=200, kind="slow", delay=0.3, times=100)
        created = create_head(c, ds["id"])
        job_id = created["job"]["id"]
        wait_progress(c, job_id, "embed", 5, timeout=60)
        api.send_signal(signal.SIGKILL)
        api.wait()
        time.sleep(0.5)
        procs.api(env, port, "api2")
        job = wait_job(c, job_id, timeout=60)
        assert job["status"] == "succeeded", (job, procs.logs())
        assert job["attempts"] == 1  # the worker never noticed
        hid = created["head"]["id"]
        pred = c.post(f"/v1/heads/{hid}/predict", json={"inputs": [recs[0]["text"]]})
        assert pred.status_code == 200, pred.text
        assert counts(db) == (1, 40)
    db.dispose()


def test_broker_down_answers_503_and_recovers(
    pg_db: str,
    private_redis: PrivateRedis,
    serve: Any,
    procs: Procs,
    fake_upstream: FakeOpenAIServer,
) -> None:
    broker = Broker(private_redis.url, f"nmtune-test-{time.time_ns()}")
    spec = fake_spec(fake_upstream)
    run = serve(pg_db, [spec], **celery_kw(broker))
    c = run.client()
    ds = c.post("/v1/datasets", json={"name": "b", "records": sentiment_records(8)}).json()
    # accepted and sent; no worker yet, so the message waits in Redis ...
    first = create_head(c, ds["id"])
    # ... and is lost with it: this Redis keeps nothing on disk
    private_redis.stop()
    t0 = time.monotonic()
    r = c.post("/v1/heads", json={"dataset_id": ds["id"], "backbone": "fake", "method": "lp"})
    assert r.status_code == 503, r.text
    assert time.monotonic() - t0 < 5
    body = r.json()
    assert body["error"] == "ServiceUnavailable" and "queue" in body["detail"]
    assert c.get("/readyz").status_code == 503

    private_redis.start()  # same port
    procs.worker(service_env(pg_db, broker, [spec]))
    second = create_head(c, ds["id"], lp_epochs=1)
    for created in (first, second):  # the lost one is re-sent by the dispatcher
        job = wait_job(c, created["job"]["id"], timeout=60)
        assert job["status"] == "succeeded", (job, procs.logs())
        assert job["attempts"] == 1
    assert c.get("/readyz").status_code == 200
