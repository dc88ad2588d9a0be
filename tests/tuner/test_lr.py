"""``lr``: agreement with scikit-learn's LogisticRegression / LogisticRegressionCV (issue 10)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nmtune.tuner import NMTuneClassifier
from nmtune.tuner.logreg import c_grid, fit_logreg, fit_logreg_cv, fit_logreg_folds
from nmtune.tuner.splits import stratified_folds

sklearn = pytest.importorskip("sklearn")
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def problem(kind: str, seed: int) -> tuple[Any, Any, Any, Any]:
    """(x_train, y_train, x_test, y_test): a noisy linear binary task or 4 Gaussian classes."""
    rng = np.random.default_rng(seed)
    if kind == "binary":
        d, n, n_train = 20, 2400, 400
        w = rng.normal(size=d)
        x = rng.normal(size=(n, d))
        y = (x @ w + rng.normal(size=n) * 2.0 > 0).astype(np.int64)
    else:
        d, c, n, n_train = 16, 4, 2600, 600
        centers = rng.normal(size=(c, d)) * 0.8
        y = rng.integers(0, c, n)
        x = centers[y] + rng.normal(size=(n, d))
    x = x.astype(np.float32)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


CASES = [("binary", 0), ("binary", 1), ("multiclass", 0)]


@pytest.mark.parametrize(("kind", "seed"), CASES)
@pytest.mark.parametrize("c", [0.01, 1.0])
def test_fit_logreg_matches_sklearn_objective(kind: str, seed: int, c: float) -> None:
    """At a fixed C the solution is scikit-learn's (same objective, solved to tolerance)."""
    xtr, ytr, _, _ = problem(kind, seed)
    n_classes = int(ytr.max()) + 1
    ref = LogisticRegression(C=c, max_iter=10_000, tol=1e-10).fit(xtr, ytr)
    fit = fit_logreg(xtr, ytr, n_classes, c, max_iter=500)
    w = fit.weight.double().numpy()  # (C, D)
    b = fit.bias.double().numpy()
    if n_classes == 2:  # sklearn's binary model is one vector w = W1 - W0
        w, b = (w[1] - w[0])[None], (b[1:] - b[:1])
    else:  # the intercepts are defined up to a common shift
        b = b - b.mean()
    ref_b = ref.intercept_ - (0 if n_classes == 2 else ref.intercept_.mean())
    scale = np.abs(ref.coef_).max()
    assert np.abs(w - ref.coef_).max() <= 0.02 * scale
    assert np.abs(b - ref_b).max() <= 0.02 * max(scale, np.abs(ref_b).max())


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_folds_solved_together_match_sklearn_with_sample_weights(kind: str) -> None:
    """The joint solve of several folds (each a masked, weighted objective, gradients written
    out by hand) gives each fold scikit-learn's weighted solution on its training rows."""
    xtr, ytr, _, _ = problem(kind, 2)
    n_classes = int(ytr.max()) + 1
    weights = np.random.default_rng(3).uniform(0.2, 2.0, ytr.size)
    held = stratified_folds(ytr, 3, 0)
    w, b = fit_logreg_folds(xtr, ytr, n_classes, 0.5, held, sample_weight=weights, max_iter=500)
    for j, idx in enumerate(held):
        train = np.setdiff1d(np.arange(ytr.size), idx)
        ref = LogisticRegression(C=0.5, max_iter=10_000, tol=1e-10)
        ref.fit(xtr[train], ytr[train], sample_weight=weights[train])
        wj = w[j].numpy()  # (C, D)
        coef = (wj[1] - wj[0])[None] if n_classes == 2 else wj
        assert np.abs(coef - ref.coef_).max() <= 0.02 * np.abs(ref.coef_).max()
        logits = xtr[idx] @ wj.T + b[j].numpy()
        assert (logits.argmax(axis=1) == ref.predict(xtr[idx])).mean() >= 0.99


@pytest.mark.parametrize(("kind", "seed"), CASES)
def test_lr_matches_logistic_regression_cv(kind: str, seed: int) -> None:
    xtr, ytr, xte, yte = problem(kind, seed)
    ours = NMTuneClassifier(method="lr", random_state=0, device="cpu").fit(xtr, ytr)
    acc = ours.score(xte, yte)
    rec = ours.selection_["lr"]
    assert rec["c_selection"] == "cv" and rec["c_folds"] == 5 and rec["cs"] == c_grid(10)

    # 1. The same folds (one assignment of ours, handed to sklearn): the same CV curve, the
    #    same C, the same held-out accuracy (within 0.3 point).
    one = NMTuneClassifier(method="lr", lr_cv_repeats=1, random_state=0, device="cpu")
    one.fit(xtr, ytr)
    folds = stratified_folds(ytr, 5, seed=0)
    splits = [(np.setdiff1d(np.arange(ytr.size), f), f) for f in folds]
    same = LogisticRegressionCV(Cs=10, cv=splits, scoring="accuracy", max_iter=10_000)
    same.fit(xtr, ytr)
    curve = one.selection_["lr"]["c_scores"]
    np.testing.assert_allclose(curve, same.scores_[1].mean(axis=0), atol=0.01)
    assert one.selection_["lr"]["c"] == pytest.approx(float(same.C_[0]))
    assert abs(one.score(xte, yte) - same.score(xte, yte)) <= 0.003

    # 2. sklearn's own shuffled StratifiedKFold: other folds may pick another C on the
    #    accuracy plateau; held-out accuracy must not trail by more than 0.3 point.
    sk = LogisticRegressionCV(
        Cs=10,
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
        scoring="accuracy",
        max_iter=10_000,
    ).fit(xtr, ytr)
    assert acc >= sk.score(xte, yte) - 0.003, (acc, sk.score(xte, yte), rec["c"], sk.C_)


def test_fit_logreg_cv_small_classes_fall_back() -> None:
    """Folds shrink to the smallest class (at least 2); too few rows for 2 folds: C = 1."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4)).astype(np.float32)
    y = np.array([0, 0, 0, 1, 1, 1])
    fit = fit_logreg_cv(x, y, 2, c_grid(4), folds=5, seed=0)
    assert fit.selection == "cv" and fit.folds == 3 and len(fit.scores) == 4
    one = fit_logreg_cv(x[:4], np.array([0, 0, 0, 1]), 2, c_grid(4), folds=5, seed=0)
    assert one.selection == "cv" and one.folds == 2  # a class of one row: 2 folds anyway
    tiny = fit_logreg_cv(x[:3], np.array([0, 0, 1]), 2, c_grid(4), folds=5, seed=0)
    assert tiny.c == 1.0 and tiny.selection.startswith("default")
    given = fit_logreg_cv(x, y, 2, [0.5], folds=5, seed=0)
    assert given.c == 0.5 and given.selection == "given"
