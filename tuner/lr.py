"""The ``lr`` method on top of the solver in :mod:`tuner.logreg`: how its C is chosen (given,
on target-domain data, or by stratified k-fold CV), its head, and its record."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from nmtune.tuner.config import HeadConfig
from nmtune.tuner.errors import TrainingCancelled
from nmtune.tuner.heads import LinearHead
from nmtune.tuner.logreg import LogRegFit, c_grid, fit_logreg, fit_logreg_cv, fit_logreg_on_eval
from nmtune.tuner.training import EpochReport, ProgressCallback, balanced_class_weights

__all__ = ["linear_head", "lr_record", "solve_lr", "solve_lr_at"]

Array = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]


def sample_weight(config: HeadConfig, y: Labels, n_classes: int) -> npt.NDArray[np.float64] | None:
    """Per-row weights for ``class_weight='balanced'`` (None otherwise)."""
    if config.class_weight != "balanced":
        return None
    return balanced_class_weights(y, n_classes)[y]


def solve_lr_at(
    config: HeadConfig, x: Array, y: Labels, n_classes: int, c: float, device: torch.device
) -> LogRegFit:
    """lr on (x, y) at a fixed C."""
    sw = sample_weight(config, y, n_classes)
    return fit_logreg(
        x, y, n_classes, c, sample_weight=sw, max_iter=config.lr_max_iter, device=device
    )


def solve_lr(
    config: HeadConfig,
    x: Array,
    y: Labels,
    n_classes: int,
    sel: tuple[Array, Labels] | None,
    device: torch.device,
    callback: ProgressCallback | None = None,
    candidate: int = 0,
) -> LogRegFit:
    """lr on (x, y): C = ``config.lr_c`` when set, else chosen on ``sel`` (target-domain
    data) when given, else by ``config.cv_folds``-fold stratified CV on (x, y). On ``sel``
    the in-domain CV choice is the default, replaced only by a C that the target rows show
    to be better by more than one paired standard error (:func:`fit_logreg_on_eval`).

    ``callback`` gets one report per C (``epoch`` = the C's rank; may cancel).
    """
    if config.lr_c is not None:
        return solve_lr_at(config, x, y, n_classes, config.lr_c, device)
    sw = sample_weight(config, y, n_classes)
    cs = c_grid(config.lr_cs)
    started = time.perf_counter()

    def on_c(i: int, c: float, acc: float) -> None:
        if callback is None:
            return
        report = EpochReport(
            method="lr",
            candidate=candidate,
            epoch=i + 1,
            epochs=len(cs),
            losses={},
            val_accuracy=acc,
            val_macro_f1=float("nan"),
            elapsed_s=time.perf_counter() - started,
        )
        if callback(report) is False:
            raise TrainingCancelled(f"training cancelled by the callback after C #{i + 1}")

    common: dict[str, Any] = {
        "sample_weight": sw,
        "max_iter": config.lr_max_iter,
        "device": device,
        "on_c": on_c,
    }
    repeats = config.lr_cv_repeats if y.size < 10 * config.min_holdout else 1
    if sel is not None:
        # the in-domain CV choice stands unless the target data shows a better C
        in_domain = fit_logreg_cv(
            x,
            y,
            n_classes,
            cs,
            config.cv_folds,
            config.seed,
            repeats=repeats,
            sample_weight=sw,
            max_iter=config.lr_max_iter,
            device=device,
        )
        default = in_domain.c if in_domain.selection == "cv" else None
        return fit_logreg_on_eval(x, y, n_classes, cs, sel[0], sel[1], **common, default_c=default)
    return fit_logreg_cv(
        x, y, n_classes, cs, config.cv_folds, config.seed, repeats=repeats, **common
    )


def linear_head(fit: LogRegFit, dim: int, n_classes: int, device: torch.device) -> LinearHead:
    """The solved lr as a :class:`LinearHead` (eval mode, on ``device``)."""
    head = LinearHead(dim, n_classes)
    with torch.no_grad():
        head.classifier.weight.copy_(fit.weight)
        head.classifier.bias.copy_(fit.bias)
    return head.to(device).eval()


def lr_record(fit: LogRegFit) -> dict[str, Any]:
    """JSON-safe record of how C was chosen."""
    return {
        "c": fit.c,
        "c_selection": fit.selection,
        "cs": fit.cs,
        "c_scores": fit.scores,
        "c_folds": fit.folds,
        **({} if fit.default_c is None else {"c_in_domain": fit.default_c}),
    }
