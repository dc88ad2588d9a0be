"""Golden tests: package losses == independently written naive formulas (method.md §3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nmtune.tuner.config import resolve_config
from nmtune.tuner.losses import (
    compute_loss,
    cov_loss,
    cov_svd_losses,
    mse_consistency_loss,
    svd_loss,
)


def naive_mse(z: np.ndarray, f: np.ndarray) -> float:
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    fn = f / np.linalg.norm(f, axis=1, keepdims=True)
    return float(((zn - fn) ** 2).mean())


def naive_cov(z: np.ndarray) -> float:
    b, d = z.shape
    zc = z - z.mean(axis=0)
    c = zc.T @ zc / (b - 1)  # full D x D
    off = c - np.diag(np.diag(c))
    return float((off**2).sum() / d)


def naive_svd(z: np.ndarray, k: int) -> float:
    s = np.linalg.svd(z, compute_uv=False)
    p = s / s.sum()
    return float(-p[: min(k, s.size)].mean())


SHAPES = [(8, 20), (20, 8), (16, 16), (64, 96), (5, 3)]


@pytest.mark.parametrize("shape", SHAPES)
def test_losses_match_naive_float64(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    z = rng.normal(size=shape) + rng.normal(size=shape[1])  # non-zero mean
    f = rng.normal(size=shape)
    zt, ft = torch.tensor(z), torch.tensor(f)
    assert mse_consistency_loss(zt, ft).item() == pytest.approx(naive_mse(z, f), rel=1e-6)
    assert cov_loss(zt).item() == pytest.approx(naive_cov(z), rel=1e-6, abs=1e-9)
    for k in (1, 5, 100):
        assert svd_loss(zt, k).item() == pytest.approx(naive_svd(z, k), rel=1e-6)
    c, s = cov_svd_losses(zt, 5)
    assert c.item() == pytest.approx(naive_cov(z), rel=1e-6, abs=1e-9)
    assert s.item() == pytest.approx(naive_svd(z, 5), rel=1e-6)


@pytest.mark.parametrize("shape", [(64, 384), (64, 32)])
def test_losses_float32_close(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(size=shape) * 0.1 + rng.normal(size=shape[1]) * 0.05
    zt = torch.tensor(z, dtype=torch.float32)
    assert cov_loss(zt).dtype == torch.float32
    assert cov_loss(zt).item() == pytest.approx(naive_cov(z), rel=1e-4)
    assert svd_loss(zt).item() == pytest.approx(naive_svd(z, 5), rel=1e-4)


def test_mse_detaches_f() -> None:
    z = torch.randn(4, 6, requires_grad=True)
    f = torch.randn(4, 6, requires_grad=True)
    mse_consistency_loss(z, f).backward()
    assert f.grad is None and z.grad is not None


@pytest.mark.parametrize("kind", ["duplicates", "zero_rows", "all_zero", "rank1"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_svd_cov_gradients_finite_on_degenerate_batches(kind: str, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    base = torch.randn(16, 24, generator=g, dtype=dtype)
    if kind == "duplicates":
        z0 = base[:4].repeat(4, 1)
    elif kind == "zero_rows":
        z0 = torch.cat([base[:6], torch.zeros(10, 24, dtype=dtype)])
    elif kind == "all_zero":
        z0 = torch.zeros(16, 24, dtype=dtype)
    else:
        z0 = torch.outer(torch.randn(16, generator=g, dtype=dtype), base[0])
    z = z0.clone().requires_grad_(True)
    cov, svd = cov_svd_losses(z, 5)
    (cov + svd + svd_loss(z) + cov_loss(z) + mse_consistency_loss(z, base)).backward()
    assert torch.isfinite(cov) and torch.isfinite(svd)
    assert z.grad is not None and torch.isfinite(z.grad).all()
    if kind != "all_zero":  # values still match the exact spectrum
        assert svd.item() == pytest.approx(naive_svd(z0.double().numpy(), 5), rel=1e-4)


def test_svd_term_direction() -> None:
    """Descending L_svd alone on a matrix raises its top singular value share."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(32, 16, generator=g, dtype=torch.float64).requires_grad_(True)
    before = svd_loss(z).item()
    opt = torch.optim.SGD([z], lr=200.0)
    for _ in range(50):
        opt.zero_grad()
        svd_loss(z).backward()
        opt.step()
    assert svd_loss(z).item() < before - 0.01


def test_compute_loss_total_is_weighted_sum() -> None:
    cfg = resolve_config("nmtune", "paper-code", {})
    g = torch.Generator().manual_seed(0)
    z = torch.randn(8, 12, generator=g)
    f = torch.randn(8, 12, generator=g)
    logits = torch.randn(8, 3, generator=g)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    total, t = compute_loss(logits, z, f, y, cfg)
    expect = t["ce"] + 1.0 * t["mse"] + 0.04 * t["cov"] + 0.001 * t["svd"]
    assert total.item() == pytest.approx(expect.item(), rel=1e-6)
    assert t["ce"].item() == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item())
    _, t_mlp = compute_loss(logits, z, f, y, resolve_config("mlp"))
    assert t_mlp["mse"].item() == t_mlp["cov"].item() == t_mlp["svd"].item() == 0.0
