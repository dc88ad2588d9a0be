"""NMTune regularisers (method.md §3), computed without any D x D matrix when B < D.

All three take the adapted batch ``z`` (B, D); the regularisers run in float64 internally
(the statistics are tiny: B x B or D x D Gram matrices) and return a float32 scalar when
``z`` is float32, so mixed-precision callers still get full-precision statistics.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["cov_loss", "mse_consistency_loss", "singular_values_from_gram", "svd_loss"]

_NORM_EPS = 1e-12
_EIG_REL_EPS = 1e-12
_EIG_ABS_EPS = 1e-30


def mse_consistency_loss(z: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    r"""Consistency with the pre-trained features.

    .. math:: L_{mse} = \frac{1}{BD}\sum_{b,d}
              \left(\frac{z_b}{\|z_b\|}-\frac{f_b}{\|f_b\|}\right)_d^2

    ``f`` is detached; norms are clamped at 1e-12 (``F.normalize``).

    Parameters
    ----------
    z : Tensor (B, D)
        Adapted features.
    f : Tensor (B, D)
        Input (pre-trained) features.

    Returns
    -------
    Tensor
        Scalar, element mean over the B*D entries.
    """
    zn = F.normalize(z.float(), dim=1, eps=_NORM_EPS)  # (B, D)
    fn = F.normalize(f.detach().float(), dim=1, eps=_NORM_EPS)  # (B, D)
    return F.mse_loss(zn, fn)


def cov_loss(z: torch.Tensor) -> torch.Tensor:
    r"""Off-diagonal covariance penalty.

    With :math:`z_c = z - \bar z` (batch mean) and :math:`C = z_c^\top z_c/(B-1)`:

    .. math:: L_{cov} = \frac{1}{D}\sum_{i\ne j} C_{ij}^2
              = \frac{1}{D}\left(\|C\|_F^2 - \sum_j C_{jj}^2\right)

    When B < D the Frobenius norm uses the B x B Gram identity
    :math:`\|z_c^\top z_c\|_F = \|z_c z_c^\top\|_F`, and :math:`C_{jj}` are the column
    variances, so no D x D matrix is formed.

    Parameters
    ----------
    z : Tensor (B, D), B >= 2

    Returns
    -------
    Tensor
        Scalar in ``z``'s dtype (float32 for float32/half inputs).
    """
    b, d = z.shape
    out_dtype = torch.float64 if z.dtype == torch.float64 else torch.float32
    z64 = z.to(torch.float64)
    zc = z64 - z64.mean(dim=0, keepdim=True)  # (B, D)
    denom = float(b - 1)
    if b < d:
        gram = zc @ zc.T  # (B, B)
        fro2 = (gram * gram).sum() / (denom * denom)
    else:
        cov = zc.T @ zc  # (D, D)
        fro2 = (cov * cov).sum() / (denom * denom)
    var = (zc * zc).sum(dim=0) / denom  # (D,) = diag(C)
    off = (fro2 - (var * var).sum()).clamp_min(0.0)
    return (off / d).to(out_dtype)


def singular_values_from_gram(z: torch.Tensor) -> torch.Tensor:
    """Singular values of ``z`` (B, D), descending, via the smaller Gram matrix, in float64.

    Eigenvalues are clamped at ``1e-12 * max_eigenvalue`` (plus a tiny absolute floor) before
    the square root, so the gradient is finite for rank-deficient batches (duplicate or zero
    rows): the clamped (numerically zero) directions get no gradient.

    Returns
    -------
    Tensor (min(B, D),)
        float64 singular values, largest first.
    """
    b, d = z.shape
    z64 = z.to(torch.float64)
    gram = z64 @ z64.T if b <= d else z64.T @ z64  # (r, r), r = min(B, D)
    gram = 0.5 * (gram + gram.T)
    eig = torch.linalg.eigvalsh(gram)  # (r,) ascending
    floor = eig.detach().max().clamp_min(0.0) * _EIG_REL_EPS + _EIG_ABS_EPS
    s = torch.sqrt(torch.maximum(eig, floor))  # (r,)
    return torch.flip(s, dims=(0,))


def svd_loss(z: torch.Tensor, k: int = 5) -> torch.Tensor:
    r"""Dominant-singular-value term.

    .. math:: p = s/\textstyle\sum_i s_i,\qquad L_{svd} = -\frac{1}{k}\sum_{i=1}^{k} p_i

    with :math:`s` the singular values of the *uncentred* batch ``z`` and ``k`` capped at
    min(B, D).

    Parameters
    ----------
    z : Tensor (B, D)
    k : int
        Number of top singular values (5 in the reference code).

    Returns
    -------
    Tensor
        Scalar in ``z``'s dtype (float32 for float32/half inputs).
    """
    out_dtype = torch.float64 if z.dtype == torch.float64 else torch.float32
    s = singular_values_from_gram(z)  # (r,)
    p = s / s.sum()
    kk = max(1, min(int(k), int(s.shape[0])))
    return (-p[:kk].mean()).to(out_dtype)
