"""Regression tests of issue 12 (hardening): secrets in logs, tenant fairness and quotas,
failure semantics. Real SQLite and PostgreSQL, real HTTP on loopback."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import text

from nmtune.service.db.migrate import upgrade
from nmtune.service.db.session import Database
from nmtune.service.heads.models import Head
from nmtune.service.jobs import repository as jobs_repo
from nmtune.service.jobs.engine import JobEngine
from nmtune.service.jobs.handlers import JobContext, JobFailed, JobHandlers
from nmtune.service.jobs.models import Job, JobStatus
from nmtune.service.jobs.runner import InlineRunner
from nmtune.service.jobs.service import new_job
from nmtune.service.ops.logging import JsonFormatter
from nmtune.service.ops.redaction import install_redaction, redact
from nmtune.service.settings import Settings
from tests.service.conftest import (
    PG_ADMIN,
    fake_spec,
    make_settings,
    post_head,
    sentiment_records,
    wait_job,
)


def dead_spec(name: str = "dead") -> dict[str, Any]:
    """An openai-compatible backbone nobody listens on (connection refused at once)."""
    return {
        "name": name,
        "kind": "openai-compatible",
        "base_url": "http://127.0.0.1:9/v1",
        "model": "m",
        "expected_dim": 16,
        "max_retries": 3,
        "backoff_base_s": 1.0,
        "backoff_max_s": 2.0,
    }


def assert_envelope(r: httpx.Response, status: int, error: str, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail", "field"}, body
    assert body["error"] == error, body
    if field is not None:
        assert body["field"] == field, body


# ------------------------------------------------------------------ 1. secrets in logs
def test_redactor_removes_credentials_tokens_headers_and_pg_values() -> None:
    install_redaction(["configured-secret-42"])
    samples = {
        "url userinfo": "GET http://user:pa55word@host:81/v1/embeddings",
        "query token": "POST http://host/v1/embeddings?token=tok-abcdef&x=1",
        "query api key": "https://h/v1?api_key=abc123def&sig=zzzzzz",
        "auth header dict": "{'Authorization': 'Bearer abcdefghijkl', 'X-Api-Key': 'hdrval99'}",
        "auth header line": "authorization: Basic dXNlcjpwYXNz",
        "bearer": "sent Bearer abcdef123456 to upstream",
        "kv": 'api_key="sk-abcdefghijkl" password=hunter2hunter',
        "openai key": "key sk-proj-ABCDEFGH12345678",
        "nmtune key": "key nmt_ABCDEFGH12345678 used",
        "pg detail": "duplicate key\nDETAIL:  Key (name)=(secret label) already exists.",
        "pg input": 'invalid input syntax for type integer: "tenant text here"',
        "configured": "the value configured-secret-42 leaked",
    }
    leaks = [
        "pa55word",
        "tok-abcdef",
        "abc123def",
        "zzzzzz",
        "abcdefghijkl",
        "hdrval99",
        "dXNlcjpwYXNz",
        "abcdef123456",
        "hunter2hunter",
        "ABCDEFGH12345678",
        "secret label",
        "tenant text here",
        "configured-secret-42",
    ]
    for name, sample in samples.items():
        out = redact(sample)
        for leak in leaks:
            assert leak not in out, (name, out)
    assert "x=1" in redact(samples["query token"])  # non-secret parameters stay
    assert "host:81/v1/embeddings" in redact(samples["url userinfo"])


def test_every_log_record_is_scrubbed_at_creation(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction(["s3cr3t-value"])
    logger = logging.getLogger("httpx")
    with caplog.at_level(logging.INFO, logger="httpx"):
        logger.info('HTTP Request: POST %s "HTTP/1.1 200 OK"', "http://u:s3cr3t-value@h/v1")
        try:
            raise RuntimeError("boom token=abcdefgh123")
        except RuntimeError:
            logger.exception("failed with %s", "s3cr3t-value")
    text_out = caplog.text + "".join(JsonFormatter().format(r) for r in caplog.records)
    assert "s3cr3t-value" not in text_out and "abcdefgh123" not in text_out
    assert "boom" in text_out  # the traceback itself is kept


def test_base_url_with_credentials_or_query_is_rejected_at_config_load() -> None:
    spec = dict(dead_spec(), base_url="http://user:pw-SECRET@127.0.0.1:9/v1?token=SECRET")
    with pytest.raises(ValidationError) as err:
        Settings(backbones=[spec])
    assert "backbones[0].base_url" in str(err.value)
    assert "SECRET" not in str(err.value)
    with pytest.raises(ValidationError) as err:
        Settings(backbones=[dict(dead_spec(), base_url="http://127.0.0.1:9/v1?token=SECRET")])
    assert "backbones[0].base_url" in str(err.value) and "query string" in str(err.value)


def test_no_configured_secret_in_any_log_line_while_driving_real_calls(
    serve: Any, fake_upstream: Any, caplog: pytest.LogCaptureFixture
) -> None:
    spec = dict(
        fake_spec(fake_upstream),
        api_key="sk-live-SECRETKEY-123456",
        extra_headers={"X-Api-Key": "hdr-SECRET-98765"},
    )
    secrets = ["sk-live-SECRETKEY-123456", "SECRETKEY", "hdr-SECRET-98765"]
    clients = ("httpx", "httpcore", "httpx2", "httpcore2", "openai")
    for name in clients:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        with caplog.at_level(logging.DEBUG):
            run = serve(None, [spec])
            c = run.client()
            ds = c.post("/v1/datasets", json={"name": "x", "records": sentiment_records(6)})
            assert ds.status_code == 201, ds.text
            created = post_head(c, ds.json()["id"], "lp")
            assert wait_job(c, created["job"]["id"])["status"] == "succeeded"
            r = c.post(f"/v1/heads/{created['head']['id']}/predict", json={"inputs": ["new text"]})
            assert r.status_code == 200, r.text
            secrets += [run.key_a, run.key_b]
    finally:
        for name in clients:
            logging.getLogger(name).setLevel(logging.WARNING)
    assert fake_upstream.request_count > 0
    lines = caplog.text + "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert any(r.name.startswith(("httpx", "openai")) for r in caplog.records)
    for secret in secrets:
        assert secret not in lines, secret
    # the key did reach the upstream, in the header (the client really used it)
    assert any(
        (req.authorization or "").endswith("sk-live-SECRETKEY-123456")
        for req in fake_upstream.requests
    )


def test_sql_errors_never_carry_parameters(
    any_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    install_redaction()  # as create_app / configure_logging do at start-up
    db = Database(any_db_url)
    table = f"t_{uuid.uuid4().hex[:8]}"
    log = logging.getLogger("nmtune.test")
    try:
        with db.engine.begin() as conn:
            conn.execute(text(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, body TEXT)"))
            conn.execute(text(f"INSERT INTO {table} VALUES (1, 'a')"))
        # (values built at run time: a traceback shows source lines, not the values)
        label, body = "-".join(["tenant", "label", "77"]), "-".join(["tenant", "text", "88"])
        with pytest.raises(Exception) as err, db.engine.begin() as conn:
            conn.execute(text(f"INSERT INTO {table} VALUES (:i, :b)"), {"i": 1, "b": label})
        assert label not in str(err.value)
        assert "hidden" in str(err.value)
        with caplog.at_level(logging.ERROR, logger="nmtune.test"):
            try:
                with db.engine.begin() as conn:
                    conn.execute(text("SELECT CAST(:x AS INTEGER) + 1"), {"x": body})
                    conn.execute(text("SELECT * FROM no_such_table_x WHERE a = :x"), {"x": body})
            except Exception:
                log.exception("query failed")
        assert caplog.records and body not in caplog.text
    finally:
        with db.engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        db.dispose()


# ------------------------------------------------------- 2. no tenant starves another
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 10_000_000),
        ("hidden_ratio", 1e6),
        ("num_layers", 100_000),
        ("auto_cv_folds", 100_000),
        ("batch_size", 10**9),
        ("svd_top_k", 10**9),
        ("lr", 1e300),
        ("min_steps", 10**12),
        ("lp_epochs", 10**9),
        ("auto_time_budget_s", 1e9),
    ],
)
def test_hyperparameter_overrides_have_upper_bounds(
    serve: Any, fake_upstream: Any, field: str, value: Any
) -> None:
    run = serve(None, [fake_spec(fake_upstream)])
    c = run.client()
    ds = c.post("/v1/datasets", json={"name": "x", "records": sentiment_records(4)}).json()
    method = "auto" if field.startswith("auto_") else "nmtune"
    r = c.post(
        "/v1/heads",
        json={
            "dataset_id": ds["id"],
            "backbone": "fake",
            "method": method,
            "overrides": {field: value},
        },
    )
    assert_envelope(r, 422, "ValidationError", f"overrides.{field}")
    assert " in [" in r.json()["detail"] or " in (" in r.json()["detail"]
    with run.db.session() as s:
        assert s.query(Head).count() == 0 and s.query(Job).count() == 0


class _Recorder:
    """A stand-in JobEngine: records the order jobs start, each takes ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started: list[str] = []

    async def run(self, job_id: str) -> str:
        self.started.append(job_id)
        await asyncio.sleep(self.seconds)
        return "succeeded"


async def test_inline_runner_is_round_robin_across_tenants(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rr.db'}"
    upgrade(url)
    db = Database(url)
    from nmtune.service.auth.service import get_or_create_tenant

    with db.session() as s:
        ta = get_or_create_tenant(s, "a").id
        tb = get_or_create_tenant(s, "b").id
        a_jobs = [new_job(s, ta, "train").id for _ in range(5)]
    with db.session() as s:
        b_jobs = [new_job(s, tb, "train").id for _ in range(2)]
    settings = make_settings(url, [], runner_concurrency=1)
    rec = _Recorder(0.05)
    runner = InlineRunner(db, rec, settings)  # type: ignore[arg-type]
    await runner.start()  # picks up the 7 queued jobs, oldest (A's) first
    try:
        deadline = time.time() + 10
        while len(rec.started) < 7:
            assert time.time() < deadline
            await asyncio.sleep(0.02)
    finally:
        await runner.stop()
        db.dispose()
    # A's backlog delays B's next job by at most one job
    assert rec.started[:4] == [a_jobs[0], b_jobs[0], a_jobs[1], b_jobs[1]]
    assert rec.started[4:] == a_jobs[2:]


async def test_one_tenant_runs_at_most_its_cap_of_the_slots(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cap.db'}"
    upgrade(url)
    db = Database(url)
    from nmtune.service.auth.service import get_or_create_tenant

    with db.session() as s:
        ta = get_or_create_tenant(s, "a").id
        [new_job(s, ta, "train") for _ in range(4)]
    settings = make_settings(url, [], runner_concurrency=3)
    assert settings.running_jobs_per_tenant == 2
    rec = _Recorder(0.3)
    runner = InlineRunner(db, rec, settings)  # type: ignore[arg-type]
    await runner.start()
    try:
        await asyncio.sleep(0.15)
        assert len(rec.started) == 2  # the third slot stays free for another tenant
        with db.session() as s:
            tb = get_or_create_tenant(s, "b").id
            b_job = new_job(s, tb, "train").id
        await runner.submit(b_job)
        await asyncio.sleep(0.05)
        assert rec.started[-1] == b_job
    finally:
        await runner.stop()
        db.dispose()


def test_unreachable_backbone_does_not_block_another_tenant(serve: Any, fake_upstream: Any) -> None:
    run = serve(None, [fake_spec(fake_upstream), dead_spec()], runner_concurrency=2)
    a, b = run.client("a"), run.client("b")
    recs = sentiment_records(6)
    ds_a = a.post("/v1/datasets", json={"name": "a", "records": recs}).json()["id"]
    ds_b = b.post("/v1/datasets", json={"name": "b", "records": recs}).json()["id"]
    a_jobs = [post_head(a, ds_a, "lp", backbone="dead")["job"]["id"] for _ in range(4)]
    t0 = time.time()
    b_job = post_head(b, ds_b, "lp", lp_epochs=2, min_steps=0)["job"]["id"]
    while b.get(f"/v1/jobs/{b_job}").json()["status"] == "queued":
        assert time.time() - t0 < 5, "B's job waits behind A's dead-backbone backlog"
        time.sleep(0.1)
    statuses = [a.get(f"/v1/jobs/{j}").json()["status"] for j in a_jobs]
    assert statuses.count("queued") >= 2  # A's backlog is still there, B did not wait for it
    assert wait_job(b, b_job, timeout=120)["status"] == "succeeded"


def test_job_quota_per_tenant_429_with_retry_after(serve: Any, fake_upstream: Any) -> None:
    run = serve(None, [fake_spec(fake_upstream), dead_spec()], max_jobs_per_tenant=2)
    a, b = run.client("a"), run.client("b")
    recs = sentiment_records(4)
    ds_a = a.post("/v1/datasets", json={"name": "a", "records": recs}).json()["id"]
    ds_b = b.post("/v1/datasets", json={"name": "b", "records": recs}).json()["id"]
    for _ in range(2):
        post_head(a, ds_a, "lp", backbone="dead")
    with run.db.session() as s:
        before = (s.query(Head).count(), s.query(Job).count())
    r = a.post("/v1/heads", json={"dataset_id": ds_a, "backbone": "dead", "method": "lp"})
    assert_envelope(r, 429, "TooManyRequests")
    assert int(r.headers["Retry-After"]) >= 1
    assert "max_jobs_per_tenant" in r.json()["detail"]
    with run.db.session() as s:
        assert (s.query(Head).count(), s.query(Job).count()) == before  # nothing stored
    # the other tenant is not affected
    assert post_head(b, ds_b, "lp")["job"]["status"] == "queued"


def test_rate_limit_per_tenant_429_with_retry_after(serve: Any, fake_upstream: Any) -> None:
    run = serve(None, [fake_spec(fake_upstream)], rate_limit="5/minute")
    a, b = run.client("a"), run.client("b")
    codes = [a.get("/v1/datasets").status_code for _ in range(5)]
    assert codes == [200] * 5
    r = a.get("/v1/datasets")
    assert_envelope(r, 429, "TooManyRequests")
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert b.get("/v1/datasets").status_code == 200  # per tenant
    assert a.get("/healthz").status_code == 200  # unauthenticated probes are not limited


def test_event_streams_per_tenant_are_capped(serve: Any, fake_upstream: Any) -> None:
    run = serve(None, [fake_spec(fake_upstream), dead_spec()], max_streams_per_tenant=1)
    a, b = run.client("a"), run.client("b")
    ds = a.post("/v1/datasets", json={"name": "a", "records": sentiment_records(4)}).json()
    job_id = post_head(a, ds["id"], "lp", backbone="dead")["job"]["id"]
    with a.stream("GET", f"/v1/jobs/{job_id}/events") as first:
        assert first.status_code == 200
        lines = first.iter_lines()  # (kept: a dropped iterator closes the stream)
        assert next(lines) == "event: job"
        r = run.client("a").get(f"/v1/jobs/{job_id}/events")
        assert_envelope(r, 429, "TooManyRequests")
        assert r.headers["Retry-After"]
    assert b.get(f"/v1/jobs/{job_id}/events").status_code == 404  # B: not its job
    deadline = time.time() + 5
    while True:  # the slot is free again once the first stream is closed
        with run.client("a").stream("GET", f"/v1/jobs/{job_id}/events") as again:
            if again.status_code == 200:
                break
        assert time.time() < deadline
        time.sleep(0.2)


# ------------------------------------------------------------- 4. failure semantics
def test_each_attempt_starts_a_fresh_epoch_history(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ep.db'}"
    upgrade(url)
    db = Database(url)
    from nmtune.service.auth.service import get_or_create_tenant

    with db.session() as s:
        tid = get_or_create_tenant(s, "a").id
        job_id = new_job(s, tid, "train").id
    assert jobs_repo.claim(db, job_id, "w", 3) is not None
    for e in range(3):
        jobs_repo.add_epoch(db, job_id, {"epoch": e}, e + 1, 3)
    jobs_repo.requeue(db, job_id, {"type": "UnavailableError", "message": "x"})
    job = jobs_repo.claim(db, job_id, "w", 3)
    assert job is not None and job.epochs == [] and job.attempts == 2
    # while attempt 2 runs, the job says why there is one: the transient error of attempt 1
    assert job.error == {"type": "UnavailableError", "message": "x"}
    jobs_repo.add_epoch(db, job_id, {"epoch": 0}, 1, 3)
    with db.session() as s:
        assert [r["epoch"] for r in s.get(Job, job_id).epochs] == [0]  # type: ignore[union-attr]
        assert jobs_repo.finish(s, job_id, JobStatus.SUCCEEDED, result={"ok": 1})
    with db.session() as s:
        assert s.get(Job, job_id).error is None  # type: ignore[union-attr]
    db.dispose()


async def test_job_whose_failure_cannot_be_recorded_is_not_left_running(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    upgrade(url)
    db = Database(url)
    from nmtune.service.auth.service import get_or_create_tenant

    calls: list[str] = []

    async def handler(jc: JobContext) -> dict[str, Any]:
        raise JobFailed("Boom", "the work failed")

    def hook(session: Any, job: Job, status: JobStatus) -> None:
        calls.append(status)
        raise RuntimeError("the terminal hook crashed")

    handlers = JobHandlers()
    handlers.register("train", handler, on_terminal=hook)
    settings = make_settings(url, [])
    engine = JobEngine(db, handlers, settings)
    with db.session() as s:
        tid = get_or_create_tenant(s, "a").id
        job_id = new_job(s, tid, "train").id
    t0 = time.time()
    assert await engine.run(job_id) == "failed"
    assert time.time() - t0 < 5  # released at once, not by the reaper
    with db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.status == JobStatus.FAILED
        assert job.error is not None and job.error["type"] == "InternalError"
        assert job.finished_at is not None
    assert calls  # the hook was tried
    db.dispose()


def test_readyz_is_not_ready_on_a_read_only_sqlite_file(tmp_path: Path, serve: Any) -> None:
    path = tmp_path / "ro.db"
    upgrade(f"sqlite:///{path}")
    run = serve(f"sqlite:///{path}", [])
    assert run.client(None).get("/readyz").status_code == 200
    from nmtune.service.app import create_app
    from tests.service.conftest import ServerThread

    ro = make_settings(f"sqlite:///file:{path}?mode=ro&uri=true", [])
    with ServerThread(create_app(ro)) as base:
        r = httpx.get(f"{base}/readyz", timeout=30)
    assert r.status_code == 503, r.text
    checks = r.json()["checks"]
    assert checks["database"] == "ok" and checks["database_write"].startswith("error")


def test_database_unavailable_is_503_with_retry_after_and_no_reset(serve: Any) -> None:
    name = f"nmtune_down_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except Exception:
        pytest.skip("PostgreSQL not reachable")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        try:
            run = serve(f"{base}/{name}", [], auth_cache_ttl_s=60)
            transport = httpx.HTTPTransport(retries=0)
            with run.client("a", transport=transport) as c:
                assert c.get("/v1/datasets").status_code == 200  # the key is cached now
                admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                )
                r = c.get("/v1/datasets")
                assert_envelope(r, 503, "ServiceUnavailable")
                assert int(r.headers["Retry-After"]) >= 1
                assert c.get("/readyz").status_code == 503  # same connection: not reset
                admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
                deadline = time.time() + 10
                while c.get("/v1/datasets").status_code != 200:
                    assert time.time() < deadline
                    time.sleep(0.2)
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            _drop_later(name)


def _drop_later(name: str) -> None:
    """Drop the database once the test server released its pool (it stops after the test)."""

    def _drop() -> None:
        for _ in range(40):
            time.sleep(0.5)
            try:
                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                        (name,),
                    )
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                return
            except Exception:
                continue

    threading.Thread(target=_drop, daemon=True).start()


def test_settings_validate_the_rate_limit() -> None:
    with pytest.raises(ValidationError) as err:
        Settings(database_url=SecretStr("sqlite:///x.db"), backbones=[], rate_limit="lots")
    assert "rate_limit" in str(err.value)


def _raw_http(base: str, request: bytes, wait_s: float = 10.0) -> bytes:
    """Send raw bytes to the server and read the answer until it closes or wait_s passes."""
    import socket

    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait_s) as sock:
        sock.sendall(request)
        out = b""
        try:
            while b"\r\n\r\n" not in out or len(out.split(b"\r\n\r\n", 1)[1]) == 0:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                out += chunk
        except TimeoutError:
            pass
    return out


def test_chunked_body_over_the_limit_is_413_in_the_envelope(serve: Any) -> None:
    run = serve(None, [], max_request_bytes=2048)

    def chunks() -> Any:
        for _ in range(10):
            yield b'{"name": "' + b"x" * 500

    with run.client() as c:
        r = c.post("/v1/datasets", content=chunks(), headers={"content-type": "application/json"})
    assert_envelope(r, 413, "PayloadTooLarge")
    assert "2048" in r.json()["detail"]


def test_short_body_with_a_long_content_length_times_out_with_408(serve: Any) -> None:
    run = serve(None, [], request_body_timeout_s=1.0)
    t0 = time.time()
    out = _raw_http(
        run.base_url,
        b"POST /v1/datasets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + run.key_a.encode()
        + b'\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"name"',
    )
    took = time.time() - t0
    assert out.startswith(b"HTTP/1.1 408"), out[:200]
    assert b'"error":"RequestTimeout"' in out.replace(b" ", b"")
    assert took < 5, took


# ------------------------------------------------------------------ 3. no 5xx on input
def _counts(run: Any) -> tuple[int, ...]:
    from sqlalchemy import func, select

    from nmtune.service.datasets.models import Dataset, Example

    with run.db.session() as s:
        return tuple(
            int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (Dataset, Example, Head, Job)
        )


def _post_json(c: httpx.Client, path: str, body: Any) -> httpx.Response:
    """JSON with ASCII escapes (``\\ud800`` stays an escape, as a hostile client sends it)."""
    import json

    return c.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


@pytest.fixture
def hostile(serve: Any, fake_upstream: Any, any_db_url: str) -> Any:
    short = dict(fake_spec(fake_upstream, "short"), max_tokens_per_input=8, tokenizer="bytes")
    cut = dict(short, name="cut", input_policy="truncate")
    run = serve(any_db_url, [fake_spec(fake_upstream), short, cut])
    c = run.client()
    recs = sentiment_records(4, ood=False)
    ds = c.post("/v1/datasets", json={"name": "ok", "records": recs}).json()["id"]
    return run, ds


@pytest.fixture
def hostile_heads(hostile: Any) -> Any:
    run, ds = hostile
    c = run.client()
    recs = sentiment_records(4, ood=False)
    heads = {}
    for backbone in ("short", "cut"):
        short_recs = [dict(r, text=r["text"][:8]) for r in recs]
        d = c.post("/v1/datasets", json={"name": backbone, "records": short_recs}).json()["id"]
        created = post_head(c, d, "lp", backbone=backbone, lp_epochs=1, min_steps=0)
        assert wait_job(c, created["job"]["id"])["status"] == "succeeded"
        heads[backbone] = created["head"]["id"]
    return run, ds, heads


def _mutated(field: str, value: Any) -> dict[str, Any]:
    recs = sentiment_records(4, ood=False)
    body: dict[str, Any] = {"name": "x", "records": recs}
    if field == "name":
        body["name"] = value
    else:
        recs[2][field] = value
    return body


@pytest.mark.parametrize(
    ("case", "field", "value", "where"),
    [
        ("surrogate text", "text", "bad \ud800 text", "records[2].text"),
        ("surrogate label", "label", "pos\udfff", "records[2].label"),
        ("nul text", "text", "bad \x00 text", "records[2].text"),
        ("nul label", "label", "p\x00s", "records[2].label"),
        ("nul name", "name", "na\x00me", "name"),
        ("surrogate name", "name", "\ud83d", "name"),
        ("split with newline", "split", "test\n", "records[2].split"),
        ("newline label", "label", "pos\n", "records[2].label"),
        ("huge int label", "label", 10**40, "records[2].label"),
    ],
)
def test_hostile_dataset_strings_are_4xx_with_the_field(
    hostile: Any, case: str, field: str, value: Any, where: str
) -> None:
    run, _ = hostile
    c = run.client()
    before = _counts(run)
    r = _post_json(c, "/v1/datasets", _mutated(field, value))
    assert_envelope(r, 422, "ValidationError", where)
    assert _counts(run) == before


def test_hostile_ids_query_params_and_predict_inputs_are_4xx(hostile_heads: Any) -> None:
    run, ds, heads = hostile_heads
    c = run.client()
    before = _counts(run)
    assert_envelope(c.get("/v1/datasets/ds_%00x"), 404, "NotFound")
    assert_envelope(c.get("/v1/heads/hd%00"), 404, "NotFound")
    assert_envelope(c.get("/v1/jobs/job%00"), 404, "NotFound")
    r = c.get(f"/v1/datasets/{ds}/spectrum", params={"split": "train\x00", "backbone": "fake"})
    assert_envelope(r, 422, "ValidationError", "split")
    r = c.get("/v1/datasets", params={"cursor": "\x00"})
    assert_envelope(r, 422, "ValidationError", "cursor")
    # a lone surrogate as a percent-encoded byte sequence is not UTF-8: never a 5xx
    r = c.get("/v1/datasets/%ED%A0%80")
    assert r.status_code == 404, r.text
    # head names, predict inputs
    r = _post_json(
        c, "/v1/heads", {"dataset_id": ds, "backbone": "fake", "method": "lp", "name": "h\x00"}
    )
    assert_envelope(r, 422, "ValidationError", "name")
    r = _post_json(c, f"/v1/heads/{heads['short']}/predict", {"inputs": ["ok", "x\ud800"]})
    assert_envelope(r, 422, "ValidationError", "inputs[1]")
    r = _post_json(c, f"/v1/heads/{heads['short']}/predict", {"inputs": ["a", "b\x00"]})
    assert_envelope(r, 422, "ValidationError", "inputs[1]")
    assert _counts(run) == before
    # predict text over the backbone's token limit: 422 naming it, or cut (truncate policy)
    long = "much longer than eight bytes"
    r = c.post(f"/v1/heads/{heads['short']}/predict", json={"inputs": ["fine", long]})
    assert_envelope(r, 422, "ValidationError", "inputs[1]")
    assert "max_tokens_per_input 8" in r.json()["detail"]
    r = c.post(f"/v1/heads/{heads['cut']}/predict", json={"inputs": ["fine", long]})
    assert r.status_code == 200, r.text  # input_policy truncate: cut to the limit


def test_huge_integer_labels_in_uploads_are_422(hostile: Any) -> None:
    run, _ = hostile
    c = run.client()
    before = _counts(run)
    rows = "".join(f"text {i},{i % 2}\n" for i in range(8))
    csv = ("text,label\n" + rows + "text x," + "9" * 5000 + "\n").encode()
    r = c.post("/v1/datasets/upload", data={"name": "u"}, files={"file": ("d.csv", csv)})
    assert_envelope(r, 422, "ValidationError", "file")
    assert "64 bits" in r.json()["detail"]
    lines = "".join(f'{{"text": "t {i}", "label": {i % 2}}}\n' for i in range(8))
    jsonl = (lines + '{"text": "t", "label": ' + "9" * 5000 + "}\n").encode()
    r = c.post("/v1/datasets/upload", data={"name": "u"}, files={"file": ("d.jsonl", jsonl)})
    assert_envelope(r, 422, "ValidationError", "file")
    r = _post_json(c, "/v1/datasets", {"name": "x", "records": [{"text": "t", "label": 1}]})
    body = '{"name": "x", "records": [{"text": "t", "label": ' + "9" * 5000 + "}]}"
    r = c.post("/v1/datasets", content=body, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500 and set(r.json()) == {"error", "detail", "field"}
    assert _counts(run) == before


# ------------------------------------------------------------------------ 5. smaller
def test_backbone_usage_counters_are_per_tenant(serve: Any, fake_upstream: Any) -> None:
    run = serve(None, [fake_spec(fake_upstream)])
    a, b = run.client("a"), run.client("b")
    ds = a.post("/v1/datasets", json={"name": "a", "records": sentiment_records(4)}).json()
    created = post_head(a, ds["id"], "lp", lp_epochs=1, min_steps=0)
    assert wait_job(a, created["job"]["id"])["status"] == "succeeded"

    def usage(c: httpx.Client) -> dict[str, int]:
        r = c.get("/v1/backbones")
        assert r.status_code == 200, r.text
        return dict(next(i for i in r.json()["items"] if i["name"] == "fake")["usage"])

    ua, ub = usage(a), usage(b)
    assert ua["inputs"] == len(sentiment_records(4)) and ua["requests"] >= 1
    assert ua["tokens"] > 0
    assert ub == {"requests": 0, "inputs": 0, "tokens": 0, "retries": 0, "failures": 0}


def test_dataset_spectra_are_computed_once_per_split_backbone_and_options(
    serve: Any, fake_upstream: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nmtune.service.diagnostics.service as diag

    calls: list[int] = []
    real = diag.summarize_spectrum

    def counting(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(diag, "summarize_spectrum", counting)
    run = serve(None, [fake_spec(fake_upstream)])
    a, b = run.client("a"), run.client("b")
    ds = a.post("/v1/datasets", json={"name": "a", "records": sentiment_records(4)}).json()
    path = f"/v1/datasets/{ds['id']}/spectrum"
    r = a.get(path, params={"backbone": "fake", "split": "train"})
    if r.status_code == 202:  # embedded by a job first
        assert wait_job(a, r.json()["job_id"])["status"] == "succeeded"
    first = a.get(path, params={"backbone": "fake", "split": "train"})
    assert first.status_code == 200, first.text
    again = a.get(path, params={"backbone": "fake", "split": "train"})
    assert again.json() == first.json() and len(calls) == 1
    other = a.get(path, params={"backbone": "fake", "split": "train", "center": "false"})
    assert other.status_code == 200 and len(calls) == 2  # other options: computed
    assert b.get(path, params={"backbone": "fake", "split": "train"}).status_code == 404
    assert a.delete(f"/v1/datasets/{ds['id']}").status_code == 204
    assert a.get(path, params={"backbone": "fake", "split": "train"}).status_code == 404


@pytest.mark.parametrize("protocol", ["h11", "httptools"])
def test_uvicorn_level_400s_carry_the_envelope(tmp_path: Path, protocol: str) -> None:
    import uvicorn

    from nmtune.service.app import create_app
    from nmtune.service.ops import http_protocol
    from tests.service.conftest import free_port

    cls = (
        http_protocol.EnvelopeH11Protocol
        if protocol == "h11"
        else getattr(http_protocol, "EnvelopeHttpToolsProtocol", None)
    )
    if cls is None:
        pytest.skip("httptools is not installed")
    url = f"sqlite:///{tmp_path / 'p.db'}"
    upgrade(url)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(make_settings(url, [])),
            host="127.0.0.1",
            port=port,
            log_config=None,
            http=cls,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 30
        while not server.started:
            assert time.time() < deadline
            time.sleep(0.05)
        out = _raw_http(f"http://127.0.0.1:{port}", b"GARBAGE \x01\x02 HTTP/9\r\n\r\n")
        head, _, body = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), out[:200]
        assert b"application/json" in head
        import json

        assert set(json.loads(body)) == {"error", "detail", "field"}
    finally:
        server.should_exit = True
        thread.join(timeout=30)
