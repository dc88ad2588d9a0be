"""What the image carries: a non-root user, a HEALTHCHECK, and no secrets, caches or test
files in any layer (read from `docker save`, not from the Dockerfile)."""

from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import tarfile
import threading
from pathlib import Path
from typing import IO

import pytest

from tests.deploy.conftest import ROOT, Image, docker

pytestmark = [pytest.mark.docker, pytest.mark.timeout(2400)]

# paths that must not be in any layer (regexes on the path inside the image)
FORBIDDEN = {
    "a .env file": r"(^|/)\.env$",
    "git metadata": r"(^|/)\.git(/|$)",
    "a tool cache": (
        r"(^|/)\.(pytest_cache|mypy_cache|ruff_cache|hypothesis|import_linter_cache)(/|$)"
    ),
    "pip's cache": r"(^|/)\.cache/pip(/|$)",
    "a Hugging Face cache": r"(^|/)\.cache/huggingface(/|$)",
    "apt package lists": r"^var/lib/apt/lists/[^/]+_(Packages|InRelease|Release)",
    "downloaded .deb files": r"^var/cache/apt/archives/[^/]+\.deb$",
    "a wheel file": r"\.whl$",
    "the build folder /src": r"^src/",
    "the project's tests": r"(^|/)tests/(fakes|deploy|service|worker|tuner|adapters)(/|$)",
    "a test file of the project": r"site-packages/(service|tuner|adapters|migrations)/.*test_",
    "a local database": r"(^|/)nmtune\.db",
    "a private key file": r"(^|/)(id_rsa|id_ed25519)[^/]*$|\.key$",
}
SECRET_ENV = re.compile(r"(PASSWORD|SECRET|TOKEN|API_KEY|BOOTSTRAP_API_KEY)=", re.I)
PRIVATE_KEY = b"-----BEGIN " + b"PRIVATE KEY-----"  # split: this file must not match itself


def _scan_layers(stream: IO[bytes]) -> tuple[int, dict[str, list[str]], list[str]]:
    """Walk every layer of a `docker save` stream: (files, forbidden hits, private keys)."""
    hits: dict[str, list[str]] = {k: [] for k in FORBIDDEN}
    keys: list[str] = []
    files = 0
    patterns = {k: re.compile(v) for k, v in FORBIDDEN.items()}
    with tarfile.open(fileobj=stream, mode="r|") as outer:
        for member in outer:
            if not member.name.endswith("layer.tar"):
                continue
            layer = outer.extractfile(member)
            assert layer is not None
            with tarfile.open(fileobj=layer, mode="r|") as inner:
                for entry in inner:
                    path = entry.name.removeprefix("./")
                    files += 1
                    for what, pat in patterns.items():
                        if pat.search(path):
                            hits[what].append(path)
                    if entry.isfile() and entry.size < 200_000 and not path.startswith("etc/ssl"):
                        f = inner.extractfile(entry)
                        if f is not None and PRIVATE_KEY in f.read():
                            keys.append(path)
    return files, {k: v[:5] for k, v in hits.items() if v}, keys


def test_image_is_non_root_with_healthcheck_and_no_secrets(image: Image) -> None:
    config = image.inspect["Config"]
    assert config["User"] in ("10001:10001", "nmtune:nmtune", "nmtune"), config["User"]
    ident = docker("run", "--rm", "--network", "host", "--entrypoint", "id", image.tag).stdout
    assert ident.startswith("uid=10001(nmtune) gid=10001(nmtune)"), ident
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert "NMTUNE_HEALTHCHECK_URL" in " ".join(config["Healthcheck"]["Test"])
    assert config["Entrypoint"] == ["nmtune"]
    env = "\n".join(config["Env"])
    assert not SECRET_ENV.search(env), env
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image.tag).stdout
    assert not SECRET_ENV.search(history), history
    # the app imports and knows its version; migrations ship with it
    probe = docker(
        "run",
        "--rm",
        "--network",
        "host",
        "--entrypoint",
        "python3",
        image.tag,
        "-c",
        "import nmtune.service, nmtune.migrations, torch, importlib.metadata as m; "
        "print(m.version('nmtune'), torch.__version__, torch.cuda.is_available())",
    ).stdout.split()
    assert probe[0] == "0.1.0" and probe[1].startswith("2.13.0"), probe

    save = subprocess.Popen(["docker", "save", image.tag], stdout=subprocess.PIPE)
    assert save.stdout is not None
    files, hits, keys = _scan_layers(save.stdout)
    assert save.wait(timeout=600) == 0
    assert files > 1000
    assert not hits, hits
    assert not keys, keys


@pytest.mark.skipif(
    os.environ.get("NMTUNE_DOCKER_VARIANTS") != "1",
    reason="a second image build (torch from an index): set NMTUNE_DOCKER_VARIANTS=1",
)
def test_image_builds_with_torch_from_an_index(image: Image, tmp_path: Path) -> None:
    """The index path of the Dockerfile (what the CPU and CUDA indexes take), against a PEP 503
    index on loopback that serves the CPU wheel: no Dockerfile change, only build args."""
    wheel = ROOT / "deploy" / "wheels" / str(image.torch_wheel)
    if not image.torch_wheel or not wheel.is_file():
        pytest.skip("no torch wheel on this machine to serve as an index")
    folder = tmp_path / "simple" / "torch"
    folder.mkdir(parents=True)
    os.link(wheel, folder / wheel.name)
    (folder / "index.html").write_text(f'<a href="{wheel.name}">{wheel.name}</a>\n')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    tag = f"{image.tag}-index"
    try:
        build = subprocess.run(
            [
                "docker", "build", "--network", "host",
                "--build-arg", f"BASE_IMAGE={image.base}",
                "--build-arg", f"TORCH_INDEX_URL=http://127.0.0.1:{server.server_port}/simple",
                "-t", tag, str(ROOT),
            ],
            capture_output=True, text=True, timeout=1800, check=False,
        )  # fmt: skip
    finally:
        server.shutdown()
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-2000:]
    assert "Processing /wheels/" not in build.stdout  # the wheel file was not used
    version = docker(
        "run", "--rm", "--network", "host", "--entrypoint", "python3", tag,
        "-c", "import torch; print(torch.__version__)",
    ).stdout.strip()  # fmt: skip
    assert version == "2.13.0+cpu", version
