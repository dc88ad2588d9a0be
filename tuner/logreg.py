"""``lr``: multinomial logistic regression solved to convergence, L2 strength by k-fold CV.

The objective is scikit-learn's (so C means the same thing there and here)::

    (1 / n) sum_i w_i CE(W x_i + b, y_i)  +  ||W||^2 / (2 C n)        (intercept b not penalised)

(with two classes, the penalty of scikit-learn's binary model on w = W1 - W0: ||W||^2 / (C n)),

solved full batch with L-BFGS (strong Wolfe line search) in float64, on the head's device,
with the gradient written out (no autograd graph).
The folds of one C are solved together as one block-separable problem (K independent
objectives summed), and the C path runs from strong to weak regularisation with warm starts,
so the whole cross-validation costs a few dozen L-BFGS runs of matrix products.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch

from nmtune.tuner.splits import fold_count, stratified_folds

__all__ = [
    "LogRegFit",
    "c_grid",
    "fit_logreg",
    "fit_logreg_cv",
    "fit_logreg_folds",
    "fit_logreg_on_eval",
]

logger = logging.getLogger(__name__)

#: scikit-learn's LogisticRegression default, used when no C can be cross-validated.
DEFAULT_C = 1.0
_TOL = 1e-4


@dataclass
class LogRegFit:
    """A solved logistic regression and how its C was chosen."""

    weight: torch.Tensor  # (C_classes, D) float32
    bias: torch.Tensor  # (C_classes,) float32
    c: float
    selection: str  # "given" | "cv" | "eval" | "default (too few examples for CV)"
    cs: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)  # mean held-out accuracy per C
    folds: int = 0
    # "eval" only: the in-domain CV C the evaluation data had to beat (None: no guard)
    default_c: float | None = None


def c_grid(n: int) -> list[float]:
    """``n`` values of C on a log scale over [1e-4, 1e4] (LogisticRegressionCV's Cs=n)."""
    if n == 1:
        return [DEFAULT_C]
    return [float(c) for c in np.logspace(-4, 4, n)]


def _solve(
    x: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    masks: torch.Tensor,
    c: float,
    w0: torch.Tensor,
    b0: torch.Tensor,
    max_iter: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """K independent fits at once: x (n, D), y (n,), masks (K, n) sample weights
    (0 = not in that fit), w0 (K, C, D), b0 (K, C). Returns (W (K, C, D), b (K, C)).

    The gradient is written out (d CE / d logits = softmax - one-hot) rather than taken by
    autograd: one exp pass (shared by the loss and the softmax) and two matrix products
    per evaluation, no saved graph."""
    if n_classes == 2:
        return _solve_binary(x, y, masks, c, w0, b0, max_iter)
    k, dim = w0.shape[0], x.shape[1]
    w, b = w0.clone(), b0.clone()
    gw, gb = torch.zeros_like(w), torch.zeros_like(b)  # the gradients L-BFGS reads
    w.grad, b.grad = gw, gb
    n_k = masks.sum(dim=1).clamp_min(1e-12)  # (K,)
    penalty = 1.0 / (2.0 * c * n_k)  # (K,)
    row_w = (masks / n_k[:, None]).T.contiguous()  # (n, K) row i's weight in fit k's mean
    at_y = y.view(-1, 1, 1).expand(-1, k, 1)  # (n, K, 1)
    minus_one = torch.full(at_y.shape, -1.0, dtype=x.dtype, device=x.device)  # (n, K, 1)

    def closure() -> torch.Tensor:
        logits = (x @ w.reshape(k * n_classes, dim).T).view(-1, k, n_classes) + b  # (n, K, C)
        at_label = logits.gather(2, at_y).squeeze(2)  # (n, K)
        top = logits.amax(dim=2, keepdim=True)  # (n, K, 1)
        grad = logits.sub_(top).exp_()  # (n, K, C) exp(logit - max), in place
        total = grad.sum(dim=2)  # (n, K)
        nll = top.squeeze(2) + total.log() - at_label  # (n, K) logsumexp - logit of y
        loss = (row_w * nll).sum() + (penalty * (w * w).sum(dim=(1, 2))).sum()
        grad.div_(total[:, :, None])  # softmax
        grad.scatter_add_(2, at_y, minus_one)  # - one-hot
        grad.mul_(row_w[:, :, None])
        gw.copy_((grad.view(-1, k * n_classes).T @ x).view(k, n_classes, dim))
        gw.add_(w * (2.0 * penalty)[:, None, None])
        gb.copy_(grad.sum(dim=0))
        return loss

    opt = _lbfgs([w, b], max_iter)
    opt.step(closure)  # type: ignore[no-untyped-call]
    return w.detach(), b.detach()


def _solve_binary(
    x: torch.Tensor,
    y: torch.Tensor,
    masks: torch.Tensor,
    c: float,
    w0: torch.Tensor,
    b0: torch.Tensor,
    max_iter: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes, as scikit-learn solves them: one vector v = W1 - W0 and one intercept
    beta = b1 - b0 per fit, objective (1/n) sum_i w_i softplus(-s_i (x_i v + beta)) +
    ||v||^2 / (2 C n) with s_i = +-1. It is the multinomial objective restricted to its
    optimum's W0 = -W1 (||W||^2 = ||v||^2 / 2 there, so the multinomial penalty is twice
    ||W||^2 / (2 C n)): the same solution at half the matrix work. Returned as (W, b) of the
    two-class model: W = (-v/2, v/2), b = b_mean + (-beta/2, beta/2) (the intercepts' mean,
    which no logit depends on, is kept from b0). The gradient is written out, as in
    :func:`_solve` (d softplus(z) / dz = sigmoid(z))."""
    v = (w0[:, 1] - w0[:, 0]).clone()  # (K, D)
    beta = (b0[:, 1] - b0[:, 0]).clone()  # (K,)
    gv, gbeta = torch.zeros_like(v), torch.zeros_like(beta)  # the gradients L-BFGS reads
    v.grad, beta.grad = gv, gbeta
    sign = (2.0 * y.to(x.dtype) - 1.0)[:, None]  # (n, 1) +1 for class 1, -1 for class 0
    n_k = masks.sum(dim=1).clamp_min(1e-12)  # (K,)
    penalty = 1.0 / (2.0 * c * n_k)  # (K,)
    row_w = (masks / n_k[:, None]).T.contiguous()  # (n, K)

    def closure() -> torch.Tensor:
        z = -sign * (x @ v.T + beta)  # (n, K) minus the signed margin
        loss = (row_w * torch.nn.functional.softplus(z)).sum() + (
            penalty * (v * v).sum(dim=1)
        ).sum()
        grad = torch.sigmoid(z).mul_(row_w).mul_(-sign)  # (n, K) d loss / d margin
        gv.copy_(grad.T @ x).add_(v * (2.0 * penalty)[:, None])
        gbeta.copy_(grad.sum(dim=0))
        return loss

    opt = _lbfgs([v, beta], max_iter)
    opt.step(closure)  # type: ignore[no-untyped-call]
    half_v, half_beta = 0.5 * v.detach(), 0.5 * beta.detach()
    w = torch.stack([-half_v, half_v], dim=1)  # (K, 2, D)
    b_mean = b0.mean(dim=1, keepdim=True)  # (K, 1)
    b = b_mean + torch.stack([-half_beta, half_beta], dim=1)  # (K, 2)
    return w, b


def _lbfgs(params: list[torch.Tensor], max_iter: int) -> torch.optim.LBFGS:
    return torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=max_iter,
        max_eval=max_iter * 2,
        tolerance_grad=_TOL,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )


def _accuracy(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    pred = (x @ w.T + b).argmax(dim=1)
    return float((pred == y).double().mean().item()) if y.numel() else 0.0


def _tensors(
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    sample_weight: npt.NDArray[np.float64] | None,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    xt = torch.as_tensor(x, dtype=torch.float64, device=device)  # (n, D)
    yt = torch.as_tensor(y, dtype=torch.long, device=device)  # (n,)
    sw = np.ones(y.size) if sample_weight is None else sample_weight
    wt = torch.as_tensor(sw, dtype=torch.float64, device=device)  # (n,)
    return xt, yt, wt


def _zeros(k: int, n_classes: int, dim: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    return (
        torch.zeros((k, n_classes, dim), dtype=torch.float64, device=device),
        torch.zeros((k, n_classes), dtype=torch.float64, device=device),
    )


def fit_logreg(
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    n_classes: int,
    c: float,
    *,
    sample_weight: npt.NDArray[np.float64] | None = None,
    max_iter: int = 100,
    device: torch.device | None = None,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> LogRegFit:
    """Solve the L2-regularised multinomial logistic regression at one C.

    Parameters
    ----------
    x : (n, D) float32; y : (n,) class indices in [0, n_classes); c : inverse L2 strength.
    """
    dev = device or torch.device("cpu")
    xt, yt, wt = _tensors(x, y, sample_weight, dev)
    w0, b0 = _zeros(1, n_classes, x.shape[1], dev)
    if init is not None:
        w0, b0 = init[0].to(dev, torch.float64)[None], init[1].to(dev, torch.float64)[None]
    w, b = _solve(xt, yt, n_classes, wt[None], c, w0, b0, max_iter)
    return LogRegFit(w[0].float(), b[0].float(), float(c), "given")


def fit_logreg_cv(
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    n_classes: int,
    cs: list[float],
    folds: int,
    seed: int,
    *,
    sample_weight: npt.NDArray[np.float64] | None = None,
    max_iter: int = 100,
    device: torch.device | None = None,
    on_c: Callable[[int, float, float], None] | None = None,
    repeats: int = 1,
) -> LogRegFit:
    """C by stratified ``folds``-fold CV (best mean held-out accuracy, ties -> the smaller
    C), then one refit on all rows, as ``LogisticRegressionCV(Cs=cs, refit=True)``.

    ``repeats`` > 1 averages the CV curve over that many differently seeded fold
    assignments (seed, seed + 1, ...): on small data one assignment's noise can move the
    chosen C by a decade. All folds of all repeats are solved together.

    ``on_c(i, c, mean_accuracy)`` is called after each C (progress; may raise to cancel).
    Folds: ``min(folds, smallest class)``, at least 2 (a class of one row is then missing from
    one fold's training part, as with scikit-learn's StratifiedKFold). Fewer than 2 rows per
    fold (or a single C) leaves nothing to cross-validate: C = 1 (or that C).
    """
    dev = device or torch.device("cpu")
    k = fold_count(y, folds)
    if y.size < 2 * k or len(cs) == 1:
        c = cs[0] if len(cs) == 1 else DEFAULT_C
        fit = fit_logreg(
            x, y, n_classes, c, sample_weight=sample_weight, max_iter=max_iter, device=dev
        )
        fit.selection = "given" if len(cs) == 1 else "default (too few examples for CV)"
        return fit
    xt, yt, wt = _tensors(x, y, sample_weight, dev)
    held = [h for r in range(max(1, repeats)) for h in stratified_folds(y, k, seed + r)]
    held_masks = torch.zeros((len(held), y.size), dtype=torch.float64, device=dev)  # (K, n)
    for j, idx in enumerate(held):
        held_masks[j, torch.as_tensor(idx, device=dev)] = 1.0
    train_masks = (1.0 - held_masks) * wt[None]  # (K, n)
    w, b = _zeros(len(held), n_classes, x.shape[1], dev)
    scores: list[float] = []
    states: list[tuple[torch.Tensor, torch.Tensor]] = []
    for i, c in enumerate(sorted(cs)):
        w, b = _solve(xt, yt, n_classes, train_masks, c, w, b, max_iter)  # warm start
        accs = []
        for j, idx in enumerate(held):
            it = torch.as_tensor(idx, device=dev)
            accs.append(_accuracy(w[j], b[j], xt[it], yt[it]))
        scores.append(float(np.mean(accs)))
        states.append((w.mean(dim=0), b.mean(dim=0)))
        if on_c is not None:
            on_c(i, c, scores[-1])
    best = int(np.argmax(scores))  # first maximum = the smallest C among ties
    c = sorted(cs)[best]
    w_all, b_all = _solve(
        xt, yt, n_classes, wt[None], c, states[best][0][None], states[best][1][None], max_iter
    )
    return LogRegFit(
        w_all[0].float(), b_all[0].float(), float(c), "cv", sorted(cs), scores, folds=k
    )


def fit_logreg_on_eval(
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    n_classes: int,
    cs: list[float],
    x_eval: npt.NDArray[np.float32],
    y_eval: npt.NDArray[np.int64],
    *,
    sample_weight: npt.NDArray[np.float64] | None = None,
    max_iter: int = 100,
    device: torch.device | None = None,
    on_c: Callable[[int, float, float], None] | None = None,
    default_c: float | None = None,
) -> LogRegFit:
    """C by accuracy on a separate evaluation set (e.g. labelled target-domain validation);
    every C is fitted on all of (x, y); ties -> the smaller C.

    ``default_c`` (one of ``cs``, e.g. the in-domain CV choice): the evaluation set must
    *show* that another C is better. A C replaces it only when it gets more evaluation rows
    right than ``default_c`` by more than one paired standard error: with ``b`` rows right
    only under C and ``d`` right only under ``default_c``, ``b - d > sqrt(b + d)`` (McNemar's
    statistic above 1). A few dozen target rows cannot otherwise tell Cs apart, and the
    first maximum (the smallest C among ties) then over-regularises.
    """
    dev = device or torch.device("cpu")
    xt, yt, wt = _tensors(x, y, sample_weight, dev)
    xe = torch.as_tensor(x_eval, dtype=torch.float64, device=dev)
    ye = torch.as_tensor(y_eval, dtype=torch.long, device=dev)
    w, b = _zeros(1, n_classes, x.shape[1], dev)
    grid = sorted(cs)
    scores: list[float] = []
    states: list[tuple[torch.Tensor, torch.Tensor]] = []
    right: list[torch.Tensor] = []  # (n_eval,) bool per C
    for i, c in enumerate(grid):
        w, b = _solve(xt, yt, n_classes, wt[None], c, w, b, max_iter)
        hit = (xe @ w[0].T + b[0]).argmax(dim=1) == ye
        acc = float(hit.double().mean().item()) if ye.numel() else 0.0
        scores.append(acc)
        states.append((w[0].clone(), b[0].clone()))
        right.append(hit)
        if on_c is not None:
            on_c(i, c, acc)
    best = int(np.argmax(scores))  # first maximum = the smallest C among ties
    if default_c is not None and default_c in grid:
        base = grid.index(default_c)
        best = base
        for i in range(len(grid)):
            gain = int((right[i] & ~right[base]).sum())  # rows only C_i gets right
            loss = int((right[base] & ~right[i]).sum())  # rows only default_c gets right
            if gain - loss > (gain + loss) ** 0.5 and scores[i] > scores[best]:
                best = i
    return LogRegFit(
        states[best][0].float(),
        states[best][1].float(),
        grid[best],
        "eval",
        grid,
        scores,
        default_c=default_c,
    )


def fit_logreg_folds(
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    n_classes: int,
    c: float,
    held: list[npt.NDArray[np.int64]],
    *,
    sample_weight: npt.NDArray[np.float64] | None = None,
    max_iter: int = 100,
    device: torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One fit per held-out part at a fixed C, solved together: fit ``j`` trains on every
    row not in ``held[j]`` (weighted by ``sample_weight``; weight 0 leaves a row out).

    Returns (W (K, n_classes, D), b (K, n_classes)) float64 on ``device``: fit ``j``'s
    logits of row i are ``x[i] @ W[j].T + b[j]`` (out-of-fold for the rows of ``held[j]``).
    """
    dev = device or torch.device("cpu")
    xt, yt, wt = _tensors(x, y, sample_weight, dev)
    held_masks = torch.zeros((len(held), y.size), dtype=torch.float64, device=dev)  # (K, n)
    for j, idx in enumerate(held):
        held_masks[j, torch.as_tensor(idx, device=dev)] = 1.0
    train_masks = (1.0 - held_masks) * wt[None]  # (K, n)
    w0, b0 = _zeros(len(held), n_classes, x.shape[1], dev)
    return _solve(xt, yt, n_classes, train_masks, c, w0, b0, max_iter)
