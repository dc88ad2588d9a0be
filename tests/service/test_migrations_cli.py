"""Migrations on SQLite and PostgreSQL match the models; the CLI; start-up schema check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from pydantic import SecretStr

from nmtune.service.app import SchemaOutOfDate, create_app
from nmtune.service.db.migrate import current_revision, head_revision, upgrade
from nmtune.service.db.session import Database
from nmtune.service.models import Base
from nmtune.service.settings import Settings


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'm.db'}"


def test_migrations_match_models(fresh_url: str) -> None:
    upgrade(fresh_url)
    db = Database(fresh_url)
    assert current_revision(db.engine) == head_revision(fresh_url)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    upgrade(fresh_url)  # idempotent
    db.dispose()


def test_serve_refuses_out_of_date_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    settings = Settings(database_url=SecretStr(url), backbones=[], log_json=False)
    with pytest.raises(SchemaOutOfDate), TestClient(create_app(settings)):
        pass
    auto = Settings(database_url=SecretStr(url), backbones=[], auto_migrate=True, log_json=False)
    with TestClient(create_app(auto)) as client:
        assert client.get("/readyz").json()["checks"]["schema"] == "ok"


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env: dict[str, Any] = {"NMTUNE_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "nmtune.service.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_migrate_and_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    r = _cli(url, "serve", "--port", "1")  # before migrating: one line that says what to do
    assert r.returncode == 3 and "run `nmtune migrate`" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = _cli(url, "migrate")
    assert r.returncode == 0, r.stderr
    r = _cli(url, "keys", "create", "--tenant", "acme", "--name", "ci")
    assert r.returncode == 0, r.stderr
    fields = dict(line.split(": ", 1) for line in r.stdout.splitlines() if ": " in line)
    key, key_id = fields["api_key"], fields["key_id"]
    assert key.startswith("nmt_")
    for bad in ("", "  ", " acme", "a\tb", "x" * 201):  # no tenant of that name is made
        r = _cli(url, "keys", "create", "--tenant", bad)
        assert r.returncode == 2 and "tenant" in r.stderr, (bad, r.stderr)
    listed = _cli(url, "keys", "list").stdout
    assert key_id in listed and "active" in listed and key not in listed
    assert len(listed.strip().splitlines()) == 1  # the refused names made no tenant or key
    settings = Settings(
        database_url=SecretStr(url), backbones=[], log_json=False, auth_cache_ttl_s=0
    )
    with TestClient(create_app(settings)) as client:
        assert (
            client.get("/v1/datasets", headers={"Authorization": f"Bearer {key}"}).status_code
            == 200
        )
        assert _cli(url, "keys", "revoke", key_id).returncode == 0
        assert (
            client.get("/v1/datasets", headers={"Authorization": f"Bearer {key}"}).status_code
            == 401
        )
    assert "revoked" in _cli(url, "keys", "list", "--tenant", "acme").stdout
    assert _cli(url, "keys", "revoke", "key_missing").returncode == 1


def test_health_ready_metrics(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    upgrade(url)
    settings = Settings(database_url=SecretStr(url), backbones=[], log_json=False)
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        client.get("/v1/datasets")
        text = client.get("/metrics").text
        assert "nmtune_http_requests_total" in text and "nmtune_embedding_cache_hits_total" in text


def test_request_id_is_echoed_or_made(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade(url)
    settings = Settings(database_url=SecretStr(url), backbones=[], log_json=False)
    with TestClient(create_app(settings)) as client:
        assert (
            client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
            == "abc-123"
        )
        made = client.get("/healthz", headers={"X-Request-ID": "bad id\\n"}).headers["x-request-id"]
        assert made != "bad id\\n" and len(made) == 16
