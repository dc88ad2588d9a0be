"""Deployment test fixtures: a Docker engine, the nmtune image built from this checkout, and
containers on the host network (the engine runs with --bridge=none: no container network).

Opt-in: the tests are marked ``docker`` and run when ``NMTUNE_DOCKER_TESTS=1`` (set by .ci/run
once dockerd answers) or when selected with ``-m docker``; otherwise, and whenever no engine
answers, they are skipped with the reason (``NMTUNE_DOCKER_UNAVAILABLE`` carries the reason
.ci/run found).

Settings (environment):
  NMTUNE_DOCKER_BASE_IMAGE  base image (default nmtune-base:bookworm, made by
                            deploy/base-image.sh when missing)
  NMTUNE_DOCKER_IMAGE       tag to build (default nmtune:test)
  NMTUNE_TORCH_WHEEL_DIR    folder with the torch wheel (default: pip's find-links)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("NMTUNE_DOCKER_BASE_IMAGE", "nmtune-base:bookworm")
IMAGE = os.environ.get("NMTUNE_DOCKER_IMAGE", "nmtune:test")
TORCH_VERSION = "2.13.0"
WHEEL_DIR = ROOT / "deploy" / "wheels"
CA_DIR = ROOT / "deploy" / "certs"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    selected = "docker" in (config.getoption("-m") or "")
    if selected or os.environ.get("NMTUNE_DOCKER_TESTS") == "1":
        return
    reason = os.environ.get("NMTUNE_DOCKER_UNAVAILABLE") or (
        "docker tests are opt-in: set NMTUNE_DOCKER_TESTS=1 (.ci/run does once dockerd "
        "answers) or select them with -m docker"
    )
    skip = pytest.mark.skip(reason=f"docker: {reason}")
    for item in items:
        if "docker" in item.keywords:
            item.add_marker(skip)


def docker(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
    return proc


def _engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "no docker client on PATH (apt-get install docker.io)"
    try:
        proc = docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "dockerd did not answer `docker info` within 20 s"
    if proc.returncode != 0:
        return f"no Docker engine answers ({proc.stderr.strip().splitlines()[-1:]})"
    return None


@pytest.fixture(scope="session")
def engine() -> str:
    problem = _engine_problem()
    if problem:
        extra = os.environ.get("NMTUNE_DOCKER_UNAVAILABLE")
        pytest.skip(f"docker: {problem}" + (f"; .ci/run: {extra}" if extra else ""))
    return docker("info", "--format", "{{.ServerVersion}}").stdout.strip()


def _pip_config(name: str) -> list[str]:
    """Values of one of pip's settings on this machine (`pip config list`)."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    ).stdout
    values: list[str] = []
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.endswith(f".{name}"):
            values += value.strip().strip("'\"").split()
    return values


def _find_links() -> list[Path]:
    env = os.environ.get("NMTUNE_TORCH_WHEEL_DIR")
    if env:
        return [Path(env)]
    return [Path(v) for v in _pip_config("find-links") if not v.startswith(("http:", "https:"))]


def stage_ca_bundle() -> Path | None:
    """The CA bundle pip trusts here (a TLS-intercepting proxy's CA may be in it), copied to
    deploy/certs for the build stage; None when pip uses its own (certifi)."""
    cert = os.environ.get("PIP_CERT") or next(iter(_pip_config("cert")), None)
    if not cert or not Path(cert).is_file():
        return None
    target = CA_DIR / "pip-cert.crt"
    data = Path(cert).read_bytes()
    if not target.exists() or target.read_bytes() != data:
        target.write_bytes(data)
    return target


def stage_torch_wheel() -> Path | None:
    """Put the CPU torch wheel from pip's find-links into deploy/wheels (a hard link when the
    file system allows) for the TORCH_WHEEL build argument; None when there is none (the
    build then uses the CPU index)."""
    for folder in _find_links():
        for wheel in sorted(folder.glob(f"torch-{TORCH_VERSION}*cp311*.whl")):
            target = WHEEL_DIR / wheel.name
            for old in WHEEL_DIR.glob("torch-*.whl"):
                if old.name != wheel.name:
                    old.unlink()
            if not target.exists():
                try:
                    os.link(wheel, target)
                except OSError:
                    shutil.copy2(wheel, target)
            return target
    return None


@dataclass
class Image:
    tag: str
    base: str
    build_s: float
    cached_steps: int
    torch_wheel: str | None
    size_bytes: int
    inspect: dict[str, Any]


@pytest.fixture(scope="session")
def image(engine: str) -> Image:
    if docker("image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        script = subprocess.run(
            [str(ROOT / "deploy" / "base-image.sh"), BASE_IMAGE],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if script.returncode != 0:
            pytest.skip(f"docker: no base image {BASE_IMAGE}: {script.stderr.strip()[-500:]}")
    wheel = stage_torch_wheel()
    stage_ca_bundle()
    t0 = time.perf_counter()
    build = subprocess.run(
        [
            "docker",
            "build",
            "--network",
            "host",
            "--build-arg",
            f"BASE_IMAGE={BASE_IMAGE}",
            *(["--build-arg", f"TORCH_WHEEL={wheel.name}"] if wheel else []),
            "-t",
            IMAGE,
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    build_s = time.perf_counter() - t0
    assert build.returncode == 0, build.stdout[-6000:] + build.stderr[-3000:]
    info = json.loads(docker("image", "inspect", IMAGE).stdout)[0]
    return Image(
        tag=IMAGE,
        base=BASE_IMAGE,
        build_s=build_s,
        cached_steps=build.stdout.count("Using cache"),
        torch_wheel=wheel.name if wheel else None,
        size_bytes=int(info["Size"]),
        inspect=info,
    )


@dataclass
class Containers:
    """Containers started by one test, removed afterwards (their logs kept for failures)."""

    tmp: Path
    names: list[str] = field(default_factory=list)

    def run(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        *,
        detach: bool = True,
        healthcheck: bool = False,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        cmd = ["run", "--network", "host", "--name", name]
        if detach:
            cmd.append("--detach")
        if not healthcheck:
            cmd.append("--no-healthcheck")
        for key, value in env.items():
            cmd += ["--env", f"{key}={value}"]
        self.names.append(name)
        return docker(*cmd, IMAGE, *args, timeout=timeout, check=False)

    def logs(self, name: str, tail: int | None = 4000) -> str:
        proc = docker("logs", name, check=False)
        out = proc.stdout + proc.stderr
        return out if tail is None else out[-tail:]

    def all_logs(self) -> str:
        return "\n".join(f"--- {n}\n{self.logs(n)}" for n in self.names)

    def state(self, name: str) -> dict[str, Any]:
        out = docker("inspect", "--format", "{{json .State}}", name).stdout
        state: dict[str, Any] = json.loads(out)
        return state

    def close(self) -> None:
        for name in self.names:
            with contextlib.suppress(Exception):
                (self.tmp / f"{name}.log").write_text(self.logs(name))
            docker("rm", "--force", name, check=False)


@pytest.fixture
def containers(tmp_path: Path, image: Image) -> Iterator[Containers]:
    c = Containers(tmp_path)
    yield c
    c.close()
