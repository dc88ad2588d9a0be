"""``auto``: score every candidate head under one selection signal and pick one.

The signal (see :mod:`tuner.selection`): target-domain validation data when given (always
wins); else repeated stratified k-fold CV on train + validation when there are at most
``auto_cv_max_rows`` rows (or ``auto_signal='cv'``), time-bounded by ``auto_time_budget_s``;
else the validation split. The pick: ``auto_rule`` over the candidates' scores in grid order
(``one-se`` prefers the earlier, simpler candidate; n = the number of selection rows).
Every candidate's score is recorded. lr's C is solved once and shared by the lr candidate and
every candidate grown from lr.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from nmtune.tuner.config import HeadConfig, resolve_config
from nmtune.tuner.errors import ConfigError, OverBudget
from nmtune.tuner.logreg import LogRegFit
from nmtune.tuner.lr import lr_record, solve_lr, solve_lr_at
from nmtune.tuner.selection import Fitted, cv_curve, fit_single, lr_fitted, refit_at_epoch
from nmtune.tuner.splits import Signal, fold_count, stratified_folds
from nmtune.tuner.training import ProgressCallback, resolve_device

__all__ = ["candidate_configs", "fit_auto", "loo_epoch_scores", "race_out", "select_candidate"]

Array = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]


def select_candidate(scores: Sequence[tuple[float, float]], n: int, rule: str) -> int:
    """Index of auto's pick among candidates' (accuracy, macro-F1) in grid order.

    ``best``: highest (accuracy, macro-F1), the first one on ties. ``one-se``: the first
    candidate (the grid lists simpler heads first) whose accuracy is within one standard
    error of the best accuracy p: differences smaller than the selection data can resolve do
    not buy a bigger head. The standard error is Agresti-Coull's, sqrt(q (1 - q) / (n + 4))
    with q = (p n + 2) / (n + 4): unlike sqrt(p (1 - p) / n) it does not vanish when the
    best candidate scores 1.0 on a few rows.
    """
    if not scores:
        raise ValueError("no candidates")
    clean = [(a if np.isfinite(a) else -1.0, f if np.isfinite(f) else -1.0) for a, f in scores]
    best = max(range(len(clean)), key=lambda i: (clean[i], -i))
    if rule in ("best", "cv"):
        return best
    if rule != "one-se":
        raise ConfigError(f"unknown auto_rule {rule!r}", "auto_rule")
    p = max(clean[best][0], 0.0)
    q = (p * n + 2.0) / (n + 4.0)
    se = (q * (1.0 - q) / (n + 4.0)) ** 0.5
    return next(i for i, s in enumerate(clean) if s[0] >= p - se - 1e-12)


def candidate_configs(
    config: HeadConfig, base: dict[str, Any]
) -> list[tuple[dict[str, Any], HeadConfig]]:
    """auto's candidates: (record, resolved config); ``base`` = the user's shared overrides."""
    out = []
    for i, cand in enumerate(config.candidate_overrides()):
        method = str(cand.pop("method"))
        preset = str(cand.pop("preset", config.preset))
        floor = cand.pop("min_per_class", None)
        shared = {
            k: v
            for k, v in base.items()
            if method == "nmtune" or k not in ("w_mse", "w_cov", "w_svd")
        }
        cfg = resolve_config(method, preset, {**shared, **cand, "seed": config.seed})
        rec: dict[str, Any] = {"index": i, "method": method, "preset": preset, "overrides": cand}
        if floor is not None:
            rec["min_per_class"] = int(floor)
        out.append((rec, cfg))
    return out


@dataclass
class _SharedLr:
    """lr's C chosen once under the signal (by CV, or on target data) and its solution on the
    rows trained on while selecting; used by every candidate that grows from lr and does not
    set its own ``lr_c`` (a candidate's ``lr_c`` wins)."""

    fit: LogRegFit | None

    def c_for(self, cfg: HeadConfig) -> float | None:
        """The C of ``cfg``'s lr solution (None when ``cfg`` does not grow from lr)."""
        if not _grows_from_lr(cfg):
            return None
        if cfg.lr_c is not None:
            return cfg.lr_c
        assert self.fit is not None, "the shared lr is solved when a candidate needs it"
        return self.fit.c

    def fit_for(
        self, cfg: HeadConfig, x: Array, y: Labels, n_classes: int, device: torch.device
    ) -> LogRegFit:
        """``cfg``'s lr solution on (x, y), the rows the shared fit was solved on."""
        if cfg.lr_c is not None:
            return solve_lr_at(cfg, x, y, n_classes, cfg.lr_c, device)
        assert self.fit is not None, "the shared lr is solved when a candidate needs it"
        return self.fit


def _grows_from_lr(cfg: HeadConfig) -> bool:
    return cfg.method == "lr" or cfg.init_from_lr


def _use_cv(config: HeadConfig, signal: Signal) -> bool:
    if signal.kind == "target":
        return False  # target-domain data always decides
    if signal.kind in ("cv", "none"):
        return True  # nothing (large enough) to hold out
    if config.auto_signal == "cv" or config.auto_rule == "cv":
        return True
    if config.auto_signal == "holdout":
        return False
    return signal.all_rows()[1].size <= config.auto_cv_max_rows


def fit_auto(
    config: HeadConfig,
    base_overrides: dict[str, Any],
    signal: Signal,
    n_classes: int,
    *,
    callback: ProgressCallback | None = None,
) -> tuple[Fitted, list[dict[str, Any]], Signal]:
    """Score every candidate under the signal, pick by ``auto_rule``; return the winner
    (refitted on every row under CV), every candidate's record, and the signal used."""
    started = time.perf_counter()
    cands = candidate_configs(config, base_overrides)
    records = [rec for rec, _ in cands]
    if _use_cv(config, signal):
        xa, ya = signal.all_rows()
        desc = f"repeated {config.auto_cv_folds}-fold CV on train + validation"
        signal = Signal("cv", xa, ya, xa, ya, description=desc)
    device = resolve_device(config.device)

    # 1. lr's C (on the rows trained on while selecting), shared by the candidates that
    #    grow from lr without their own lr_c.
    shared = _SharedLr(None)
    source = next(((r, c) for r, c in cands if _grows_from_lr(c) and c.lr_c is None), None)
    if source is not None:
        rec, cfg = source
        shared.fit = solve_lr(
            cfg,
            signal.x_train,
            signal.y_train,
            n_classes,
            signal.target,
            device,
            callback,
            rec["index"],
        )

    per_class = float(np.median(np.bincount(signal.y_train)[np.unique(signal.y_train)]))
    cands = _above_floors(config, cands, per_class)
    budget = config.auto_time_budget_s
    deadline = started + budget if budget > 0 else None
    if signal.kind == "cv":
        pick, winner = _select_by_cv(
            config, cands, signal, n_classes, shared, callback, started, deadline
        )
    else:
        pick, winner = _select_on_rows(
            config, cands, signal, n_classes, shared, callback, device, deadline
        )
    picked = cands[pick][0]["index"]  # pick indexes the fitted candidates
    for rec in records:
        rec["selected"] = rec["index"] == picked
    winner.details["auto"] = {"elapsed_s": round(time.perf_counter() - started, 3)}
    return winner, records, signal


def _above_floors(
    config: HeadConfig, cands: list[tuple[dict[str, Any], HeadConfig]], per_class: float
) -> list[tuple[dict[str, Any], HeadConfig]]:
    """The candidates fitted when the median class has ``per_class`` rows; the others are
    marked ``skipped`` with the reason. The first (simplest) candidate is always fitted.

    A handful of rows per class cannot rank heads (a 16-row CV has a standard error of over
    10 points, and the nonlinear heads' best-epoch scores are optimistic): below
    ``auto_min_per_class`` only the first candidate is fitted. A candidate's own
    ``min_per_class`` skips it below that size (the default grid's paper-code:
    :data:`~tuner.config.PAPER_CODE_MIN_PER_CLASS`).
    """
    kept = cands[:1]
    for rec, cfg in cands[1:]:
        if per_class < config.auto_min_per_class:
            rec["skipped"] = (
                f"median class has fewer than auto_min_per_class={config.auto_min_per_class} "
                "examples"
            )
        elif per_class < rec.get("min_per_class", 0):
            rec["skipped"] = (
                f"median class has fewer than this candidate's min_per_class="
                f"{rec['min_per_class']} examples"
            )
        else:
            kept.append((rec, cfg))
    return kept


def _select_on_rows(
    config: HeadConfig,
    cands: list[tuple[dict[str, Any], HeadConfig]],
    signal: Signal,
    n_classes: int,
    shared: _SharedLr,
    callback: ProgressCallback | None,
    device: torch.device,
    deadline: float | None = None,
) -> tuple[int, Fitted]:
    """Holdout / target: every candidate trained on ``x_train``, scored on the selection rows.

    A torch head keeps its best epoch on the selection rows, which makes that epoch's score
    optimistic; it is compared by a cross-fitted score instead: the selection rows are dealt
    into two stratified halves, and each half is scored at the epoch the other half chooses.
    A candidate after the first whose training is projected to end past ``deadline`` stops
    and is not eligible (``over_budget``).
    """
    sel = signal.sel
    assert sel is not None, "holdout and target signals carry selection rows"
    halves = np.zeros(sel[1].size, dtype=np.int64)
    if fold_count(sel[1], 2) == 2 and sel[1].size >= 4:
        halves[stratified_folds(sel[1], 2, config.seed)[1]] = 1
    fits: list[Fitted | None] = []
    compared: list[tuple[float, float]] = []
    for j, (rec, cfg) in enumerate(cands):
        if cfg.method == "lr":
            # trained on x_train only (never on the rows it is scored on)
            fit = shared.fit_for(cfg, signal.x_train, signal.y_train, n_classes, device)
            f = lr_fitted(fit, cfg, n_classes, device, sel)
            score = f.score
        else:
            c = shared.c_for(cfg)
            try:
                f = fit_single(
                    cfg,
                    signal,
                    n_classes,
                    callback=callback,
                    candidate=rec["index"],
                    lr_c=c,
                    val_groups=halves,
                    early_stop=False,  # the cross-fitted score reads the whole epoch curve
                    deadline=None if j == 0 else deadline,
                )
            except OverBudget as exc:
                rec["over_budget"] = _over_budget_note(exc, config.auto_time_budget_s)
                rec["val_accuracy"] = None
                fits.append(None)
                compared.append((float("nan"), float("nan")))
                continue
            score = _crossfit_holdout(f.history, halves, f.score)
            rec["val_accuracy_best_epoch"] = f.score
        rec.update(val_accuracy=score, val_macro_f1=f.macro_f1, best_epoch=f.best_epoch)
        fits.append(f)
        compared.append((score, f.macro_f1))
    pick = select_candidate(compared, sel[1].size, config.auto_rule)
    picked = fits[pick]
    assert picked is not None, "the first candidate has no deadline, so a finite score"
    cfg = cands[pick][1]
    if cfg.method == "lr" and signal.kind == "holdout":
        # lr was scored on rows it did not see; the head kept is refitted at the same C on
        # every row (train + validation), as lr alone and LogisticRegressionCV do.
        xa, ya = signal.all_rows()
        c = shared.c_for(cfg)
        assert c is not None, "an lr candidate has a C"
        kept = lr_fitted(solve_lr_at(cfg, xa, ya, n_classes, c, device), cfg, n_classes, device)
        kept.score, kept.macro_f1 = picked.score, picked.macro_f1
        kept.details["lr"]["refit_rows"] = int(ya.size)
        return pick, kept
    return pick, picked


def _fold_share(deadline: float | None, fold: int, folds: int) -> float | None:
    """When CV fold ``fold`` (0-based) of a candidate must end: its equal share of the time
    left to the deadline with this and its later folds to run (so a candidate whose folds
    cannot all end in time stops in its first fold, not after spending most of the budget)."""
    if deadline is None:
        return None
    now = time.perf_counter()
    return now + max(0.0, deadline - now) / (folds - fold)


def _over_budget_note(exc: OverBudget, budget: float, fold: tuple[int, int] | None = None) -> str:
    where = "" if fold is None else f" in CV fold {fold[0] + 1} of {fold[1]}"
    if exc.steps == 0:  # the deadline had passed before its first step
        return (
            f"not started{where}: auto_time_budget_s={budget:g} s from auto's start was spent "
            "before its turn; not eligible for the pick (raise auto_time_budget_s, or train "
            "it as a head of its own)"
        )
    if fold is None:
        then = "its training would take {p:.0f} s and end"
    else:
        then = "that fold would take {p:.0f} s, and its folds would end"
    return (
        f"stopped after {exc.steps} of {exc.total_steps} optimiser steps{where}: at that rate "
        f"{then.format(p=exc.projected_s)} past auto_time_budget_s={budget:g} s from auto's "
        "start; not eligible for the pick (raise auto_time_budget_s, or train it as a head of "
        "its own)"
    )


def loo_epoch_scores(rows: Sequence[Sequence[float]]) -> tuple[list[float], int]:
    """Per-fold scores with the epoch chosen on the *other* folds, and the epoch chosen on all.

    Parameters
    ----------
    rows : sequence of F per-fold curves of equal length E (held-out accuracy per epoch).

    Returns
    -------
    scores : F floats; fold i scored at ``argmax`` of the mean curve over folds j != i.
    epoch : index of the first maximum of the mean curve over all folds (the refit's epoch).

    The maximum over epochs of a mean curve is an optimistic estimate of the chosen epoch's
    accuracy (it picks the epoch whose folds happened to score high); a head with a long
    curve gains more from that than lr, whose curve is one point. Choosing each fold's epoch
    on the other folds removes that bias without training anything more (cross-fitting).
    """
    a = np.asarray(rows, dtype=np.float64)  # (F, E)
    total = a.sum(axis=0)  # (E,)
    epoch = int(np.argmax(total))
    if a.shape[0] < 2 or a.shape[1] == 1:
        return [float(v) for v in a[:, epoch]], epoch
    others = (total[None, :] - a) / (a.shape[0] - 1)  # (F, E): mean curve of the other folds
    picks = np.argmax(others, axis=1)  # (F,)
    return [float(a[i, e]) for i, e in enumerate(picks)], epoch


def _best_mean(rows: Sequence[Sequence[float]]) -> float:
    """Highest point of the mean curve over folds (the best epoch, chosen on those rows)."""
    return float(np.max(np.mean(np.asarray(rows, dtype=np.float64), axis=0)))


def race_out(curves: Sequence[Sequence[Sequence[float]]], done: int, folds: int) -> list[int]:
    """Indices (> 0) of the candidates to stop after ``done`` of ``folds`` CV folds.

    Parameters
    ----------
    curves : per candidate (the first is the reference, the simplest head), its per-fold
        held-out accuracy curves so far: ``done`` lists of E_i values each.

    A candidate stops when the best point of its mean curve (its best epoch, chosen on the
    very rows it is scored on, so optimistic) is not above the reference's best point. The
    one-standard-error rule picks a later candidate only when its cross-fitted score beats
    the best by more than a standard error; one not even ahead on the first folds would
    have to gain that margin, and its lag, on the rest. A head grown from lr ties the lr
    reference exactly when no epoch beat its start, and stops then too.
    """
    if done >= folds or len(curves) < 2:
        return []
    ref = _best_mean(curves[0])
    return [i for i in range(1, len(curves)) if _best_mean(curves[i]) <= ref + 1e-12]


def _crossfit_holdout(
    history: list[dict[str, Any]], halves: npt.NDArray[np.int64], fallback: float
) -> float:
    """Row-weighted mean over the two halves of each half's accuracy at the epoch chosen on
    the other half (``fallback`` when the history has no per-half accuracies)."""
    rows = [h["val_group_accuracy"] for h in history if h.get("val_group_accuracy") is not None]
    if not rows or len(rows[0]) != 2:
        return fallback
    per_half, _ = loo_epoch_scores(np.asarray(rows, dtype=np.float64).T.tolist())
    sizes = np.bincount(halves, minlength=2).astype(np.float64)
    return float(np.dot(per_half, sizes) / sizes.sum())


def _select_by_cv(
    config: HeadConfig,
    cands: list[tuple[dict[str, Any], HeadConfig]],
    signal: Signal,
    n_classes: int,
    shared: _SharedLr,
    callback: ProgressCallback | None,
    started: float,
    deadline: float | None = None,
) -> tuple[int, Fitted]:
    """Repeated k-fold CV on every row (time-bounded), then the pick refitted on all rows.

    A repeat after the first runs only to confirm a pick other than the simplest candidate
    (a departure from the safe default must survive a second fold assignment), within
    ``auto_time_budget_s``. Candidates that start from the same lr solution share each
    fold's lr solve. The first repeat runs fold by fold; with ``auto_race`` (and the one-se
    rule, whose margin it relies on) a candidate that is not ahead of the first one after a
    fold stops there (:func:`race_out`). In the first repeat a candidate after the first
    stops too (``over_budget``) when a fold is projected to run past its share of the time
    left to ``deadline`` (:func:`_fold_share`); the further repeats are bounded as a whole,
    by their expected time.
    """
    folds = config.auto_cv_folds
    k = fold_count(signal.y, folds)
    curves: list[list[list[float]]] = [[] for _ in cands]
    alive = list(range(len(cands)))  # candidates still in the race
    repeats = 0
    pick, means = 0, [(float("nan"), float("nan"))] * len(cands)
    rule = "best" if config.auto_rule == "cv" else config.auto_rule
    for r in range(config.auto_cv_repeats):
        spent = time.perf_counter() - started
        budget = config.auto_time_budget_s
        if r > 0 and (pick == 0 or (budget and spent * (r + 1) / r > budget)):
            break  # the simplest head stands, or the next repeat would end past the budget
        lr_cache: dict[tuple[Any, ...], LogRegFit] = {}
        for fold in range(k):
            for i in alive:
                rec, cfg = cands[i]
                try:
                    _, fold_rows = cv_curve(
                        cfg,
                        signal.x,
                        signal.y,
                        n_classes,
                        [config.seed + r],
                        folds,
                        init_c=shared.c_for(cfg),
                        callback=callback,
                        candidate=rec["index"],
                        lr_cache=lr_cache,
                        only_folds=[fold],
                        deadline=None if i == 0 or r > 0 else _fold_share(deadline, fold, k),
                    )
                except OverBudget as exc:
                    rec["over_budget"] = _over_budget_note(
                        exc, config.auto_time_budget_s, (fold, k)
                    )
                    continue
                curves[i].extend(fold_rows)
            alive = [i for i in alive if "over_budget" not in cands[i][0]]
            if config.auto_race and rule == "one-se" and r == 0 and fold < k - 1:
                for i in race_out([curves[i] for i in alive], fold + 1, k):
                    rec = cands[alive[i]][0]
                    rec["raced_out"] = (
                        f"after {fold + 1} of {k} folds its best epoch scored "
                        f"{_best_mean(curves[alive[i]]):.4f}, not above the first "
                        f"candidate's {_best_mean(curves[0]):.4f} on the same rows"
                    )
                alive = [i for i in alive if "raced_out" not in cands[i][0]]
        repeats += 1
        means = []
        for i, ((rec, cfg), rows) in enumerate(zip(cands, curves, strict=True)):
            if not rows:  # over budget in its first fold: nothing to score
                rec["val_accuracy"] = rec["cv_mean"] = None
                means.append((float("nan"), float("nan")))
                continue
            fold_scores, e = loo_epoch_scores(rows)
            curve = np.mean(np.asarray(rows, dtype=np.float64), axis=0)
            rec["cv_curve"] = curve.tolist()
            rec["cv_scores"] = fold_scores
            rec["cv_mean"] = rec["val_accuracy"] = float(np.mean(fold_scores))
            rec["val_macro_f1"] = None
            # curve index 0 is epoch 0 (the lr start) for heads grown from lr, else epoch 1
            rec["best_epoch"] = e + (0 if _grows_from_lr(cfg) else 1)
            if i in alive:
                means.append((float(rec["cv_mean"]), float("nan")))
            else:  # raced out / over budget: its curve and fold scores cover the folds it
                # ran (its mean would be over other rows than the others'), never picked
                rec["val_accuracy"] = rec["cv_mean"] = None
                means.append((float("nan"), float("nan")))
        pick = select_candidate(means, int(signal.y.size), rule)
    rec, cfg = cands[pick]
    winner = _refit(cfg, signal, n_classes, int(rec["best_epoch"]), shared, callback, rec["index"])
    winner.score = float(rec["cv_mean"])
    signal.description += f" ({repeats} x {k}-fold)"  # k < auto_cv_folds for a small class
    return pick, winner


def _refit(
    cfg: HeadConfig,
    signal: Signal,
    n_classes: int,
    stop: int,
    shared: _SharedLr,
    callback: ProgressCallback | None,
    candidate: int,
) -> Fitted:
    """The CV winner trained on every row, kept at the cross-validated epoch. The shared lr
    was solved on these same rows: it is the lr candidate's head and the start of heads grown
    from lr (so the refit is exactly the single-method fit under CV)."""
    device = resolve_device(cfg.device)
    if cfg.method == "lr":
        out = lr_fitted(
            shared.fit_for(cfg, signal.x, signal.y, n_classes, device), cfg, n_classes, device
        )
        out.score = float("nan")
        return out
    init = None
    details: dict[str, Any] = {}
    if cfg.init_from_lr:
        fit = shared.fit_for(cfg, signal.x, signal.y, n_classes, device)
        init = (fit.weight, fit.bias)
        details["lr_init"] = lr_record(fit)
    return refit_at_epoch(cfg, signal, n_classes, stop, init, details, callback, candidate)
