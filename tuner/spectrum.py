"""Singular value spectrum diagnostics of a feature matrix (method.md §2).

For F (N, D) with singular values s_1 >= ... >= s_r, r = min(N, D), and p_i = s_i / sum_j s_j:

    SVE  = -sum_i p_i log p_i          effective rank = exp(SVE)
    LSVR = -log(p_1)                   top-k energy   = sum_{i<=k} s_i^2 / sum_i s_i^2

Computed in float64 from the smaller Gram matrix (F^T F if N >= D, else F F^T), accumulated
in row chunks so that N = 100k, D = 3072 never needs a float64 copy of F.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from nmtune.tuner.errors import TunerInputError

__all__ = ["Spectrum", "spectrum"]

_CHUNK_ROWS = 8192


@dataclass(frozen=True)
class Spectrum:
    """Spectrum of one feature matrix and the options it was computed with."""

    singular_values: npt.NDArray[np.float64]  # (min(N, D),) descending, float64
    sve: float
    lsvr: float
    effective_rank: float
    top_k_energy: float
    numerical_rank: int
    n_samples: int  # N used (after max_samples)
    n_features: int
    n_samples_total: int  # N before subsampling
    center: bool
    normalize: bool
    max_samples: int | None
    random_state: int
    top_k: int

    def to_dict(self, *, max_singular_values: int | None = None) -> dict[str, Any]:
        """JSON-safe dict; ``max_singular_values`` truncates the stored list."""
        sv = self.singular_values
        if max_singular_values is not None:
            sv = sv[:max_singular_values]
        return {
            "singular_values": [float(v) for v in sv],
            "sve": self.sve,
            "lsvr": self.lsvr,
            "effective_rank": self.effective_rank,
            "top_k_energy": self.top_k_energy,
            "numerical_rank": self.numerical_rank,
            "n_samples": self.n_samples,
            "n_features": self.n_features,
            "n_samples_total": self.n_samples_total,
            "options": {
                "center": self.center,
                "normalize": self.normalize,
                "max_samples": self.max_samples,
                "random_state": self.random_state,
                "top_k": self.top_k,
            },
        }


def _gram_eigenvalues(
    x: npt.NDArray[Any], mean: npt.NDArray[np.float64] | None, normalize: bool
) -> npt.NDArray[np.float64]:
    """Eigenvalues (descending, >= 0) of the smaller Gram matrix of the prepared rows."""
    n, d = x.shape

    def prep(rows: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        r = np.asarray(rows, dtype=np.float64)  # (n_chunk, D)
        if normalize:
            norms = np.linalg.norm(r, axis=1, keepdims=True)
            r = r / np.maximum(norms, 1e-12)
        if mean is not None:
            r = r - mean
        return r

    if n >= d:
        gram = np.zeros((d, d), dtype=np.float64)
        for start in range(0, n, _CHUNK_ROWS):
            r = prep(x[start : start + _CHUNK_ROWS])
            gram += r.T @ r  # (D, D)
    else:
        r = prep(x)  # (N, D), N < D so at most D^2 floats
        gram = r @ r.T  # (N, N)
    eig: npt.NDArray[np.float64] = np.clip(np.linalg.eigvalsh(gram)[::-1], 0.0, None)
    return eig


def _column_mean(x: npt.NDArray[Any], normalize: bool) -> npt.NDArray[np.float64]:
    total = np.zeros(x.shape[1], dtype=np.float64)
    for start in range(0, x.shape[0], _CHUNK_ROWS):
        r = np.asarray(x[start : start + _CHUNK_ROWS], dtype=np.float64)
        if normalize:
            r = r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-12)
        total += r.sum(axis=0)
    mean: npt.NDArray[np.float64] = total / x.shape[0]
    return mean


def spectrum(
    X: npt.ArrayLike,
    center: bool = True,
    normalize: bool = False,
    max_samples: int | None = None,
    random_state: int = 0,
    top_k: int = 5,
) -> Spectrum:
    """Singular value spectrum diagnostics of a feature matrix.

    Parameters
    ----------
    X : array-like (N, D)
        Features (finite).
    center : bool
        Subtract each feature's (column) mean first (default True).
    normalize : bool
        L2-normalise each row; done before centring.
    max_samples : int, optional
        Use a seeded random subset of at most this many rows (the estimates depend on N).
    random_state : int
        Seed of the subsample.
    top_k : int
        k of ``top_k_energy``.

    Returns
    -------
    Spectrum
        Singular values (descending, r = min(N, D) of them), SVE, LSVR, effective rank,
        top-k energy, numerical rank, N, D and the options. Singular values whose squared
        value is below ``max(N, D) * eps * s_1^2`` are numerical zeros: kept in
        ``singular_values`` but left out of the entropy. An all-zero matrix gives
        SVE = 0, LSVR = 0, effective rank = 0.
    """
    x = np.asarray(X)
    if x.ndim != 2:
        raise TunerInputError(f"spectrum needs a 2-D (N, D) matrix, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise TunerInputError(f"spectrum needs a real numeric matrix, got dtype {x.dtype}")
    n_total, d = x.shape
    if n_total < 1 or d < 1:
        raise TunerInputError(f"spectrum needs at least one row and one column, got {x.shape}")
    if max_samples is not None and (isinstance(max_samples, bool) or int(max_samples) < 1):
        raise TunerInputError(f"max_samples must be a positive int, got {max_samples!r}")
    if isinstance(top_k, bool) or int(top_k) < 1:
        raise TunerInputError(f"top_k must be a positive int, got {top_k!r}")
    if max_samples is not None and n_total > int(max_samples):
        rng = np.random.default_rng(random_state)
        idx = np.sort(rng.choice(n_total, size=int(max_samples), replace=False))
        x = x[idx]
    if not np.isfinite(x).all():
        raise TunerInputError("spectrum input contains NaN or inf")
    n = x.shape[0]
    mean = _column_mean(x, normalize) if center else None
    eig = _gram_eigenvalues(x, mean, normalize)  # (r,) descending
    s = np.sqrt(eig)
    s_max = float(s[0]) if s.size else 0.0
    tol = max(n, d) * np.finfo(np.float64).eps * s_max * s_max
    kept = s[(eig > tol) & (s > 0)] if s_max > 0 else s[:0]
    if kept.size == 0:
        sve = lsvr = eff = energy = 0.0
    else:
        p = kept / kept.sum()
        sve = float(-(p * np.log(p)).sum())
        lsvr = float(-np.log(p[0]))
        eff = float(math.exp(sve))
        energy = float((kept[:top_k] ** 2).sum() / (kept**2).sum())
    return Spectrum(
        singular_values=s,
        sve=sve,
        lsvr=lsvr,
        effective_rank=eff,
        top_k_energy=energy,
        numerical_rank=int(kept.size),
        n_samples=n,
        n_features=d,
        n_samples_total=n_total,
        center=bool(center),
        normalize=bool(normalize),
        max_samples=None if max_samples is None else int(max_samples),
        random_state=int(random_state),
        top_k=int(top_k),
    )
