"""Model selection: which data decides, and how one head is fitted under it.

Three selection signals (``Signal.kind``, chosen by :func:`tuner.splits.choose_signal`):

* ``target``: labelled target-domain validation data (e.g. a second domain) was given; epochs,
  lr's C and auto's candidate are chosen on it; every training row is used for training.
* ``holdout``: a validation split (given, or carved from train) of at least ``min_holdout``
  rows: the torch heads keep their best validation epoch; auto scores candidates on it.
* ``cv``: the data is too small for a useful holdout (or auto can afford it): stratified
  k-fold cross-validation on train + validation (repeated for auto), then one refit on all
  of it at the chosen epoch / C.

(``none``: ``val_fraction=0`` and no validation given: the last epoch is kept.)

``lr`` always chooses C by k-fold CV on all its training rows (LogisticRegressionCV), except
under ``target``. A head grown from lr (``init_from_lr``) starts at the lr solution and its
epoch 0 is a candidate, so it only moves away from lr where the signal says so. auto's
choice among candidates is in :mod:`tuner.auto`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from nmtune.tuner.config import TORCH_METHODS, HeadConfig
from nmtune.tuner.errors import ConfigError
from nmtune.tuner.heads import HeadModule
from nmtune.tuner.logreg import LogRegFit
from nmtune.tuner.lr import linear_head, lr_record, solve_lr, solve_lr_at
from nmtune.tuner.metrics import index_scores
from nmtune.tuner.splits import Signal, fold_count, stratified_folds
from nmtune.tuner.training import (
    EpochReport,
    ProgressCallback,
    predict_logits,
    resolve_device,
    train_head,
)

__all__ = ["Fitted", "cv_curve", "fit_single", "lr_fitted", "refit_at_epoch", "scores"]

logger = logging.getLogger(__name__)

#: Longest silence of a cross-validation fold towards the progress callback (seconds).
CV_REPORT_INTERVAL_S = 1.0

Array = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]


@dataclass
class Fitted:
    """A trained head and its record."""

    model: HeadModule
    config: HeadConfig
    history: list[dict[str, Any]]
    best_epoch: int
    score: float  # selection score of the kept state (accuracy; NaN when none)
    macro_f1: float
    device: str
    details: dict[str, Any] = field(default_factory=dict)


def scores(model: HeadModule, x: Array, y: Labels, device: torch.device) -> tuple[float, float]:
    """(accuracy, macro-F1) of ``model`` on (x, y)."""
    xt = torch.as_tensor(x, dtype=torch.float32, device=device)
    pred = predict_logits(model, xt).argmax(dim=1).cpu().numpy()
    return index_scores(y, pred, model.classifier.out_features)


def lr_fitted(
    fit: LogRegFit,
    config: HeadConfig,
    n_classes: int,
    device: torch.device,
    sel: tuple[Array, Labels] | None = None,
) -> Fitted:
    """A solved lr as a :class:`Fitted`; scored on ``sel`` when given, else its best CV
    accuracy over C (NaN when C was not cross-validated)."""
    model = linear_head(fit, fit.weight.shape[1], n_classes, device)
    acc, f1 = (max(fit.scores) if fit.scores else float("nan")), float("nan")
    if sel is not None:
        acc, f1 = scores(model, sel[0], sel[1], device)
    return Fitted(model, config, [], 0, acc, f1, str(device), {"lr": lr_record(fit)})


def fit_single(
    config: HeadConfig,
    signal: Signal,
    n_classes: int,
    *,
    callback: ProgressCallback | None = None,
    candidate: int = 0,
    lr_c: float | None = None,
    val_groups: npt.NDArray[np.int64] | None = None,
    early_stop: bool = True,
    deadline: float | None = None,
) -> Fitted:
    """Fit one head of ``config.method`` under ``signal``.

    ``lr_c``: the C to use for an lr solution (lr itself, or the start of an
    ``init_from_lr`` head) instead of ``config.lr_c`` / choosing it again. ``val_groups``:
    groups of the selection rows (holdout / target) whose accuracy each epoch records.
    ``early_stop``: on a holdout / target signal, stop after ``config.patience`` epochs
    without a better validation score (False: every epoch, e.g. when the whole epoch curve
    is scored, as auto's cross-fitting does). ``deadline``: a torch head's training raises
    :class:`~tuner.errors.OverBudget` once it is projected to end past this
    ``time.perf_counter()`` value (see :func:`~tuner.training.train_head`).
    """
    device = resolve_device(config.device)
    lr_cfg = config if lr_c is None else dataclasses.replace(config, lr_c=lr_c)
    if config.method == "lr":
        # lr trains on every row (its C comes from CV on them, or from target data)
        fit = solve_lr(
            lr_cfg, signal.x, signal.y, n_classes, signal.target, device, callback, candidate
        )
        return lr_fitted(fit, config, n_classes, device, signal.target)
    if config.method not in TORCH_METHODS:
        raise ConfigError(f"cannot fit method {config.method!r} as a single head", "method")

    init_fit: LogRegFit | None = None
    details: dict[str, Any] = {}
    if config.init_from_lr:
        init_fit = solve_lr(
            lr_cfg, signal.x_train, signal.y_train, n_classes, signal.target, device
        )
        details["lr_init"] = lr_record(init_fit)
    init = None if init_fit is None else (init_fit.weight, init_fit.bias)

    if signal.kind == "cv":
        curve, fold_rows = cv_curve(
            config,
            signal.x,
            signal.y,
            n_classes,
            [config.seed],
            config.cv_folds,
            init_c=None if init_fit is None else init_fit.c,
            callback=callback,
            candidate=candidate,
            deadline=deadline,
        )
        stop = int(np.argmax(curve)) + (0 if init_fit is not None else 1)
        # folds actually used (fewer than cv_folds when a class is small)
        details["cv"] = {"folds": len(fold_rows), "curve": curve.tolist(), "epoch": stop}
        out = refit_at_epoch(config, signal, n_classes, stop, init, details, callback, candidate)
        out.score = float(np.max(curve))
        return out

    sel = signal.sel if signal.kind in ("holdout", "target") else None
    res = train_head(
        config,
        signal.x_train,
        signal.y_train,
        n_classes,
        x_val=None if sel is None else sel[0],
        y_val=None if sel is None else sel[1],
        init=init,
        callback=callback,
        candidate=candidate,
        val_groups=None if sel is None else val_groups,
        patience=config.patience if early_stop else 0,
        deadline=deadline,
    )
    details.update(res.details)
    return Fitted(
        res.model,
        config,
        res.history,
        res.best_epoch,
        res.best_val_accuracy,
        res.best_val_macro_f1,
        res.device,
        details,
    )


def refit_at_epoch(
    config: HeadConfig,
    signal: Signal,
    n_classes: int,
    stop: int,
    init: tuple[torch.Tensor, torch.Tensor] | None,
    details: dict[str, Any],
    callback: ProgressCallback | None,
    candidate: int,
) -> Fitted:
    """A torch head trained on every row of ``signal`` and kept at epoch ``stop`` (the
    cross-validated one; the schedule is the full one, as in the folds)."""
    res = train_head(
        config,
        signal.x,
        signal.y,
        n_classes,
        stop_at=stop,
        init=init,
        callback=callback,
        candidate=candidate,
    )
    details.update(res.details)
    nan = float("nan")
    return Fitted(res.model, config, res.history, stop, nan, nan, res.device, details)


def cv_curve(
    config: HeadConfig,
    x: Array,
    y: Labels,
    n_classes: int,
    seeds: Sequence[int],
    folds: int,
    *,
    init_c: float | None = None,
    callback: ProgressCallback | None = None,
    candidate: int = 0,
    lr_cache: dict[tuple[Any, ...], LogRegFit] | None = None,
    only_folds: Sequence[int] | None = None,
    deadline: float | None = None,
) -> tuple[npt.NDArray[np.float64], list[list[float]]]:
    """Mean held-out accuracy per epoch over stratified folds (one k-fold per seed).

    For a torch head the curve has one value per epoch (index 0 = epoch 0, the lr start,
    when ``init_c`` is given; else index 0 = epoch 1); for lr (method 'lr', C = ``init_c``)
    it is a single value. Returns (curve, per-fold accuracies at each curve point).

    ``lr_cache``: per-fold lr solutions keyed by (C, seed, fold, class weighting, iterations),
    shared between calls (auto's candidates that grow from the same lr solve it once a fold).
    ``only_folds``: run only these fold indices of each seed's k-fold (auto's racing runs
    one fold at a time). ``deadline``: passed to every fold's :func:`train_head`.
    """
    device = resolve_device(config.device)
    k = fold_count(y, folds)
    if y.size < 2 * k:
        raise ConfigError(f"cross-validation needs >= {2 * k} rows, got {y.size}", "cv_folds")
    rows: list[list[float]] = []
    forward = _fold_callback(callback)
    grows_from_lr = config.method == "lr" or init_c is not None
    c = init_c if init_c is not None else (config.lr_c or 1.0)
    cache: dict[tuple[Any, ...], LogRegFit] = {} if lr_cache is None else lr_cache
    for seed in seeds:
        for i, held in enumerate(stratified_folds(y, k, seed)):
            if only_folds is not None and i not in only_folds:
                continue
            rest = np.setdiff1d(np.arange(y.size), held, assume_unique=True)
            lr = None
            if grows_from_lr:
                key = (c, seed, i, config.class_weight, config.lr_max_iter)
                if key not in cache:
                    cache[key] = solve_lr_at(config, x[rest], y[rest], n_classes, c, device)
                lr = cache[key]
            if config.method == "lr":
                assert lr is not None
                head = linear_head(lr, x.shape[1], n_classes, device)
                rows.append([scores(head, x[held], y[held], device)[0]])
                continue
            res = train_head(
                config,
                x[rest],
                y[rest],
                n_classes,
                x_val=x[held],
                y_val=y[held],
                init=None if lr is None else (lr.weight, lr.bias),
                callback=forward,
                candidate=candidate,
                deadline=deadline,
            )
            rows.append([float(h["val_accuracy"]) for h in res.history])
    curve = np.mean(np.asarray(rows, dtype=np.float64), axis=0)
    return curve, rows


def _fold_callback(callback: ProgressCallback | None) -> ProgressCallback | None:
    """Reports of cross-validation folds (``phase="cv"``): each fold's last epoch, and any
    epoch once ``CV_REPORT_INTERVAL_S`` has passed since the last report, so progress and
    cancellation reach the caller within about a second without a report per epoch of
    every fold."""
    if callback is None:
        return None
    last = [time.perf_counter()]

    def forward(report: EpochReport) -> bool | None:
        now = time.perf_counter()
        if report.epoch == report.epochs or now - last[0] >= CV_REPORT_INTERVAL_S:
            last[0] = now
            return callback(dataclasses.replace(report, phase="cv"))
        return None

    return forward
