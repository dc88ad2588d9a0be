"""Seeded stratified splits: a held-out validation part and k folds."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["stratified_folds", "stratified_split"]


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
