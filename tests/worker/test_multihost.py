"""Multi-host: the API and two Celery workers as separate hosts (network namespaces, veth
pairs; tests/worker/netns.py). A worker is cut off the network mid-job (its link goes down
while it keeps running): its heartbeats stop reaching the database, the job is re-queued
when they go stale and finishes on the other worker, with one head, and every text paid to
the embedding backend once (the cut worker had stored all embeddings before it was cut).

Needs root and a kernel that allows `ip netns add`; skipped with the reason otherwise."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from nmtune.service.auth.service import create_key
from nmtune.service.db.session import Database
from nmtune.service.embeddings.models import CachedEmbedding
from nmtune.service.heads.models import Head
from nmtune.service.jobs.models import Job
from tests import logscan
from tests.fakes.openai_server import FakeOpenAIServer
from tests.service.conftest import fake_spec, free_port, sentiment_records, wait_job
from tests.worker.conftest import ROOT, Broker, Procs, service_env
from tests.worker.netns import Forwarder, NetnsUnavailable, Topology

pytestmark = pytest.mark.slow

HOSTS = ["api", "w1", "w2"]
#: long enough that the cut lands mid-training on a fast machine, short enough to retrain
EPOCHS = 500


@dataclass
class Cluster:
    topo: Topology
    fwd: Forwarder
    pg_port: int
    redis_port: int

    def url(self, port: int) -> str:
        return f"{self.topo.service_ip}:{port}"


@pytest.fixture
def cluster(procs: Procs) -> Iterator[Cluster]:
    """The hosts' namespaces and the forwarder; the hosts' processes end before them."""
    try:
        topo = Topology(HOSTS)
        topo.up()
    except NetnsUnavailable as exc:
        pytest.skip(f"network namespaces unavailable: {exc}")
    fwd = Forwarder(topo.service_ip)
    try:
        fwd.start()
        yield Cluster(topo, fwd, fwd.add(5432), fwd.add(6379))
    finally:
        procs.close()
        fwd.stop()
        topo.down()
        assert not topo.leftovers(), f"namespaces or links left behind: {topo.leftovers()}"


def spawn(procs: Procs, topo: Topology, host: str, argv: list[str], env: dict[str, str]) -> Any:
    log = procs.tmp / f"{host}.log"
    logscan.register_env(env, f"test_multihost {host}")
    logscan.register_log(log)
    proc = subprocess.Popen(
        [*topo.exec_argv(host), sys.executable, "-m", "nmtune.service.cli", *argv],
        env=env,
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    procs.procs.append(proc)
    return proc


def wait_for(what: str, check: Any, procs: Procs, timeout: float = 90) -> Any:
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.time() < deadline, f"timed out waiting for {what}\n{procs.logs()}"
        time.sleep(0.05)


def test_worker_cut_off_mid_job_finishes_on_other_host(
    pg_db: str, broker: Broker, procs: Procs, cluster: Cluster
) -> None:
    topo, fwd = cluster.topo, cluster.fwd
    db = Database(pg_db)  # the test's own view of the database (root namespace, loopback)
    with db.session() as s:
        key = create_key(s, "multihost").key
    with FakeOpenAIServer(dim=8) as up:
        up_port = fwd.add(up.port)
        # one configuration for every host: the same service address everywhere
        spec = fake_spec(up) | {"base_url": f"http://{cluster.url(up_port)}/v1"}
        db_url = pg_db.replace("127.0.0.1:5432", cluster.url(cluster.pg_port))
        assert db_url != pg_db
        broker_url = broker.url.replace(
            broker.url.split("//", 1)[1].split("/", 1)[0], cluster.url(cluster.redis_port)
        )
        env = service_env(db_url, Broker(broker_url, broker.queue), [spec])

        api_ip, api_port = topo.hosts["api"].ns_ip, free_port()
        spawn(procs, topo, "api", ["serve", "--host", api_ip, "--port", str(api_port)], env)
        worker_argv = ["worker", "--queues", broker.queue, "--concurrency", "1"]
        workers = {h: spawn(procs, topo, h, worker_argv, env) for h in ("w1", "w2")}

        c = httpx.Client(
            base_url=f"http://{api_ip}:{api_port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
            trust_env=False,
        )

        def api_up() -> bool:
            try:
                return c.get("/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the API host's /readyz", api_up, procs)
        recs = sentiment_records(20, ood=False)  # 40 distinct texts
        texts = {r["text"] for r in recs}
        ds = c.post("/v1/datasets", json={"name": "mh", "records": recs})
        assert ds.status_code == 201, ds.text
        r = c.post(
            "/v1/heads",
            json={
                "dataset_id": ds.json()["id"],
                "backbone": "fake",
                "method": "lp",
                "overrides": {"lp_epochs": EPOCHS},
            },
        )
        assert r.status_code == 202, r.text
        job_id, head_id = r.json()["job"]["id"], r.json()["head"]["id"]

        def training() -> str | None:
            with db.session() as s:
                job = s.get(Job, job_id)
                assert job is not None
                assert job.status in ("queued", "running"), (job.status, job.error)
                if job.stage == "train" and job.progress_done >= 2 and job.worker_id:
                    return job.worker_id
            return None

        first_worker = wait_for("the job to train on a worker", training, procs)
        by_pid = {f":{p.pid}": h for h, p in workers.items()}
        cut_host = next((h for suffix, h in by_pid.items() if first_worker.endswith(suffix)), None)
        assert cut_host is not None, f"job on {first_worker}, not on {by_pid}"
        other = "w2" if cut_host == "w1" else "w1"
        assert up.request_count > 0 and Counter(up.inputs_seen) == Counter(texts)

        topo.cut(cut_host)  # the link goes down ...
        fwd.cut(topo.hosts[cut_host].ns_ip)  # ... and the servers drop its connections
        with db.session() as s:
            job = s.get(Job, job_id)
            assert job is not None
            assert job.status == "running" and job.attempts == 1, (
                f"job ended before {cut_host} was cut off (raise EPOCHS): {job.status}"
            )

        job_body = wait_job(c, job_id, timeout=120)
        assert job_body["status"] == "succeeded", (job_body, procs.logs())
        assert job_body["attempts"] == 2
        with db.session() as s:
            job = s.get(Job, job_id)
            assert job is not None and job.worker_id is not None
            assert job.worker_id.endswith(f":{workers[other].pid}"), (job.worker_id, other)
            heads = s.scalars(select(Head)).all()
            rows = s.scalar(select(func.count()).select_from(CachedEmbedding))
        assert [(h.id, h.status) for h in heads] == [(head_id, "ready")]
        assert rows == len(texts)
        # nothing paid twice: the second worker trained from the cache
        assert Counter(up.inputs_seen) == Counter(texts), Counter(up.inputs_seen).most_common(3)
        pred = c.post(f"/v1/heads/{head_id}/predict", json={"inputs": [recs[0]["text"]]})
        assert pred.status_code == 200, pred.text
        assert Counter(up.inputs_seen) == Counter(texts)  # served from the cache as well

        # the cut worker is alive (partitioned, not dead) and never got through again
        assert workers[cut_host].poll() is None, procs.logs()
        assert fwd.accepted[topo.hosts[other].ns_ip] > 0
        assert fwd.accepted[topo.hosts["api"].ns_ip] > 0
        c.close()
    db.dispose()
