"""Tenant isolation and API keys."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from nmtune.service.auth.models import ApiKey
from nmtune.service.auth.service import hash_key, revoke_key
from tests.service.conftest import fake_spec, post_head, sentiment_records, wait_job


def test_missing_and_invalid_keys_get_401(serve: Any, fake_upstream: Any) -> None:
    run = serve(None, [fake_spec(fake_upstream)])
    for client in (run.client(None), run.client("nmt_not-a-key")):
        r = client.get("/v1/datasets")
        assert r.status_code == 401
        assert r.json()["error"] == "Unauthorized"


def test_revoked_key_is_refused(serve: Any, fake_upstream: Any) -> None:
    run = serve(None, [fake_spec(fake_upstream)])
    assert run.client().get("/v1/datasets").status_code == 200
    with run.db.session() as s:
        key_id = s.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(run.key_a)))
        assert key_id and revoke_key(s, key_id)
    assert run.client().get("/v1/datasets").status_code == 401


def test_tenants_see_only_their_own(serve: Any, fake_upstream: Any) -> None:
    run = serve(None, [fake_spec(fake_upstream)])
    a, b = run.client("a"), run.client("b")
    ds = a.post("/v1/datasets", json={"name": "mine", "records": sentiment_records(6)}).json()
    created = post_head(a, ds["id"], "lp", lp_epochs=2)
    job = wait_job(a, created["job"]["id"])
    assert job["status"] == "succeeded"
    hid, jid = created["head"]["id"], created["job"]["id"]

    for path in (
        f"/v1/datasets/{ds['id']}",
        f"/v1/heads/{hid}",
        f"/v1/jobs/{jid}",
        f"/v1/heads/{hid}/spectrum",
        f"/v1/datasets/{ds['id']}/spectrum?backbone=fake&split=train",
    ):
        r = b.get(path)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"] == "NotFound"
    assert b.post(f"/v1/heads/{hid}/predict", json={"inputs": ["x"]}).status_code == 404
    assert b.post(f"/v1/jobs/{jid}/cancel").status_code == 404
    assert b.delete(f"/v1/datasets/{ds['id']}").status_code == 404
    assert b.delete(f"/v1/heads/{hid}").status_code == 404
    r = b.post("/v1/heads", json={"dataset_id": ds["id"], "backbone": "fake", "method": "lp"})
    assert r.status_code == 404
    assert b.get("/v1/datasets").json()["total"] == 0
    assert b.get("/v1/heads").json()["total"] == 0
    # nothing of A's changed
    assert a.get(f"/v1/heads/{hid}").json()["status"] == "ready"


def test_cache_is_scoped_per_tenant(serve: Any, fake_upstream: Any) -> None:
    run = serve(None, [fake_spec(fake_upstream)])
    recs = sentiment_records(6, ood=False)
    for who in ("a", "b"):
        c = run.client(who)
        ds = c.post("/v1/datasets", json={"name": "same", "records": recs}).json()
        before = fake_upstream.request_count
        created = post_head(c, ds["id"], "lp", lp_epochs=1)
        assert wait_job(c, created["job"]["id"])["status"] == "succeeded"
        # each tenant pays for its own vectors: no cross-tenant cache reads
        assert fake_upstream.request_count > before


def test_key_lookups_are_cached_for_the_ttl(serve: Any, fake_upstream: Any) -> None:
    import time

    run = serve(None, [fake_spec(fake_upstream)], auth_cache_ttl_s=1.0)
    assert run.client().get("/v1/datasets").status_code == 200
    with run.db.session() as s:
        key_id = s.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(run.key_a)))
        assert key_id and revoke_key(s, key_id)
    assert run.client().get("/v1/datasets").status_code == 200  # cached
    time.sleep(1.2)
    assert run.client().get("/v1/datasets").status_code == 401  # the revocation is seen


def test_ttl_cache() -> None:
    import time

    from nmtune.service.ttl_cache import TTLCache

    c: TTLCache[str, int] = TTLCache(maxsize=2, ttl_s=0.2)
    c.put("a", 1)
    c.put("b", 2)
    c.put("c", 3)
    assert c.get("a") is None and c.get("b") == 2 and c.get("c") == 3
    time.sleep(0.25)
    assert c.get("b") is None
    off: TTLCache[str, int] = TTLCache(maxsize=2, ttl_s=0)
    off.put("a", 1)
    assert off.get("a") is None


def test_backbone_secrets_never_leave_the_service(serve: Any, fake_upstream: Any) -> None:
    run = serve(None, [fake_spec(fake_upstream)])
    c = run.client()
    r = c.get("/v1/backbones")
    assert r.status_code == 200
    assert r.json()["items"][0]["name"] == "fake"
    assert "sk-test-secret" not in r.text
    ds = c.post("/v1/datasets", json={"name": "s", "records": sentiment_records(4)}).json()
    created = c.post(
        "/v1/heads",
        json={
            "dataset_id": ds["id"],
            "backbone": "fake",
            "method": "lp",
            "overrides": {"lp_epochs": 1},
        },
    )
    assert "sk-test-secret" not in created.text
    wait_job(c, created.json()["job"]["id"])
    assert "sk-test-secret" not in c.get(f"/v1/heads/{created.json()['head']['id']}").text
