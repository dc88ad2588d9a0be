"""Worker test fixtures: real Redis (a random DB index and a unique Celery queue per test), a
fresh PostgreSQL database per test, worker subprocesses and the API over real HTTP."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from nmtune.service.db.migrate import upgrade
from tests import logscan
from tests.service.conftest import PG_ADMIN, _pg_available, free_port, start_api
from tests.service.conftest import fake_upstream as fake_upstream  # re-exported fixture
from tests.service.conftest import serve as serve  # re-exported fixture

REDIS_HOST = os.environ.get("NMTUNE_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("NMTUNE_TEST_REDIS_PORT", "6379"))
ROOT = Path(__file__).resolve().parents[2]


def _need(what: str, ok: bool) -> None:
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} not reachable")


def _redis_available(port: int = REDIS_PORT) -> bool:
    try:
        return bool(redis.Redis(host=REDIS_HOST, port=port, socket_connect_timeout=1).ping())
    except Exception:
        return False


@pytest.fixture
def pg_db() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test (workers of other tests never see
    its jobs), dropped afterwards."""
    _need("PostgreSQL at 127.0.0.1:5432", _pg_available())
    name = f"nmtune_wtest_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    url = f"{base}/{name}"
    upgrade(url)
    yield url
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@dataclass
class Broker:
    url: str
    queue: str


@pytest.fixture
def broker() -> Iterator[Broker]:
    """The shared Redis, a random DB index and a queue name unique to this test."""
    _need(f"Redis at {REDIS_HOST}:{REDIS_PORT}", _redis_available())
    db_index = random.randint(1, 15)
    queue = f"nmtune-test-{uuid.uuid4().hex[:10]}"
    yield Broker(f"redis://{REDIS_HOST}:{REDIS_PORT}/{db_index}", queue)
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db_index)
    for key in client.scan_iter(f"*{queue}*"):
        client.delete(key)
    client.delete(queue)


class PrivateRedis:
    """A redis-server of our own on a free port (no persistence), to stop and restart."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server binary not found"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 10
        while not _redis_available(self.port):
            assert time.time() < deadline, "private redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        _need("the redis-server binary", False)
    r = PrivateRedis(tmp_path)
    r.start()
    yield r
    r.stop()


def service_env(
    db_url: str, broker: Broker, backbones: list[dict[str, Any]], **extra: str
) -> dict[str, str]:
    env = dict(
        os.environ,
        NMTUNE_RUNNER="celery",
        NMTUNE_DATABASE_URL=db_url,
        NMTUNE_BACKBONES=json.dumps(backbones),
        NMTUNE_CELERY_BROKER_URL=broker.url,
        NMTUNE_CELERY_QUEUE=broker.queue,
        NMTUNE_CELERY_DISPATCH_INTERVAL_S="1",
        NMTUNE_HEARTBEAT_INTERVAL_S="0.5",
        NMTUNE_STALE_AFTER_S="5",
        NMTUNE_LOG_JSON="false",
        NMTUNE_WORKER_DEVICE="cpu",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class Procs:
    tmp: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def worker(self, env: dict[str, str], name: str = "worker") -> subprocess.Popen[bytes]:
        log = self.tmp / f"{name}.log"
        logscan.register_env(env, f"Procs.worker {name}")
        logscan.register_log(log)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "nmtune.service.cli",
                "worker",
                "--queues",
                env["NMTUNE_CELERY_QUEUE"],
                "--concurrency",
                "1",
            ],
            env=env,
            cwd=ROOT,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def api(self, env: dict[str, str], port: int, name: str = "api") -> subprocess.Popen[bytes]:
        proc = start_api(env, port, self.tmp / f"{name}.log", cwd=ROOT)
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.tmp.glob("*.log"))
        )

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    yield p
    p.close()
