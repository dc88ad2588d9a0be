"""Seeded stratified splits (a held-out part, k folds) and the selection signal: which rows
train a head and which rows choose its epoch, C or candidate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from nmtune.tuner.config import HeadConfig

__all__ = ["Signal", "choose_signal", "fold_count", "stratified_folds", "stratified_split"]

Array = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]


def stratified_split(
    y: npt.NDArray[np.int64], val_fraction: float, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Seeded stratified (train_idx, val_idx); every class keeps >= 1 training example.

    Each class with n_c >= 2 examples gives round(val_fraction * n_c) of them (at least 1,
    at most n_c - 1) to validation; ``val_fraction`` 0 gives none. Both arrays are sorted.
    """
    rng = np.random.default_rng(seed)
    train: list[npt.NDArray[np.int64]] = []
    val: list[npt.NDArray[np.int64]] = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c).astype(np.int64)
        idx = idx[rng.permutation(idx.size)]
        n_val = 0
        if idx.size >= 2 and val_fraction > 0:
            n_val = min(idx.size - 1, max(1, round(val_fraction * idx.size)))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def fold_count(y: npt.NDArray[np.int64], folds: int) -> int:
    """Folds to use: ``folds``, fewer when a class is smaller, never under 2 (a class of one
    row is then missing from the training part of one fold, as with scikit-learn's
    StratifiedKFold)."""
    return max(2, min(folds, int(np.bincount(y)[np.unique(y)].min())))


def stratified_folds(y: npt.NDArray[np.int64], k: int, seed: int) -> list[npt.NDArray[np.int64]]:
    """Seeded stratified k-fold split: ``k`` sorted, disjoint index arrays covering ``y``.

    Each class is shuffled and dealt round-robin over the folds, continuing where the previous
    class stopped, so fold sizes differ by at most one and class proportions are kept.
    """
    rng = np.random.default_rng(seed)
    folds: list[list[npt.NDArray[np.int64]]] = [[] for _ in range(k)]
    start = 0
    for c in np.unique(y):
        idx = np.flatnonzero(y == c).astype(np.int64)
        idx = idx[rng.permutation(idx.size)]
        for j in range(k):
            folds[(start + j) % k].append(idx[j::k])
        start = (start + idx.size) % k
    return [np.sort(np.concatenate(f)) for f in folds]


@dataclass
class Signal:
    """The data a fit learns from (``x``, ``y``) and what selects epochs / C / candidates."""

    kind: str  # "target" | "holdout" | "cv" | "none"
    x: Array  # every row available (train + validation, or train + carved part)
    y: Labels
    x_train: Array  # the rows trained on while selecting (holdout: x minus the held-out part)
    y_train: Labels
    x_sel: Array | None = None  # target / holdout: the selection rows
    y_sel: Labels | None = None
    description: str = ""
    carved: bool = False  # holdout carved from x (x already holds the held-out rows)

    @property
    def sel(self) -> tuple[Array, Labels] | None:
        """(x_sel, y_sel), or None when selection is not on separate rows."""
        if self.x_sel is None or self.y_sel is None:
            return None
        return self.x_sel, self.y_sel

    @property
    def target(self) -> tuple[Array, Labels] | None:
        """The selection rows when they are target-domain data (lr's C is chosen on them)."""
        return self.sel if self.kind == "target" else None

    def all_rows(self) -> tuple[Array, Labels]:
        """Every labelled in-domain row: train + validation (given or carved)."""
        if self.kind != "holdout" or self.carved or self.sel is None:
            return self.x, self.y
        return np.concatenate([self.x, self.sel[0]]), np.concatenate([self.y, self.sel[1]])

    def record(self) -> dict[str, Any]:
        """JSON-safe: signal kind, description, rows trained on / selected on."""
        return {
            "signal": self.kind,
            "description": self.description,
            "n_train": int(self.y_train.size),
            "n_selection": 0 if self.y_sel is None else int(self.y_sel.size),
        }


def _cv_signal(x: Array, y: Labels, description: str) -> Signal:
    return Signal("cv", x, y, x, y, description=description)


def choose_signal(
    config: HeadConfig,
    x: Array,
    y: Labels,
    val: tuple[Array, Labels] | None,
    target: tuple[Array, Labels] | None,
) -> Signal:
    """Decide the selection signal for these data (see the module docstring)."""
    xa, ya = (x, y) if val is None else (np.concatenate([x, val[0]]), np.concatenate([y, val[1]]))
    if target is not None:
        desc = "target-domain validation data"
        return Signal("target", xa, ya, xa, ya, target[0], target[1], desc)
    if config.method == "lr":  # lr's C comes from CV on every row (or is given)
        how = "given" if config.lr_c is not None else f"by {config.cv_folds}-fold CV"
        return _cv_signal(xa, ya, f"lr: C {how} on train + validation")
    if val is not None:
        if val[1].size >= config.min_holdout:
            return Signal("holdout", x, y, x, y, val[0], val[1], "validation split (given)")
        return _cv_signal(
            xa,
            ya,
            f"{config.cv_folds}-fold CV on train + validation "
            f"(the given validation split has < {config.min_holdout} rows)",
        )
    if config.val_fraction == 0:
        return Signal("none", x, y, x, y, description="none (val_fraction=0): last epoch")
    tr, va = stratified_split(y, config.val_fraction, config.seed)
    if va.size >= config.min_holdout:
        desc = f"carved from train ({config.val_fraction}, stratified, seeded)"
        return Signal("holdout", x, y, x[tr], y[tr], x[va], y[va], desc, carved=True)
    return _cv_signal(
        x,
        y,
        f"{config.cv_folds}-fold CV on train (a carved split would have "
        f"< {config.min_holdout} rows)",
    )
