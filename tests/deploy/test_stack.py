"""The image, for real: `nmtune migrate`, the API and Celery workers as containers on the host
network against the host's PostgreSQL (a fresh database) and Redis (a DB index and a queue of
their own). A head is trained on a worker container; that container is stopped mid-job and
another one finishes the job, once. Prints image size, build time and time-to-ready."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from tests.deploy.conftest import ROOT, Containers, Image, docker
from tests.fakes.openai_server import FakeOpenAIServer
from tests.service.conftest import PG_ADMIN, _pg_available, fake_spec, free_port, wait_job
from tests.worker.conftest import REDIS_HOST, REDIS_PORT, _redis_available

pytestmark = [pytest.mark.docker, pytest.mark.timeout(2400)]
METRICS = Path(__file__).resolve().parents[2] / ".cache" / "docker" / "metrics.json"


@pytest.fixture
def fresh_db() -> Iterator[tuple[str, str]]:
    """A fresh, empty PostgreSQL database (the migrate container creates the schema)."""
    if not _pg_available():
        pytest.skip("PostgreSQL at 127.0.0.1:5432 not reachable")
    name = f"nmtune_dtest_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    admin_base = PG_ADMIN.rsplit("/", 1)[0]
    yield (
        admin_base.replace("postgresql://", "postgresql+psycopg://") + f"/{name}",
        (f"{admin_base}/{name}"),
    )
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def redis_db() -> Iterator[tuple[str, str]]:
    if not _redis_available():
        pytest.skip(f"Redis at {REDIS_HOST}:{REDIS_PORT} not reachable")
    index = random.randint(1, 15)
    queue = f"nmtune-dtest-{uuid.uuid4().hex[:10]}"
    yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{index}", queue
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=index)
    for key in client.scan_iter(f"*{queue}*"):
        client.delete(key)
    client.delete(queue)


def records(n_per_class: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n_per_class):
        for label in ("pos", "neg"):
            split = "test" if i % 4 == 3 else "train"
            out.append({"text": f"{label} review number {i}", "label": label, "split": split})
    return out


def wait_train_progress(c: httpx.Client, job_id: str, epochs: int, timeout: float) -> None:
    deadline = time.time() + timeout
    while True:
        job = c.get(f"/v1/jobs/{job_id}").json()
        if job.get("stage") == "train" and job["progress"]["done"] >= epochs:
            return
        assert job["status"] in ("queued", "running"), job
        assert time.time() < deadline, f"job never reached train epoch {epochs}: {job}"
        time.sleep(0.1)


def container_space(name: str) -> str:
    """The process space (hostname/PID namespace) of a running container, as its worker
    writes it into the job row."""
    pid = docker("inspect", "--format", "{{.State.Pid}}", name).stdout.strip()
    return f"{socket.gethostname()}/pidns-{os.stat(f'/proc/{pid}/ns/pid').st_ino}"


def job_events(logs: str, job_id: str) -> list[str]:
    """The engine's JSON log messages about one job, in order."""
    events: list[str] = []
    for line in logs.splitlines():
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("job_id") == job_id and rec.get("msg") in ("job started", "job finished"):
            events.append(rec["msg"])
    return events


def report(image: Image, **numbers: float) -> None:
    data = {
        "image": image.tag,
        "base": image.base,
        "torch_wheel": image.torch_wheel,
        "image_size_mb": round(image.size_bytes / 1e6, 1),
        "build_s": round(image.build_s, 1),
        "build_cached_steps": image.cached_steps,
        **{k: round(v, 2) for k, v in numbers.items()},
    }
    METRICS.parent.mkdir(parents=True, exist_ok=True)
    METRICS.write_text(json.dumps(data, indent=2) + "\n")
    print("\nnmtune deployment:", json.dumps(data))


def test_stack_on_containers_survives_a_stopped_worker(
    image: Image,
    containers: Containers,
    fresh_db: tuple[str, str],
    redis_db: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    db_url, db_plain = fresh_db
    broker_url, queue = redis_db
    tag = uuid.uuid4().hex[:6]
    with FakeOpenAIServer(dim=8) as up:
        spec = fake_spec(up)  # an OpenAI-compatible upstream on loopback: host network reaches it
        env = {
            "NMTUNE_DATABASE_URL": db_url,
            "NMTUNE_RUNNER": "celery",
            "NMTUNE_CELERY_BROKER_URL": broker_url,
            "NMTUNE_CELERY_QUEUE": queue,
            "NMTUNE_BACKBONES": json.dumps([spec]),
            "NMTUNE_CELERY_DISPATCH_INTERVAL_S": "1",
            "NMTUNE_HEARTBEAT_INTERVAL_S": "0.5",
            "NMTUNE_STALE_AFTER_S": "5",
            "NMTUNE_LOG_JSON": "true",
            "NMTUNE_WORKER_DEVICE": "cpu",
            "NMTUNE_COMPUTE_TORCH_THREADS": "1",
        }

        # 1. migrate: a one-shot container creates the schema in the fresh database
        t0 = time.perf_counter()
        mig = containers.run(f"nmtune-migrate-{tag}", ["migrate"], env, detach=False)
        migrate_s = time.perf_counter() - t0
        assert mig.returncode == 0, mig.stdout + mig.stderr
        with psycopg.connect(db_plain) as conn:
            version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        assert version is not None

        # 2. an API key, made by the CLI in a container
        keys = containers.run(
            f"nmtune-keys-{tag}", ["keys", "create", "--tenant", "deploy"], env, detach=False
        )
        assert keys.returncode == 0, keys.stderr
        found = re.search(r"api_key: (\S+)", keys.stdout)
        assert found, keys.stdout
        api_key = found.group(1)

        # 3. the API, with the image's HEALTHCHECK: time-to-ready and time-to-healthy
        port = free_port()
        api = f"nmtune-api-{tag}"
        t0 = time.perf_counter()
        started = containers.run(
            api,
            ["serve", "--host", "127.0.0.1", "--port", str(port)],
            {**env, "NMTUNE_HEALTHCHECK_URL": f"http://127.0.0.1:{port}/healthz"},
            healthcheck=True,
        )
        assert started.returncode == 0, started.stderr
        base = f"http://127.0.0.1:{port}"
        ready_s = None
        while time.perf_counter() - t0 < 120:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    ready_s = time.perf_counter() - t0
                    break
            except httpx.HTTPError:
                pass
            assert containers.state(api)["Running"], containers.logs(api)
            time.sleep(0.1)
        assert ready_s is not None, containers.logs(api)
        health: dict[str, Any] = {}
        while time.perf_counter() - t0 < 120:
            health = containers.state(api).get("Health") or {}
            if health.get("Status") == "healthy":
                break
            time.sleep(0.2)
        healthy_s = time.perf_counter() - t0
        assert health.get("Status") == "healthy", (health, containers.logs(api))
        assert health["Log"] and health["Log"][-1]["ExitCode"] == 0

        # 4. a worker container
        worker1 = f"nmtune-worker1-{tag}"
        t0 = time.perf_counter()
        assert containers.run(worker1, ["worker", "--queues", queue], env).returncode == 0
        c = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
        recs = records(24)  # 48 texts
        r = c.post("/v1/datasets", json={"name": "deploy", "records": recs})
        assert r.status_code == 201, r.text
        ds = r.json()
        r = c.post(
            "/v1/heads",
            json={
                "dataset_id": ds["id"],
                "backbone": "fake",
                "method": "lp",
                # long enough to be stopped mid-way on a quiet machine (~5 ms an epoch)
                "overrides": {"lp_epochs": 4000},
            },
        )
        assert r.status_code == 202, r.text
        head_id, job_id = r.json()["head"]["id"], r.json()["job"]["id"]
        wait_train_progress(c, job_id, 2, timeout=180)
        worker_first_job_s = time.perf_counter() - t0

        # 5. stop the worker container mid-job (SIGTERM, then SIGKILL after 1 s)
        docker("stop", "--time", "1", worker1, timeout=60)
        assert not containers.state(worker1)["Running"]
        job = c.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "running", ("the job ended before the stop", job)
        assert job["attempts"] == 1
        paid = len(up.inputs_seen)
        assert paid == len(recs)

        # 6. another worker container: the stale job is re-queued and finishes there, once
        worker2 = f"nmtune-worker2-{tag}"
        assert containers.run(worker2, ["worker", "--queues", queue], env).returncode == 0
        space2 = container_space(worker2)  # (the kernel may reuse worker1's namespace id)
        job = wait_job(c, job_id, timeout=900)
        assert job["status"] == "succeeded", (job, containers.all_logs())
        assert job["attempts"] == 2
        assert len(up.inputs_seen) == paid  # the cache kept the first worker's embeddings
        with psycopg.connect(db_plain) as conn:
            row = conn.execute("SELECT worker_id FROM jobs WHERE id = %s", (job_id,)).fetchone()
            heads = conn.execute(
                "SELECT count(*) FROM heads WHERE dataset_id = %s", (ds["id"],)
            ).fetchone()
        assert row is not None and row[0] == f"{space2}:1", row  # ran on worker2, as pid 1
        assert heads == (1,)
        assert job_events(containers.logs(worker1, tail=None), job_id) == ["job started"]
        assert job_events(containers.logs(worker2, tail=None), job_id) == [
            "job started",
            "job finished",
        ]

        # 7. predict through the API container
        r = c.post(f"/v1/heads/{head_id}/predict", json={"inputs": [recs[0]["text"]], "top_k": 2})
        assert r.status_code == 200, r.text
        assert len(r.json()["predictions"]) == 1
        assert containers.state(api)["Health"]["Status"] == "healthy"
        assert containers.state(worker2)["Running"]

    with capsys.disabled():
        report(
            image,
            migrate_s=migrate_s,
            api_time_to_ready_s=ready_s,
            api_time_to_healthy_s=healthy_s,
            worker_time_to_first_epoch_s=worker_first_job_s,
        )


def test_host_compose_file_runs_the_stack(
    image: Image,
    fresh_db: tuple[str, str],
    redis_db: tuple[str, str],
    tmp_path: Path,
) -> None:
    """deploy/docker-compose.host.yml, run by docker-compose: migrate completes, then the API
    (healthy by its compose health check on /readyz) and a worker train and serve a head."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose not installed (apt-get install docker-compose)")
    db_url, _ = fresh_db
    broker_url, queue = redis_db
    port = free_port()
    project = f"nmtune-dtest-{uuid.uuid4().hex[:6]}"
    with FakeOpenAIServer(dim=8) as up:
        config = tmp_path / "config"
        config.mkdir()
        (config / "backbones.json").write_text(json.dumps({"backbones": [fake_spec(up)]}))
        for p in (tmp_path, config, config / "backbones.json"):
            p.chmod(0o755 if p.is_dir() else 0o644)  # readable by the image's uid 10001
        env = dict(
            os.environ,
            NMTUNE_IMAGE=image.tag,
            NMTUNE_DATABASE_URL=db_url,
            NMTUNE_CELERY_BROKER_URL=broker_url,
            NMTUNE_CELERY_QUEUE=queue,
            NMTUNE_PORT=str(port),
            NMTUNE_CONFIG_DIR=str(config),
        )
        compose = [binary, "-f", str(ROOT / "deploy" / "docker-compose.host.yml"), "-p", project]

        def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*compose, *args], env=env, capture_output=True, text=True, timeout=timeout
            )

        try:
            t0 = time.perf_counter()
            upped = run("up", "-d")
            assert upped.returncode == 0, upped.stderr
            api = f"{project}_api_1"
            status = ""
            while time.perf_counter() - t0 < 180:
                status = docker("inspect", "--format", "{{.State.Health.Status}}", api).stdout
                if status.strip() == "healthy":
                    break
                time.sleep(0.5)
            assert status.strip() == "healthy", run("logs").stdout[-4000:]
            mig = json.loads(docker("inspect", f"{project}_migrate_1").stdout)[0]["State"]
            assert mig["Status"] == "exited" and mig["ExitCode"] == 0
            keys = run("exec", "-T", "api", "nmtune", "keys", "create", "--tenant", "compose")
            found = re.search(r"api_key: (\S+)", keys.stdout)
            assert found, keys.stdout + keys.stderr
            c = httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {found.group(1)}"},
                timeout=30,
            )
            recs = records(8)
            ds = c.post("/v1/datasets", json={"name": "compose", "records": recs}).json()
            r = c.post(
                "/v1/heads", json={"dataset_id": ds["id"], "backbone": "fake", "method": "lr"}
            )
            assert r.status_code == 202, r.text
            job = wait_job(c, r.json()["job"]["id"], timeout=600)
            assert job["status"] == "succeeded", (job, run("logs").stdout[-4000:])
            pred = c.post(
                f"/v1/heads/{r.json()['head']['id']}/predict", json={"inputs": [recs[0]["text"]]}
            )
            assert pred.status_code == 200, pred.text
        finally:
            run("down", "--timeout", "5")
