"""Issue 12, shared limits and honest failures with Redis: the request rate limit lives in
the real Redis on 127.0.0.1:6379 (a key prefix unique to this test), so two API instances
share one limit; a broker that is down answers 503 with Retry-After on a connection that
stays open."""

from __future__ import annotations

import http.client
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from pydantic import SecretStr

from tests.service.conftest import fake_spec, free_port, sentiment_records

REDIS_HOST = os.environ.get("NMTUNE_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("NMTUNE_TEST_REDIS_PORT", "6379"))


@pytest.fixture
def redis_prefix() -> Iterator[tuple[str, str]]:
    """(storage URL, key prefix unique to this test); its keys are deleted afterwards."""
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=0, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_HOST}:{REDIS_PORT} is required in CI")
        pytest.skip(f"Redis at {REDIS_HOST}:{REDIS_PORT} not reachable")
    prefix = f"nmtune-test-rl-{uuid.uuid4().hex[:12]}"
    yield f"redis://{REDIS_HOST}:{REDIS_PORT}/0", prefix
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


def _envelope(status: int, body: bytes | str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(body)
    assert set(out) == {"error", "detail", "field"}, (status, out)
    return out


def test_two_api_instances_share_one_rate_limit_in_redis(
    serve: Any, fake_upstream: Any, redis_prefix: tuple[str, str], tmp_path: Any
) -> None:
    url, prefix = redis_prefix
    db_url = f"sqlite:///{tmp_path / 'shared.db'}"
    kw = {
        "rate_limit": "6/minute",
        "rate_limit_storage_url": SecretStr(url),
        "rate_limit_key_prefix": prefix,
    }
    one = serve(db_url, [fake_spec(fake_upstream)], **kw)
    two = serve(db_url, [fake_spec(fake_upstream)], **kw)  # same database: same keys
    headers = {"Authorization": f"Bearer {one.key_a}"}
    with httpx.Client(headers=headers, timeout=60) as c:
        # alternate between the two instances
        codes = [c.get(f"{(one, two)[i % 2].base_url}/v1/datasets").status_code for i in range(6)]
        over = [c.get(f"{run.base_url}/v1/datasets") for run in (one, two)]
    assert codes == [200] * 6
    for r in over:  # the 7th and 8th, on either instance, are over the shared limit
        assert r.status_code == 429, r.text
        body = _envelope(r.status_code, r.content)
        assert body["error"] == "TooManyRequests" and "6 per 1 minute" in body["detail"]
        assert 1 <= int(r.headers["Retry-After"]) <= 60
    # another tenant has its own count; the counts really are in Redis under the prefix
    assert one.client("b").get("/v1/datasets").status_code == 200
    keys = list(redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=0).scan_iter(f"{prefix}*"))
    assert len(keys) == 2, keys  # one moving window per tenant


def test_in_memory_limits_are_per_instance(serve: Any, fake_upstream: Any, tmp_path: Any) -> None:
    """The contrast: without Redis each process counts alone (documented)."""
    db_url = f"sqlite:///{tmp_path / 'mem.db'}"
    one = serve(db_url, [fake_spec(fake_upstream)], rate_limit="3/minute")
    two = serve(db_url, [fake_spec(fake_upstream)], rate_limit="3/minute")
    headers = {"Authorization": f"Bearer {one.key_a}"}
    with httpx.Client(base_url=one.base_url, headers=headers, timeout=60) as c:
        assert [c.get("/v1/datasets").status_code for _ in range(4)] == [200, 200, 200, 429]
        assert c.get(f"{two.base_url}/v1/datasets").status_code == 200


def test_broker_unreachable_is_503_with_retry_after_and_the_connection_stays_open(
    serve: Any, fake_upstream: Any
) -> None:
    closed = free_port()  # nothing listens here
    run = serve(
        None,
        [fake_spec(fake_upstream)],
        runner="celery",
        celery_broker_url=SecretStr(f"redis://127.0.0.1:{closed}/0"),
        celery_queue=f"nmtune-test-{uuid.uuid4().hex[:8]}",
        rate_limit_storage_url=None,
    )
    c = run.client()
    ds = c.post("/v1/datasets", json={"name": "b", "records": sentiment_records(4)})
    assert ds.status_code == 201, ds.text  # what needs no broker keeps working
    with run.db.session() as s:
        from nmtune.service.heads.models import Head
        from nmtune.service.jobs.models import Job

        before = (s.query(Head).count(), s.query(Job).count())

    host, port = run.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    auth = {"Authorization": f"Bearer {run.key_a}", "Content-Type": "application/json"}
    body = json.dumps({"dataset_id": ds.json()["id"], "backbone": "fake", "method": "lp"})
    try:
        conn.request("POST", "/v1/heads", body=body, headers=auth)
        r = conn.getresponse()
        payload = r.read()
        assert r.status == 503, payload
        env = _envelope(r.status, payload)
        assert env["error"] == "ServiceUnavailable" and "queue" in env["detail"]
        assert int(r.getheader("Retry-After") or 0) >= 1
        assert not r.will_close and (r.getheader("Connection") or "").lower() != "close"
        sock = conn.sock
        conn.request("GET", "/readyz")  # the same connection: not reset
        ready = conn.getresponse()
        ready_body = json.loads(ready.read())
        assert conn.sock is sock and ready.status == 503
        assert ready_body["checks"]["runner"].startswith("error"), ready_body
    finally:
        conn.close()
    with run.db.session() as s:
        assert (s.query(Head).count(), s.query(Job).count()) == before  # nothing stored
