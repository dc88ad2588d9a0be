"""The nmtune-client distribution: the nmtune package alone, on httpx + numpy + safetensors
(no torch, no fastapi, no server package); the package imports none of them either."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

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
        "bad = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'torch', 'fastapi', 'starlette', 'pydantic', 'sqlalchemy', 'service', 'tuner', "
        "'adapters'}); print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
