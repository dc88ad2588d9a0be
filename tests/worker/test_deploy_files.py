"""The deployment files parse and wire the services as docs/production.md says. (No Docker
engine here: the image itself is not built by the tests.)"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_is_valid_and_wired() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    assert set(services) >= {"api", "worker", "postgres", "redis", "migrate"}
    assert services["migrate"]["command"] == ["migrate"]
    for name in ("api", "worker"):
        svc = services[name]
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
        env = svc["environment"]
        assert env["NMTUNE_RUNNER"] == "celery"
        assert env["NMTUNE_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["NMTUNE_CELERY_BROKER_URL"].startswith("redis://")
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert services["worker"]["command"][0] == "worker"


def test_dockerfile_is_multi_stage_non_root_with_torch_args() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("\nFROM ") >= 2
    assert "ARG BASE_IMAGE=python:3.11-slim" in text
    assert "ARG TORCH_VERSION=2.13.0" in text and "whl/cpu" in text
    assert "\nUSER nmtune" in text
    assert ".git" in (ROOT / ".dockerignore").read_text()
