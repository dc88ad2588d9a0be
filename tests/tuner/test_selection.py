"""Selection signals (issue 10): few-shot fits, target-domain validation, the separable task,
and heads grown from lr starting exactly at lr."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nmtune.tuner import NMTuneClassifier, resolve_config
from nmtune.tuner.logreg import fit_logreg

#: fewer auto CV repeats than the default (2) to keep these tests fast
AUTO_FAST = {"auto_cv_repeats": 1}


def few_shot(per_class: int, seed: int = 0, c: int = 4, d: int = 32) -> tuple[Any, ...]:
    """``per_class`` training rows per class of ``c`` noisy Gaussian classes; 400 test rows."""
    centers = np.random.default_rng(100).normal(size=(c, d))
    rng = np.random.default_rng(seed)
    ytr = np.repeat(np.arange(c), per_class)
    yte = rng.integers(0, c, 400)

    def draw(y: Any) -> Any:
        return (centers[y] + rng.normal(size=(y.size, d)) * 2.0).astype(np.float32)

    return draw(ytr), ytr, draw(yte), yte


@pytest.mark.parametrize("per_class", [2, 8])
def test_few_shot_fits_learn(per_class: int) -> None:
    """2 and 8 examples per class (4 classes, chance 0.25): lr, nmtune (robust) and auto learn;
    with 2 per class the k-fold CV falls back to 2 folds instead of failing."""
    xtr, ytr, xte, yte = few_shot(per_class)
    floor = {2: 0.45, 8: 0.65}[per_class]
    acc = {}
    for method in ("lr", "nmtune", "auto"):
        kw = AUTO_FAST if method == "auto" else {}
        clf = NMTuneClassifier(method=method, device="cpu", **kw).fit(xtr, ytr)
        acc[method] = clf.score(xte, yte)
        assert acc[method] > floor, (method, acc)
        assert clf.selection_["signal"] == "cv" and clf.n_train_ == 4 * per_class
        if method == "nmtune":
            assert clf.config_.preset == "robust" and clf.config_.init_from_lr
            assert clf.selection_["cv"]["folds"] == min(5, per_class)
            assert clf.selection_["lr_init"]["c_folds"] == min(5, per_class)
        if method == "lr":
            assert clf.selection_["lr"]["c_folds"] == min(5, per_class)
        if method == "auto":
            cfg = resolve_config("auto")
            k = min(cfg.auto_cv_folds, per_class)
            scored = [c for c in clf.candidates_ if "skipped" not in c]
            assert all(len(c["cv_scores"]) == k for c in scored)
            if per_class < cfg.auto_min_per_class:  # too few rows to rank heads: lr only
                assert [c["method"] for c in scored] == ["lr"] and clf.method_ == "lr"
                assert len(clf.candidates_) == 3
    # few-shot must not trail lr (the robust head starts at lr and keeps epoch 0 if better)
    assert acc["nmtune"] >= acc["lr"] - 0.05, acc
    assert acc["auto"] >= acc["lr"] - 0.05, acc


def shifted_domains() -> tuple[Any, ...]:
    """In-domain: 2 classes (70 / 30) separated along the 8 features, so CV prefers a weakly
    regularised lr. Target domain: 95% class 0 and features that carry no signal, so the best
    a classifier can do there is the training prior, i.e. the most regularised lr (C -> 0
    leaves only the unpenalised intercept, which predicts the majority class)."""
    rng = np.random.default_rng(0)
    d = 8

    def source(n: int) -> Any:
        y = (rng.random(n) < 0.3).astype(np.int64)
        return (rng.normal(size=(n, d)) + (2 * y[:, None] - 1) * 0.6).astype(np.float32), y

    x, y = source(300)
    xv, yv = source(100)
    y_t = (rng.random(300) < 0.05).astype(np.int64)
    x_t = (rng.normal(size=(300, d)) * 1.5).astype(np.float32)
    return x, y, xv, yv, x_t[:150], y_t[:150], x_t[150:], y_t[150:]


def test_target_validation_selects_and_is_recorded() -> None:
    x, y, xv, yv, xt, yt, xt_test, yt_test = shifted_domains()
    kw = {"device": "cpu", "lr_cs": 5}
    in_domain = NMTuneClassifier(method="lr", **kw).fit(x, y, xv, yv)
    on_target = NMTuneClassifier(method="lr", **kw).fit(
        x, y, xv, yv, X_target_val=xt, y_target_val=yt
    )
    rec = on_target.selection_
    assert rec["signal"] == "target" and rec["n_selection"] == 150
    assert (on_target.n_train_, on_target.n_val_) == (400, 150)  # trains on train + val
    assert on_target.validation_ == "target-domain validation data"
    assert on_target.config_dict_["selection"]["signal"] == "target"
    lr = rec["lr"]
    assert lr["c_selection"] == "eval" and len(lr["c_scores"]) == 5
    # C is the (smallest) best C on the target data, each C fitted on all 400 rows
    xa, ya = np.concatenate([x, xv]), np.concatenate([y, yv])
    accs = []
    for c in lr["cs"]:
        f = fit_logreg(xa, ya, 2, c)
        accs.append(float(((xt @ f.weight.numpy().T + f.bias.numpy()).argmax(1) == yt).mean()))
    np.testing.assert_allclose(lr["c_scores"], accs, atol=1.5 / yt.size)
    assert lr["c"] == lr["cs"][int(np.argmax(lr["c_scores"]))]
    assert on_target.best_score_ == pytest.approx(max(lr["c_scores"]))
    # The target rewards another C than in-domain CV, and the chosen C follows the target.
    assert in_domain.selection_["signal"] == "cv"
    assert in_domain.selection_["lr"]["c"] > lr["c"] == min(lr["cs"])
    assert on_target.score(xt_test, yt_test) > in_domain.score(xt_test, yt_test) + 0.1
    assert in_domain.score(xv, yv) > on_target.score(xv, yv)  # in-domain, the other way round


def test_target_validation_drives_auto_and_epochs() -> None:
    x, y, xv, yv, xt, yt, _, _ = shifted_domains()
    grid = [{"method": "lr", "lr_c": 100.0}, {"method": "lr", "lr_c": 1e-4}]
    kw = {"device": "cpu", "auto_candidates": grid, "auto_rule": "best", **AUTO_FAST}
    in_domain = NMTuneClassifier(method="auto", **kw).fit(x, y, xv, yv)
    on_target = NMTuneClassifier(method="auto", **kw).fit(
        x, y, xv, yv, X_target_val=xt, y_target_val=yt
    )
    assert [c["selected"] for c in in_domain.candidates_] == [True, False]
    assert [c["selected"] for c in on_target.candidates_] == [False, True]
    assert on_target.selection_["signal"] == "target"
    for c, lr_c in zip(on_target.candidates_, (100.0, 1e-4), strict=True):
        clf = NMTuneClassifier(method="lr", lr_c=lr_c, device="cpu").fit(
            np.concatenate([x, xv]), np.concatenate([y, yv])
        )
        assert c["val_accuracy"] == pytest.approx(clf.score(xt, yt), abs=1.5 / yt.size)
    # a torch head keeps its best epoch on the target data (epoch 0 = lr at the target C)
    head = NMTuneClassifier(method="nmtune", device="cpu", epochs=4, min_steps=20, lr_cs=5)
    head.fit(x, y, xv, yv, X_target_val=xt, y_target_val=yt)
    assert head.selection_["signal"] == "target" and head.selection_["lr_init"]["c"] == 1e-4
    assert [h["epoch"] for h in head.history_] == [0, 1, 2, 3, 4]
    keys = [(h["val_accuracy"], h["val_macro_f1"]) for h in head.history_]
    assert head.best_epoch_ == keys.index(max(keys))
    assert head.best_score_ == pytest.approx(head.score(xt, yt))


@pytest.mark.parametrize("init_from_lr_method", ["mlp", "nmtune"])
def test_epoch_zero_is_the_lr_solution(init_from_lr_method: str) -> None:
    """A head grown from lr that keeps epoch 0 predicts exactly as method lr at the same C."""
    xtr, ytr, xte, _ = few_shot(16, seed=1)
    kw = {"device": "cpu", "lr_c": 0.5}
    lr = NMTuneClassifier(method="lr", **kw).fit(xtr, ytr)
    head = NMTuneClassifier(method=init_from_lr_method, epochs=3, min_steps=10, **kw)
    # target data labelled by lr itself: epoch 0 scores 1.0 and, ties going to the earliest
    # epoch, is kept whatever the later epochs score
    head.fit(xtr, ytr, X_target_val=xte, y_target_val=lr.predict(xte))
    assert head.history_[0]["epoch"] == 0 and head.history_[0]["val_accuracy"] == 1.0
    assert head.best_epoch_ == 0  # ties are broken towards the earliest epoch
    np.testing.assert_allclose(head.predict_proba(xte), lr.predict_proba(xte), atol=1e-5)
    np.testing.assert_array_equal(head.predict(xte), lr.predict(xte))
    np.testing.assert_array_equal(head.transform(xte), xte)  # residual branch at scale 0


def test_zero_init_branch_starts_at_lr_and_the_branch_learns() -> None:
    """``zero_init_branch``: the branch's last layer starts at zero, so epoch 0 is still
    exactly lr (z = f) with the scale at 1; and, unlike a branch behind a zero scale, it
    learns: after training z != f and the regularisers change the head (mlp != nmtune)."""
    xtr, ytr, xte, _ = few_shot(16, seed=1)
    kw: dict[str, Any] = {"device": "cpu", "lr_c": 0.5, "epochs": 3, "min_steps": 30}
    lr = NMTuneClassifier(method="lr", device="cpu", lr_c=0.5).fit(xtr, ytr)
    zb = {"residual_init": 1.0, "zero_init_branch": True}
    head = NMTuneClassifier(method="nmtune", **kw, **zb)
    head.fit(xtr, ytr, X_target_val=xte, y_target_val=lr.predict(xte))
    assert head.best_epoch_ == 0 and head.config_.zero_init_branch
    np.testing.assert_allclose(head.predict_proba(xte), lr.predict_proba(xte), atol=1e-5)
    np.testing.assert_array_equal(head.transform(xte), xte)  # branch output 0 at epoch 0

    def last_epoch(method: str, **extra: Any) -> Any:
        return NMTuneClassifier(method=method, val_fraction=0.0, **kw, **extra).fit(xtr, ytr)

    moved = last_epoch("nmtune", **zb)
    gap = float(np.abs(moved.transform(xte) - xte).mean())
    behind_zero_scale = last_epoch("nmtune", residual_init=0.0)
    assert gap > 10 * float(np.abs(behind_zero_scale.transform(xte) - xte).mean()), gap
    plain = last_epoch("mlp", **zb)
    assert not np.allclose(plain.transform(xte), moved.transform(xte), atol=1e-3)


@pytest.mark.slow
def test_separable_task_every_method() -> None:
    """The task from issue 10: 400 rows, 32-d Gaussian, y = x0 + x1 > 0; every method with
    its default settings reaches 0.95 test accuracy."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2400, 32)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    xtr, ytr, xte, yte = x[:400], y[:400], x[400:], y[400:]
    for method in ("lr", "lp", "mlp", "nmtune", "auto"):
        clf = NMTuneClassifier(method=method, device="cpu").fit(xtr, ytr)
        assert clf.score(xte, yte) >= 0.95, (method, clf.score(xte, yte))


def test_loo_epoch_scores_remove_the_max_over_epochs_optimism() -> None:
    """Each fold is scored at the epoch its *other* folds choose: for curves that are pure
    noise around 0.5 the plain max of the mean curve is biased up, the cross-fitted score
    is not; a one-point curve (lr) keeps its plain mean; the refit epoch is the argmax."""
    from nmtune.tuner.auto import loo_epoch_scores

    rng = np.random.default_rng(0)
    plain, crossed = [], []
    for _ in range(200):
        rows = 0.5 + rng.normal(scale=0.05, size=(3, 30))  # 3 folds, 30 epochs, no signal
        plain.append(rows.mean(axis=0).max())
        crossed.append(np.mean(loo_epoch_scores(rows.tolist())[0]))
    assert np.mean(plain) > 0.53  # optimistic by about 1.5 fold-noise SDs / sqrt(3)
    assert abs(np.mean(crossed) - 0.5) < 0.005  # unbiased
    scores, epoch = loo_epoch_scores([[0.7], [0.8], [0.9]])
    assert scores == [0.7, 0.8, 0.9] and epoch == 0
    rows = [[0.1, 0.9, 0.2], [0.3, 0.2, 0.8], [0.2, 0.6, 0.5]]
    scores, epoch = loo_epoch_scores(rows)
    # fold 0: others' mean = [.25, .4, .65] -> epoch 2 -> 0.2; fold 1: [.15, .75, .35] -> 1
    # -> 0.2; fold 2: [.2, .55, .5] -> 1 -> 0.6; all folds: [.2, .567, .5] -> epoch 1
    assert scores == pytest.approx([0.2, 0.2, 0.6]) and epoch == 1


def test_auto_shares_per_fold_lr_solves_and_confirms_only_a_departure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """lr and robust nmtune grow from the same lr solution: under CV each fold's lr is solved
    once for both. A second CV repeat runs only when the pick is not the simplest head."""
    import nmtune.tuner.selection as selection

    calls: list[int] = []
    real = selection.solve_lr_at

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(selection, "solve_lr_at", counting)
    xtr, ytr, _, _ = few_shot(40)  # 160 rows, 4 classes: CV selection
    grid = [{"method": "lr"}, {"method": "nmtune", "preset": "robust", "hidden_ratio": 1.0}]
    kw = {"auto_candidates": grid, "epochs": 3, "min_steps": 6, "auto_cv_repeats": 2}
    clf = NMTuneClassifier(method="auto", device="cpu", random_state=0, **kw).fit(xtr, ytr)
    repeats = len(clf.candidates_[0]["cv_scores"]) // 3
    assert len(calls) == 3 * repeats  # one lr solve per fold, not one per candidate and fold
    picked = next(c["index"] for c in clf.candidates_ if c["selected"])
    if repeats == 1:  # an lr pick after the first repeat ends the CV
        assert picked == 0
    # a grid whose simplest head cannot win (an untrained lp, not grown from lr) forces the
    # confirmation repeat
    grid2 = [
        {"method": "lp", "init_from_lr": False, "lp_epochs": 1, "lp_lr": 1e-6, "min_steps": 1},
        grid[1],
    ]
    forced = NMTuneClassifier(
        method="auto", device="cpu", random_state=0, **{**kw, "auto_candidates": grid2}
    ).fit(xtr, ytr)
    assert [c["selected"] for c in forced.candidates_] == [False, True]
    assert len(forced.candidates_[1]["cv_scores"]) == 6  # 2 repeats x 3 folds
    assert forced.validation_.endswith("(2 x 3-fold)")


def test_holdout_scores_of_torch_candidates_are_cross_fitted() -> None:
    """On a holdout, a torch candidate is compared by each half of the selection rows scored
    at the epoch the other half chooses (row-weighted), not by its best epoch's score."""
    from nmtune.tuner.auto import _crossfit_holdout

    history = [
        {"val_group_accuracy": [0.5, 0.9]},  # epoch 0
        {"val_group_accuracy": [0.9, 0.5]},  # epoch 1
        {"val_group_accuracy": [0.7, 0.7]},  # epoch 2
    ]
    halves = np.array([0, 0, 0, 1])  # 3 rows in half 0, 1 in half 1
    # half 0 scored at half 1's best epoch (0) -> 0.5; half 1 at half 0's best (1) -> 0.5
    assert _crossfit_holdout(history, halves, 0.9) == pytest.approx(0.5)
    assert _crossfit_holdout([{"val_accuracy": 0.8}], halves, 0.8) == 0.8  # no halves: as is

    xtr, ytr, xva, yva = few_shot(60)  # 240 training rows; 400 validation rows: holdout
    grid = [{"method": "lr"}, {"method": "nmtune", "preset": "robust", "hidden_ratio": 1.0}]
    kw = {"auto_candidates": grid, "epochs": 4, "min_steps": 8, "auto_signal": "holdout"}
    clf = NMTuneClassifier(method="auto", device="cpu", random_state=0, **kw)
    clf.fit(xtr, ytr, xva, yva)
    assert clf.selection_["signal"] == "holdout"
    lr_rec, nm_rec = clf.candidates_
    assert "val_accuracy_best_epoch" not in lr_rec
    assert 0.0 <= nm_rec["val_accuracy"] <= 1.0 and 0.0 <= nm_rec["val_accuracy_best_epoch"] <= 1.0


def test_candidate_floor_skips_paper_code_below_its_size() -> None:
    """The default grid's paper-code (4x wide, from scratch) is fitted only from
    PAPER_CODE_MIN_PER_CLASS rows in the median class; below it the record says why, and a
    candidate's own floor in a user grid skips it wherever it stands in the grid."""
    from nmtune.tuner.config import PAPER_CODE_MIN_PER_CLASS

    xtr, ytr, _, _ = few_shot(20)
    fast = {**AUTO_FAST, "epochs": 2, "min_steps": 4}
    clf = NMTuneClassifier(method="auto", device="cpu", **fast).fit(xtr, ytr)
    by_preset = {(c["method"], c["preset"]): c for c in clf.candidates_}
    paper = by_preset[("nmtune", "paper-code")]
    assert paper["min_per_class"] == PAPER_CODE_MIN_PER_CLASS
    assert "min_per_class=256" in paper["skipped"] and "cv_mean" not in paper
    assert not paper["selected"]
    robust = by_preset[("nmtune", "robust")]
    # fitted: every fold, or the folds it ran before it was raced out
    assert "skipped" not in robust
    assert len(robust["cv_scores"]) == (1 if robust.get("raced_out") else 3)
    assert sum(c["selected"] for c in clf.candidates_) == 1

    grid = [
        {"method": "lr"},
        {"method": "mlp", "min_per_class": 21},  # 20 per class: skipped
        {"method": "lp", "min_per_class": 20},  # fitted (>=)
    ]
    clf = NMTuneClassifier(method="auto", device="cpu", auto_candidates=grid, **fast)
    clf.fit(xtr, ytr)
    recs = clf.candidates_
    assert [("skipped" in r) for r in recs] == [False, True, False]
    assert [r.get("min_per_class") for r in recs] == [None, 21, 20]
    picked = [r for r in recs if r["selected"]]
    assert len(picked) == 1 and picked[0]["method"] == clf.method_


@pytest.mark.parametrize("bad", [-1, 1.5, True, "8", 10**7])
def test_candidate_floor_is_validated(bad: Any) -> None:
    from nmtune.tuner.errors import ConfigError

    grid = [{"method": "lr"}, {"method": "mlp", "min_per_class": bad}]
    with pytest.raises(ConfigError) as err:
        resolve_config("auto", overrides={"auto_candidates": grid})
    assert err.value.field == "auto_candidates[1]"


def test_target_c_needs_a_paired_margin_over_the_in_domain_c() -> None:
    """On target rows that most Cs classify alike, C stays the in-domain CV choice (the
    unguarded first maximum would be a smaller, over-regularised C); a C replaces it only
    when the target rows show it better by more than one paired standard error."""
    from nmtune.tuner.logreg import c_grid, fit_logreg_cv, fit_logreg_on_eval

    xs, ys, xv, yv, xt, yt, _, _ = shifted_domains()
    x, y = np.concatenate([xs, xv]), np.concatenate([ys, yv])
    ye = np.repeat([0, 1], 10)  # 20 easy target rows: every C but the smallest gets all
    noise = np.random.default_rng(1).normal(size=(20, x.shape[1])) * 0.3
    xe = ((2 * ye - 1)[:, None] * 3.0 + noise).astype(np.float32)
    cs = c_grid(9)
    cv = fit_logreg_cv(x, y, 2, cs, 5, 0)
    plain = fit_logreg_on_eval(x, y, 2, cs, xe, ye)
    guarded = fit_logreg_on_eval(x, y, 2, cs, xe, ye, default_c=cv.c)
    assert plain.scores == guarded.scores and max(plain.scores) == 1.0
    assert plain.scores[cs.index(cv.c)] == 1.0
    assert plain.c < cv.c  # ties: the first maximum is a smaller C than in-domain CV's
    assert guarded.c == guarded.default_c == cv.c

    # the shifted target of the tests above clearly rewards the smallest C: it moves
    head = NMTuneClassifier(method="lr", device="cpu", lr_cs=5).fit(
        xs, ys, xv, yv, X_target_val=xt, y_target_val=yt
    )
    lr = head.selection_["lr"]
    assert lr["c_in_domain"] > lr["c"] == min(lr["cs"])


def test_race_out_stops_candidates_not_ahead_of_the_first() -> None:
    from nmtune.tuner.auto import race_out

    lr = [[0.80]]  # the reference: one fold, one point
    ahead = [[0.78, 0.82, 0.79]]  # its best epoch beats lr on the rows so far
    tied = [[0.80, 0.79, 0.80]]  # grown from lr, no epoch beat its start
    behind = [[0.70, 0.75]]
    assert race_out([lr, ahead, tied, behind], 1, 3) == [2, 3]
    assert race_out([lr, ahead], 3, 3) == []  # after the last fold nothing is raced out
    assert race_out([lr], 1, 3) == []
    # folds are averaged before the best epoch is taken
    assert race_out([[[0.8], [0.8]], [[0.9, 0.7], [0.7, 0.9]]], 2, 3) == [1]


def test_auto_races_out_a_candidate_behind_lr_and_reports_it() -> None:
    """Under CV a candidate whose best epoch is not above lr after a fold stops there: it is
    listed with its partial scores and the reason, and never picked. auto_race=False runs
    every fold of every candidate; a candidate ahead of the first one keeps running."""
    xtr, ytr, _, _ = few_shot(40)  # 160 rows, 4 classes: CV selection
    weak = {"method": "lp", "init_from_lr": False, "lp_epochs": 1, "lp_lr": 1e-6, "min_steps": 1}
    behind = {"method": "nmtune", "preset": "paper-code", "epochs": 1, "lr": 1e-7,
              "min_steps": 1}  # fmt: skip
    kw = {"auto_cv_repeats": 1, "epochs": 3, "min_steps": 6}
    grid = [{"method": "lr"}, behind]
    raced = NMTuneClassifier(
        method="auto", device="cpu", random_state=0, auto_candidates=grid, **kw
    ).fit(xtr, ytr)
    lr_rec, out = raced.candidates_
    assert len(lr_rec["cv_scores"]) == 3 and lr_rec["selected"]
    assert len(out["cv_scores"]) == 1 and not out["selected"] and out["val_accuracy"] is None
    assert out["cv_mean"] is None  # a mean over other rows than lr's would mislead
    assert out["raced_out"].startswith("after 1 of 3 folds")
    full = NMTuneClassifier(
        method="auto", device="cpu", random_state=0, auto_candidates=grid, auto_race=False, **kw
    ).fit(xtr, ytr)
    assert [len(c["cv_scores"]) for c in full.candidates_] == [3, 3]
    assert all("raced_out" not in c for c in full.candidates_)
    # the record carries the selection settings the fit ran with, not the defaults
    assert full.config_dict_["auto_race"] is False and raced.config_dict_["auto_race"] is True
    assert full.config_dict_["auto_cv_repeats"] == 1 and full.config_dict_["auto_candidates"]
    loaded = NMTuneClassifier.from_bytes(full.to_bytes())
    assert loaded.config_dict_["auto_race"] is False
    # the first candidate is the reference: lr ahead of an untrained lp runs every fold
    ahead = NMTuneClassifier(
        method="auto", device="cpu", random_state=0, auto_candidates=[weak, {"method": "lr"}],
        **kw,
    ).fit(xtr, ytr)  # fmt: skip
    assert [len(c["cv_scores"]) for c in ahead.candidates_] == [3, 3]
    assert ahead.candidates_[1]["selected"]
