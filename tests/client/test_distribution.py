"""The nmtune-client distribution: the nmtune package alone, on httpx + numpy + safetensors
(no torch, no fastapi, no server package); the package imports none of them either."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_client_distribution_depends_on_httpx_numpy_safetensors_only() -> None:
    meta = tomllib.loads((ROOT / "client" / "pyproject.toml").read_text())
    deps = {
        re.split(r"[<>=!~\[ ]", d, maxsplit=1)[0].lower() for d in meta["project"]["dependencies"]
    }
    assert deps == {"httpx", "numpy", "safetensors"}
    assert meta["tool"]["setuptools"]["packages"] == ["nmtune"]
    assert meta["tool"]["setuptools"]["package-dir"] == {"nmtune": "../nmtune"}


def test_importing_the_client_loads_no_server_or_torch_module() -> None:
    code = (
        "import sys; from nmtune import Client, AsyncClient, load_head; "
        "server = ('nmtune.service', 'nmtune.tuner', 'nmtune.adapters', 'nmtune.migrations'); "
        "bad = sorted(({m.split('.')[0] for m in sys.modules} & "
        "{'torch', 'fastapi', 'starlette', 'pydantic', 'sqlalchemy', 'service', 'tuner', "
        "'adapters'}) | {m for m in sys.modules if m.startswith(server)}); print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def _wheel(src: Path, out: Path) -> list[str]:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
    )
    (whl,) = out.glob("*.whl")
    with zipfile.ZipFile(whl) as zf:
        return zf.namelist()


@pytest.mark.slow
def test_both_wheels_install_one_nmtune_namespace(tmp_path: Path) -> None:
    """The server wheel puts only `nmtune` on the path (nmtune.service, nmtune.tuner, ... come
    from the symlinks into the top-level folders); the client wheel has the client alone."""
    server = _wheel(ROOT, tmp_path / "server")
    tops = {n.split("/")[0] for n in server if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"nmtune"}
    for must in (
        "nmtune/client.py",
        "nmtune/service/app.py",
        "nmtune/service/ui/static/index.html",
        "nmtune/tuner/training.py",
        "nmtune/adapters/__init__.py",
        "nmtune/migrations/env.py",
        "nmtune/migrations/script.py.mako",
    ):
        assert must in server, must
    assert any(n.startswith("nmtune/migrations/versions/0001_") for n in server)
    client = _wheel(ROOT / "client", tmp_path / "client")
    modules = {n for n in client if not n.split("/")[0].endswith(".dist-info")}
    assert modules and all(n.count("/") == 1 and n.startswith("nmtune/") for n in modules)
    assert "nmtune/client.py" in modules and "nmtune/py.typed" in modules
