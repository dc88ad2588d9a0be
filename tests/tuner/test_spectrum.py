"""Spectrum diagnostics on matrices with known spectra (method.md §2)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nmtune.tuner import TunerInputError, spectrum


def _with_singular_values(s: np.ndarray, n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.normal(size=(n, len(s))))
    v, _ = np.linalg.qr(rng.normal(size=(d, len(s))))
    return (u * s) @ v.T


def test_identity() -> None:
    sp = spectrum(np.eye(5), center=False, top_k=2)
    np.testing.assert_allclose(sp.singular_values, np.ones(5), atol=1e-12)
    assert sp.sve == pytest.approx(math.log(5))
    assert sp.lsvr == pytest.approx(math.log(5))
    assert sp.effective_rank == pytest.approx(5.0)
    assert sp.top_k_energy == pytest.approx(2 / 5)


def test_rank_one() -> None:
    x = np.outer(np.arange(1, 7), np.array([1.0, -2.0, 0.5, 3.0]))
    sp = spectrum(x, center=False)
    assert sp.numerical_rank == 1
    assert sp.sve == pytest.approx(0.0, abs=1e-12)
    assert sp.lsvr == pytest.approx(0.0, abs=1e-12)
    assert sp.effective_rank == pytest.approx(1.0)
    assert sp.top_k_energy == pytest.approx(1.0)


@pytest.mark.parametrize(("n", "d"), [(6, 4), (3, 10), (40, 40)])
def test_chosen_singular_values(n: int, d: int) -> None:
    s = np.array([4.0, 3.0, 2.0, 1.0])[: min(n, d, 4)]
    sp = spectrum(_with_singular_values(s, n, d), center=False, top_k=2)
    assert sp.singular_values.shape == (min(n, d),)
    np.testing.assert_allclose(sp.singular_values[: s.size], s, rtol=1e-9)
    p = s / s.sum()
    assert sp.sve == pytest.approx(-(p * np.log(p)).sum(), rel=1e-9)
    assert sp.lsvr == pytest.approx(-math.log(p[0]), rel=1e-9)
    assert sp.effective_rank == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-9)
    assert sp.top_k_energy == pytest.approx((s[:2] ** 2).sum() / (s**2).sum())
    assert sp.numerical_rank == s.size


@pytest.mark.parametrize(("n", "d"), [(30, 12), (7, 25)])
@pytest.mark.parametrize("normalize", [False, True])
def test_matches_numpy_svd_with_centering(n: int, d: int, normalize: bool) -> None:
    rng = np.random.default_rng(n * d)
    x = rng.normal(size=(n, d)) * np.linspace(3, 0.5, d) + 2.0
    ref = x / np.linalg.norm(x, axis=1, keepdims=True) if normalize else x
    ref = ref - ref.mean(axis=0)  # normalise first, then centre columns
    s = np.linalg.svd(ref, compute_uv=False)
    s = s[s > s[0] * 1e-10]
    p = s / s.sum()
    sp = spectrum(x.astype(np.float32), center=True, normalize=normalize)
    assert sp.sve == pytest.approx(-(p * np.log(p)).sum(), rel=1e-5)
    assert sp.lsvr == pytest.approx(-np.log(p[0]), rel=1e-5)
    assert sp.n_samples == n and sp.n_features == d
    # centring removes one dimension when N <= D
    assert sp.numerical_rank == min(n - 1, d)


def test_centering_changes_result() -> None:
    x = np.ones((10, 3)) + np.eye(10, 3) * 0.1
    assert spectrum(x, center=False).lsvr < spectrum(x, center=True).lsvr


def test_max_samples_deterministic() -> None:
    x = np.random.default_rng(0).normal(size=(500, 8))
    a = spectrum(x, max_samples=100, random_state=1)
    b = spectrum(x, max_samples=100, random_state=1)
    c = spectrum(x, max_samples=100, random_state=2)
    assert a.n_samples == 100 and a.n_samples_total == 500
    np.testing.assert_array_equal(a.singular_values, b.singular_values)
    assert not np.array_equal(a.singular_values, c.singular_values)
    assert spectrum(x, max_samples=1000).n_samples == 500


def test_zero_matrix_and_errors() -> None:
    sp = spectrum(np.zeros((4, 3)))
    assert sp.sve == 0.0 and sp.effective_rank == 0.0 and sp.numerical_rank == 0
    for bad in (np.zeros(3), np.array([[1.0, np.nan]]), np.array([[np.inf, 1.0]])):
        with pytest.raises(TunerInputError):
            spectrum(bad)
    with pytest.raises(TunerInputError):
        spectrum(np.ones((3, 3)), max_samples=0)


def test_to_dict_json_safe() -> None:
    d = spectrum(np.random.default_rng(0).normal(size=(20, 5)), max_samples=10).to_dict()
    json.dumps(d)
    assert d["options"] == {
        "center": True,
        "normalize": False,
        "max_samples": 10,
        "random_state": 0,
        "top_k": 5,
    }
