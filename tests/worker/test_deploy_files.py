"""The deployment files parse and wire the services as docs/production.md says; with the
docker-compose binary installed, `docker-compose config` validates both compose files. (The
image itself is built and run by tests/deploy, marker `docker`.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
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
    for name in ("migrate", "worker"):  # the image's HEALTHCHECK is the API's
        assert services[name]["healthcheck"] == {"disable": True}, name


def test_host_compose_runs_the_same_stack_on_the_host_network() -> None:
    prod = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    doc = yaml.safe_load((ROOT / "deploy" / "docker-compose.host.yml").read_text())
    services = doc["services"]
    assert set(services) == {"migrate", "api", "worker"}  # PostgreSQL and Redis: the host's
    for name, svc in services.items():
        assert svc["network_mode"] == "host", name
        assert svc["command"][0] == prod[name]["command"][0], name
        env = svc["environment"]
        assert env["NMTUNE_RUNNER"] == "celery"
        assert "127.0.0.1:5432" in env["NMTUNE_DATABASE_URL"]
        assert "127.0.0.1:6379" in env["NMTUNE_CELERY_BROKER_URL"]
        assert "ports" not in svc and "deploy" not in svc, name
    for name in ("api", "worker"):
        dep = services[name]["depends_on"]
        assert dep == {"migrate": {"condition": "service_completed_successfully"}}
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert services["worker"]["healthcheck"] == {"disable": True}
    assert services["worker"]["environment"]["NMTUNE_WORKER_DEVICE"] == "cpu"


@pytest.mark.parametrize("compose", ["docker-compose.yml", "deploy/docker-compose.host.yml"])
def test_docker_compose_config_accepts(compose: str) -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose not installed (apt-get install docker-compose)")
    proc = subprocess.run(
        [binary, "-f", str(ROOT / compose), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr


def test_dockerfile_is_multi_stage_non_root_with_build_args() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("\nFROM ") >= 2
    assert "ARG BASE_IMAGE=python:3.11-slim" in text
    assert "ARG TORCH_VERSION=2.13.0" in text and "whl/cpu" in text
    for arg in (
        "BUILDER_IMAGE",
        "TORCH_INDEX_URL",
        "TORCH_WHEEL",
        "TORCH_WHEEL_DIR",
        "PIP_INDEX_URL",
        "BUILD_CA_DIR",
        "PYTHON_APT_PACKAGES",
        "RUNTIME_APT_PACKAGES",
        "EXTRAS",
    ):
        assert re.search(rf"^ARG {arg}=", text, re.M), arg
    assert "\nUSER 10001:10001" in text
    assert "\nHEALTHCHECK " in text
    assert "# syntax=" not in text  # a syntax line pulls a frontend image from a registry
    runtime = text.split("AS runtime", 1)[1]
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    assert "/wheels" not in runtime and "/build-ca" not in runtime and "/src" not in runtime


def test_dockerignore_is_an_allow_list() -> None:
    lines = [
        ln.strip()
        for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "README.md",
        "tuner",
        "nmtune",
        "adapters",
        "service",
        "migrations",
        "deploy/wheels",
        "deploy/certs",
    }
    assert "**/__pycache__" in lines and "**/.env" in lines
