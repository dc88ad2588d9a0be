"""NMTune regularisers (method.md §3), computed without any D x D matrix when B < D.

All three take the adapted batch ``z`` (B, D). The regularisers run in at least float32
(half inputs are upcast; float64 inputs stay float64): the (B, D) x (D, B) Gram product and
its eigenvalues use the input precision, the rest (B x B, scalars) float64. With B < D no
D x D matrix is formed, and :func:`cov_svd_losses` shares one Gram matrix between the terms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from nmtune.tuner.config import HeadConfig

__all__ = [
    "augment",
    "classification_loss",
    "compute_loss",
    "cov_loss",
    "cov_svd_losses",
    "mse_consistency_loss",
    "singular_values_from_gram",
    "svd_loss",
]

_NORM_EPS = 1e-12
_EIG_ABS_EPS = 1e-30
#: log(0) of the one-hot label distribution in the reverse cross entropy (Wang et al. 2019)
_RCE_LOG_ZERO = -4.0


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


def _work(z: torch.Tensor) -> torch.Tensor:
    """z in float64 if it is float64, else float32 (never half precision)."""
    return z if z.dtype == torch.float64 else z.float()


def _cov_from_gram(zw: torch.Tensor, gram: torch.Tensor | None) -> torch.Tensor:
    """L_cov of zw (B, D); ``gram`` is the uncentred (B, B) Gram z z^T (B < D) or None."""
    b, d = zw.shape
    denom = float(b - 1)
    zc = zw - zw.mean(dim=0, keepdim=True)  # (B, D)
    var = (zc * zc).sum(dim=0).double() / denom  # (D,) = diag(C)
    if gram is not None:
        g = gram.double()  # (B, B)
        # Centred Gram zc zc^T = H G H with H = I - 11^T/B.
        gc = g - g.mean(dim=0, keepdim=True) - g.mean(dim=1, keepdim=True) + g.mean()
        fro2 = (gc * gc).sum() / (denom * denom)  # ||C||_F^2 = ||zc zc^T||_F^2 / (B-1)^2
    else:
        cov = (zc.T @ zc).double() / denom  # (D, D), only when D <= B
        fro2 = (cov * cov).sum()
    return ((fro2 - (var * var).sum()).clamp_min(0.0) / d).to(zw.dtype)


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
        Scalar, float32 (float64 for float64 input).
    """
    zw = _work(z)
    b, d = zw.shape
    return _cov_from_gram(zw, zw @ zw.T if b < d else None)


def _singular_values(gram: torch.Tensor) -> torch.Tensor:
    """Descending singular values (float64) from a Gram matrix (r, r) of the batch."""
    g = 0.5 * (gram + gram.T)  # eigvalsh in the Gram's own precision (fp32 is 2x faster)
    eig = torch.linalg.eigvalsh(g).double()  # (r,) ascending
    # Eigenvalues below r * eps(gram dtype) * max are numerical zeros: s = 0, no gradient.
    eps = torch.finfo(gram.dtype).eps
    floor = eig.detach().max().clamp_min(0.0) * (eig.shape[0] * eps) + _EIG_ABS_EPS
    keep = eig > floor
    s = torch.where(keep, torch.sqrt(torch.where(keep, eig, floor)), torch.zeros_like(eig))
    return torch.flip(s, dims=(0,))


def singular_values_from_gram(z: torch.Tensor) -> torch.Tensor:
    """Singular values of ``z`` (B, D), descending, via the smaller Gram matrix.

    Eigenvalues below ``r * eps * max_eigenvalue`` (numerical zeros of rank-deficient batches:
    duplicate or zero rows) give s = 0 with no gradient, so the gradient stays finite.

    Returns
    -------
    Tensor (min(B, D),)
        float64 singular values, largest first.
    """
    zw = _work(z)
    b, d = zw.shape
    return _singular_values(zw @ zw.T if b <= d else zw.T @ zw)


def _svd_from_s(s: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    p = s / s.sum().clamp_min(1e-300)  # (r,)
    kk = max(1, min(int(k), int(s.shape[0])))
    return (-p[:kk].mean()).to(dtype)


def svd_loss(z: torch.Tensor, k: int = 5) -> torch.Tensor:
    r"""Dominant-singular-value term.

    .. math:: p = s/\textstyle\sum_i s_i,\qquad L_{svd} = -\frac{1}{k}\sum_{i=1}^{k} p_i

    with :math:`s` the singular values of the *uncentred* batch ``z`` and ``k`` capped at
    min(B, D). An all-zero batch gives 0.

    Parameters
    ----------
    z : Tensor (B, D)
    k : int
        Number of top singular values (5 in the reference code).

    Returns
    -------
    Tensor
        Scalar, float32 (float64 for float64 input).
    """
    zw = _work(z)
    return _svd_from_s(singular_values_from_gram(zw), k, zw.dtype)


def cov_svd_losses(z: torch.Tensor, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_cov, L_svd) of z (B, D) sharing one Gram product; equal to the separate functions."""
    zw = _work(z)
    b, d = zw.shape
    if b >= d:
        return _cov_from_gram(zw, None), svd_loss(zw, k)
    gram = zw @ zw.T  # (B, B)
    return _cov_from_gram(zw, gram), _svd_from_s(_singular_values(gram), k, zw.dtype)


def classification_loss(
    logits: torch.Tensor,
    y: torch.Tensor,
    config: HeadConfig,
    class_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """The classification term chosen by ``config.loss``, a (weighted) mean over the batch.

    - ``ce``: cross entropy.
    - ``gce``: generalized cross entropy (Zhang and Sabuncu, NeurIPS 2018),
      ``(1 - p_y^q) / q`` with ``q = config.gce_q`` in (0, 1]: q -> 0 is CE, q = 1 is the
      mean absolute error, which is robust to label noise but slow to fit.
    - ``sce``: symmetric cross entropy (Wang et al., ICCV 2019),
      ``sce_alpha * CE + sce_beta * RCE`` with the reverse CE ``-A (1 - p_y)``, A = log 0
      clipped to -4.

    Parameters
    ----------
    logits : (B, C); y : (B,) class indices; class_weight : optional (C,) weights (the mean
    is then ``sum w_y l / sum w_y``, as ``F.cross_entropy``).
    """
    logits = logits.float()
    if config.loss == "ce":
        return F.cross_entropy(logits, y, weight=class_weight)
    log_p = F.log_softmax(logits, dim=1).gather(1, y[:, None]).squeeze(1)  # (B,)
    if config.loss == "gce":
        q = config.gce_q
        per_row = (1.0 - torch.exp(q * log_p)) / q  # (B,)
    else:
        rce = -_RCE_LOG_ZERO * (1.0 - torch.exp(log_p))  # (B,)
        per_row = config.sce_alpha * (-log_p) + config.sce_beta * rce
    if class_weight is None:
        return per_row.mean()
    w = class_weight[y]  # (B,)
    return (w * per_row).sum() / w.sum().clamp_min(1e-12)


def compute_loss(
    logits: torch.Tensor,
    z: torch.Tensor,
    f: torch.Tensor,
    y: torch.Tensor,
    config: HeadConfig,
    class_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L = CE + w_mse L_mse + w_cov L_cov + w_svd L_svd (method.md §3).

    Terms whose weight is 0 are not computed (reported as 0). The classification term
    (reported as ``ce``) is :func:`classification_loss`: CE unless ``config.loss`` picks a
    noise-robust one.

    Parameters
    ----------
    logits : (B, C); z : (B, D) adapted features; f : (B, D) clean input features;
    y : (B,) class indices.

    Returns
    -------
    total, terms
        ``terms`` holds detached ce, mse, cov, svd, total.
    """
    ce = classification_loss(logits, y, config, class_weight)
    total = ce
    zero = torch.zeros((), device=logits.device)
    terms = {"ce": ce, "mse": zero, "cov": zero, "svd": zero}
    if config.w_mse > 0:
        terms["mse"] = mse_consistency_loss(z, f)
        total = total + config.w_mse * terms["mse"]
    if config.w_cov > 0 and config.w_svd > 0:
        terms["cov"], terms["svd"] = cov_svd_losses(z, config.svd_top_k)  # one shared Gram
    elif config.w_cov > 0:
        terms["cov"] = cov_loss(z)
    elif config.w_svd > 0:
        terms["svd"] = svd_loss(z, config.svd_top_k)
    if config.w_cov > 0:
        total = total + config.w_cov * terms["cov"]
    if config.w_svd > 0:
        total = total + config.w_svd * terms["svd"]
    terms["total"] = total
    return total, {k: v.detach() for k, v in terms.items()}


def augment(f: torch.Tensor, config: HeadConfig) -> torch.Tensor:
    """Feature-space second view: dropout then Gaussian noise (absolute std) on f (B, D)."""
    out = f
    if config.feature_dropout > 0:
        out = F.dropout(out, p=config.feature_dropout, training=True)
    if config.feature_noise > 0:
        out = out + config.feature_noise * torch.randn_like(out)
    return out
