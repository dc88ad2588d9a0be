"""Job cancellation, deletes, and heads that outlive their dataset."""

from __future__ import annotations

import time
from typing import Any

from tests.service.conftest import fake_spec, sentiment_records, wait_job


def _train(c: Any, ds: str, **overrides: Any) -> dict[str, Any]:
    r = c.post(
        "/v1/heads",
        json={"dataset_id": ds, "backbone": "fake", "method": "nmtune", "overrides": overrides},
    )
    assert r.status_code == 202, r.text
    return dict(r.json())


def test_cancel_running_job_stops_between_epochs(serve: Any, fake_upstream: Any) -> None:
    run = serve(None, [fake_spec(fake_upstream)])
    c = run.client()
    ds = c.post("/v1/datasets", json={"name": "x", "records": sentiment_records(12)}).json()
    created = _train(c, ds["id"], epochs=5000)
    job_id = created["job"]["id"]
    deadline = time.time() + 60
    while not c.get(f"/v1/jobs/{job_id}").json()["epochs"]:
        assert time.time() < deadline
        time.sleep(0.05)
    # the dataset is in use: it cannot be deleted under a running job
    r = c.delete(f"/v1/datasets/{ds['id']}")
    assert r.status_code == 409 and r.json()["error"] == "Conflict"
    r = c.post(f"/v1/jobs/{job_id}/cancel")
    assert r.status_code == 200 and r.json()["cancel_requested"] is True
    job = wait_job(c, job_id, timeout=60)
    assert job["status"] == "cancelled"
    assert 1 <= len(job["epochs"]) < 5000
    assert c.get(f"/v1/heads/{created['head']['id']}").json()["status"] == "cancelled"
    r = c.post(f"/v1/heads/{created['head']['id']}/predict", json={"inputs": ["x"]})
    assert r.status_code == 409
    # cancelling a finished job changes nothing
    assert c.post(f"/v1/jobs/{job_id}/cancel").json()["status"] == "cancelled"


def test_head_outlives_its_dataset(serve: Any, fake_upstream: Any) -> None:
    run = serve(None, [fake_spec(fake_upstream)])
    c = run.client()
    ds = c.post("/v1/datasets", json={"name": "x", "records": sentiment_records(6)}).json()
    created = _train(c, ds["id"], epochs=2)
    assert wait_job(c, created["job"]["id"])["status"] == "succeeded"
    assert c.delete(f"/v1/datasets/{ds['id']}").status_code == 204
    assert c.get(f"/v1/datasets/{ds['id']}").status_code == 404
    head = c.get(f"/v1/heads/{created['head']['id']}").json()
    assert head["status"] == "ready" and head["dataset_id"] is None
    r = c.post(f"/v1/heads/{head['id']}/predict", json={"inputs": ["still works"]})
    assert r.status_code == 200
    assert c.delete(f"/v1/heads/{head['id']}").status_code == 204
    assert c.post(f"/v1/heads/{head['id']}/predict", json={"inputs": ["x"]}).status_code == 404


def test_idempotency_key_makes_head_creation_retry_safe(serve: Any, fake_upstream: Any) -> None:
    from sqlalchemy import func, select

    from nmtune.service.heads.models import Head

    run = serve(None, [fake_spec(fake_upstream)])
    c, other = run.client("a"), run.client("b")
    ds = c.post("/v1/datasets", json={"name": "x", "records": sentiment_records(6)}).json()
    body = {
        "dataset_id": ds["id"],
        "backbone": "fake",
        "method": "lp",
        "overrides": {"lp_epochs": 1},
    }
    first = c.post("/v1/heads", json=body, headers={"Idempotency-Key": "req-1"})
    again = c.post("/v1/heads", json=body, headers={"Idempotency-Key": "req-1"})
    assert first.status_code == again.status_code == 202
    assert again.json()["head"]["id"] == first.json()["head"]["id"]
    assert again.json()["job"]["id"] == first.json()["job"]["id"]
    # same key, different request: refused, nothing created
    changed = c.post("/v1/heads", json={**body, "seed": 7}, headers={"Idempotency-Key": "req-1"})
    assert changed.status_code == 409 and changed.json()["field"] == "Idempotency-Key"
    # keys are per tenant: B's dataset id is unknown to B anyway (404), and no key -> new head
    assert (
        other.post("/v1/heads", json=body, headers={"Idempotency-Key": "req-1"}).status_code == 404
    )
    third = c.post("/v1/heads", json=body)
    assert third.json()["head"]["id"] != first.json()["head"]["id"]
    assert wait_job(c, first.json()["job"]["id"])["status"] == "succeeded"
    with run.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Head)) == 2
