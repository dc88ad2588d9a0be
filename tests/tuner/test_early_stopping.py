"""Early stopping on validation (issue 15): the epochs trained are those of the full run (the
schedule is the full one), training stops ``patience`` epochs after the kept one, and the
cross-validation path always runs every epoch."""

from __future__ import annotations

import numpy as np

from nmtune.tuner import NMTuneClassifier, resolve_config
from nmtune.tuner.training import train_head


def _noisy(n: int, seed: int, d: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, d)).astype(np.float32) + 0.4 * (2 * y[:, None] - 1)
    return x, y


def test_early_stop_is_a_prefix_of_the_full_run() -> None:
    x, y = _noisy(300, 0)
    xv, yv = _noisy(200, 1)
    cfg = resolve_config("lp", "paper-code", {"lp_epochs": 30, "min_steps": 0, "device": "cpu"})
    full = train_head(cfg, x, y, 2, x_val=xv, y_val=yv)
    short = train_head(cfg, x, y, 2, x_val=xv, y_val=yv, patience=2)
    stopped = short.details["stopped_at"]
    assert len(full.history) == 30 and "stopped_at" not in full.details
    assert stopped == short.best_epoch + 2 < 30 and len(short.history) == stopped
    # same epochs as the full run, so the same scores up to the stop
    assert [h["val_accuracy"] for h in short.history] == [
        h["val_accuracy"] for h in full.history[:stopped]
    ]
    best = max(range(stopped), key=lambda i: (full.history[i]["val_accuracy"], -i))
    assert short.best_epoch == best + 1
    assert short.best_val_accuracy <= full.best_val_accuracy


def test_patience_zero_and_no_validation_run_every_epoch() -> None:
    x, y = _noisy(300, 0)
    xv, yv = _noisy(200, 1)
    cfg = resolve_config("lp", "paper-code", {"lp_epochs": 12, "min_steps": 0, "device": "cpu"})
    assert len(train_head(cfg, x, y, 2, x_val=xv, y_val=yv, patience=0).history) == 12
    assert len(train_head(cfg, x, y, 2, patience=1).history) == 12  # nothing to stop on


def test_estimator_uses_config_patience_on_holdout_not_in_cv() -> None:
    x, y = _noisy(400, 0)
    xv, yv = _noisy(200, 1)
    fast = {"lp_epochs": 30, "min_steps": 0, "device": "cpu"}
    held = NMTuneClassifier("lp", "paper-code", patience=1, **fast).fit(x, y, X_val=xv, y_val=yv)
    assert held.selection_["stopped_at"] == held.best_epoch_ + 1 < 30
    assert len(held.history_) == held.selection_["stopped_at"]
    # cross-validation (too few validation rows for a holdout): every fold runs every epoch
    cv = NMTuneClassifier("lp", "paper-code", patience=1, cv_folds=2, **fast).fit(x[:60], y[:60])
    assert cv.selection_["signal"] == "cv" and len(cv.selection_["cv"]["curve"]) == 30
