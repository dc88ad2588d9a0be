"""The embedding cache, proven at the upstream server over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import func, select

from nmtune.service.auth.service import create_key
from nmtune.service.db.migrate import upgrade
from nmtune.service.db.session import Database
from nmtune.service.embeddings.models import CachedEmbedding
from tests.fakes.openai_server import FakeOpenAIServer
from tests.service.conftest import (
    fake_spec,
    free_port,
    post_head,
    sentiment_records,
    start_api,
    wait_job,
)


def test_second_head_makes_zero_backend_calls(serve: Any, fake_upstream: FakeOpenAIServer) -> None:
    run = serve(None, [fake_spec(fake_upstream)])
    c = run.client()
    recs = sentiment_records(10)
    ds = c.post("/v1/datasets", json={"name": "c", "records": recs}).json()
    fake_upstream.reset()
    first = post_head(c, ds["id"], "lp", lp_epochs=2)
    assert wait_job(c, first["job"]["id"])["status"] == "succeeded"
    n_first = fake_upstream.request_count
    assert n_first > 0
    assert sorted(fake_upstream.inputs_seen) == sorted({r["text"] for r in recs})

    second = post_head(c, ds["id"], "nmtune", epochs=2)
    assert wait_job(c, second["job"]["id"])["status"] == "succeeded"
    assert fake_upstream.request_count == n_first  # zero backend calls

    # predicting on training texts: warm cache, no call either; a new text costs one call
    hid = second["head"]["id"]
    assert c.post(f"/v1/heads/{hid}/predict", json={"inputs": [recs[0]["text"]]}).status_code == 200
    assert fake_upstream.request_count == n_first
    assert c.post(f"/v1/heads/{hid}/predict", json={"inputs": ["brand new"]}).status_code == 200
    assert fake_upstream.request_count == n_first + 1


def test_failed_job_keeps_what_was_paid_for(serve: Any) -> None:
    with FakeOpenAIServer(dim=8) as up:
        run = serve(None, [fake_spec(up)], embed_chunk_size=10, job_max_attempts=1)
        c = run.client()
        recs = sentiment_records(20, ood=False)  # 40 unique texts -> 4 chunks
        ds = c.post("/v1/datasets", json={"name": "p", "records": recs}).json()
        # chunks 1 and 2 succeed, then the upstream rejects the key: the job fails fast
        up.inject(status=200, kind="slow", delay=0.0, times=2)
        up.inject(status=401, times=50)
        created = c.post(
            "/v1/heads", json={"dataset_id": ds["id"], "backbone": "fake", "method": "lp"}
        ).json()
        job = wait_job(c, created["job"]["id"])
        assert job["status"] == "failed" and job["error"]["type"] == "AuthError"
        assert c.get(f"/v1/heads/{created['head']['id']}").json()["status"] == "failed"
        with run.db.session() as s:
            assert s.scalar(select(func.count()).select_from(CachedEmbedding)) == 20
        up.reset()
        again = post_head(c, ds["id"], "lp", lp_epochs=1)
        assert wait_job(c, again["job"]["id"])["status"] == "succeeded"
        assert len(up.inputs_seen) == 20  # only the 20 that were never paid for


def test_job_killed_mid_embedding_resumes_without_reembedding(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    upgrade(url)
    db = Database(url)
    with db.session() as s:
        key = create_key(s, "killer").key
    with FakeOpenAIServer(dim=8) as up:
        env = dict(
            os.environ,
            NMTUNE_DATABASE_URL=url,
            NMTUNE_BACKBONES=json.dumps([fake_spec(up)]),
            NMTUNE_EMBED_CHUNK_SIZE="5",
            NMTUNE_HEARTBEAT_INTERVAL_S="0.5",
            NMTUNE_STALE_AFTER_S="30",
            NMTUNE_LOG_JSON="false",
        )
        port = free_port()
        log = tmp_path / "serve.log"
        proc = start_api(env, port, log)
        headers = {"Authorization": f"Bearer {key}"}
        c = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30)
        recs = sentiment_records(20, ood=False)  # 40 texts -> 8 chunks of 5
        ds = c.post("/v1/datasets", json={"name": "k", "records": recs}).json()
        up.inject(status=200, kind="slow", delay=0.4, times=100)  # every batch takes 0.4 s
        created = post_head(c, ds["id"], "lp", lp_epochs=2)
        job_id = created["job"]["id"]
        deadline = time.time() + 30
        while c.get(f"/v1/jobs/{job_id}").json()["progress"]["done"] < 15:
            assert time.time() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with db.session() as s:
            stored = s.scalar(select(func.count()).select_from(CachedEmbedding))
        assert stored is not None and 15 <= stored < 40
        seen_before = list(up.inputs_seen)

        up.reset()
        proc = start_api(env, port, log)  # the dead worker's job is picked up again
        try:
            job = wait_job(c, job_id, timeout=120)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2
        # the restart paid only for what was missing
        assert len(up.inputs_seen) <= 40 - stored
        assert not set(up.inputs_seen) & set(seen_before[:stored])
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(CachedEmbedding)) == 40


def test_repository_reads_writes_and_counts_without_duplicates(any_db_url: str) -> None:
    from nmtune.service.auth.service import get_or_create_tenant
    from nmtune.service.embeddings import repository as repo

    upgrade(any_db_url)
    db = Database(any_db_url)
    with db.session() as s:
        tid = get_or_create_tenant(s, f"t-{os.getpid()}-{time.time_ns()}").id
        other = get_or_create_tenant(s, f"o-{os.getpid()}-{time.time_ns()}").id
    vecs = {f"k{i}": np.full(4, i, dtype=np.float32) for i in range(1200)}
    for _ in range(2):  # a second writer of the same rows changes nothing
        with db.session() as s:
            repo.write_vectors(s, tid, "b" * 64, list(vecs.items()))
    keys = [*vecs, "missing-1", "missing-2"]
    with db.session() as s:
        got = repo.read_vectors(s, tid, "b" * 64, keys)
        assert repo.read_vectors(s, tid, "c" * 64, keys) == {}  # another backbone
        assert repo.read_vectors(s, other, "b" * 64, keys) == {}  # another tenant
        assert repo.count_for_tenant(s, tid) == 1200
    assert set(got) == set(vecs)
    np.testing.assert_array_equal(got["k7"], vecs["k7"])
    db.dispose()
