"""tuner.audit: confident learning finds planted label flips."""

from __future__ import annotations

import numpy as np
import pytest

from nmtune.tuner import TrainingCancelled, TunerInputError
from nmtune.tuner.audit import LabelAudit, audit_labels, choose_audit_use


def _auroc(truth: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney AUROC (ties count half)."""
    pos, neg = scores[truth], scores[~truth]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (pos.size * neg.size))


def _noisy(
    n: int = 300, k: int = 3, rate: float = 0.2, sep: float = 2.5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    centers = rng.normal(size=(k, 8)) * sep
    x = (centers[y] + rng.normal(size=(n, 8))).astype(np.float32)
    flip = rng.random(n) < rate
    noisy = y.copy()
    noisy[flip] = (y[flip] + rng.integers(1, k, int(flip.sum()))) % k
    return x, y, noisy, flip


def test_planted_flips_are_found() -> None:
    x, y, noisy, flip = _noisy()
    audit = audit_labels(x, noisy, folds=5, random_state=0)
    assert isinstance(audit, LabelAudit)
    assert audit.scores.shape == (300,) and audit.probabilities.shape == (300, 3)
    assert np.allclose(audit.probabilities.sum(axis=1), 1.0)
    assert _auroc(flip, audit.scores) > 0.9
    precision = flip[audit.flagged].mean()
    recall = audit.flagged[flip].mean()
    assert precision > 0.8 and recall > 0.7
    assert abs(audit.noise_rate - flip.mean()) < 0.06
    # flagged rows suggest another label, mostly the true one
    assert (audit.suggested[audit.flagged] != noisy[audit.flagged]).all()
    assert (audit.suggested[audit.flagged & flip] == y[audit.flagged & flip]).mean() > 0.9
    assert audit.joint.shape == (3, 3) and abs(audit.joint.sum() - 1.0) < 1e-9
    assert audit.flagged_counts.sum() == audit.n_flagged
    assert audit.class_counts.tolist() == np.bincount(noisy, minlength=3).tolist()


def test_clean_labels_are_rarely_flagged() -> None:
    x, y, _, _ = _noisy(rate=0.0, sep=4.0)
    audit = audit_labels(x, y, c=1.0)
    assert audit.n_flagged <= 3
    assert audit.noise_rate < 0.02


@pytest.mark.parametrize("method", ["auto", "confident_learning", "cleaned"])
@pytest.mark.parametrize("score", ["margin", "self_confidence"])
def test_methods_and_scores(method: str, score: str) -> None:
    x, _, noisy, flip = _noisy(rate=0.3, sep=2.0, seed=1)
    audit = audit_labels(x, noisy, method=method, score=score, c=1.0, repeats=1)
    assert audit.method == method and audit.score == score
    assert audit.scores.min() >= 0.0 and audit.scores.max() <= 1.0
    assert _auroc(flip, audit.scores) > 0.85


def test_two_string_classes_and_summary() -> None:
    x, _, noisy, flip = _noisy(k=2, seed=2)
    labels = np.array(["neg", "pos"])[noisy]
    audit = audit_labels(x, labels.tolist(), c=1.0)
    assert audit.classes.tolist() == ["neg", "pos"]
    assert set(audit.suggested_labels().tolist()) <= {"neg", "pos"}
    s = audit.summary()
    assert s["n_examples"] == 300 and s["classes"] == ["neg", "pos"]
    assert [c["label"] for c in s["per_class"]] == ["neg", "pos"]
    assert sum(c["n_flagged"] for c in s["per_class"]) == s["n_flagged"]
    w = audit.weights()
    assert w.shape == (300,) and w[flip].mean() < w[~flip].mean()


def test_seeded_and_deterministic() -> None:
    x, _, noisy, _ = _noisy(seed=3)
    a = audit_labels(x, noisy, c=0.5, random_state=7)
    b = audit_labels(x, noisy, c=0.5, random_state=7)
    assert np.array_equal(a.scores, b.scores) and np.array_equal(a.flagged, b.flagged)


def test_tiny_class_at_the_fold_count_is_audited() -> None:
    x, _, noisy, _ = _noisy(k=2, seed=4)
    x = np.concatenate([x, np.full((3, 8), 9.0, dtype=np.float32)])
    noisy = np.concatenate([noisy, [2, 2, 2]])
    audit = audit_labels(x, noisy, folds=3, c=1.0)
    assert audit.class_counts.tolist()[2] == 3
    assert not audit.flagged[-3:].any()


def test_progress_and_cancel() -> None:
    x, _, noisy, _ = _noisy(seed=5)
    seen: list[tuple[str, int, int]] = []
    audit_labels(x, noisy, repeats=2, callback=lambda p, d, t: seen.append((p, d, t)) is None)
    assert seen[0][0] == "select_c" and seen[-1][1] == seen[-1][2] == 3
    seen.clear()
    audit_labels(
        x, noisy, c=1.0, method="cleaned", callback=lambda p, d, t: seen.append((p, d, t)) is None
    )
    assert [d for _, d, _ in seen] == [1, 2, 3, 4] and seen[-1][2] == 4
    with pytest.raises(TrainingCancelled):
        audit_labels(x, noisy, c=1.0, callback=lambda p, d, t: False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "nope"}, "method must be one of"),
        ({"score": "entropy"}, "score must be one of"),
        ({"folds": 1}, "folds must be an integer >= 2"),
        ({"repeats": 0}, "repeats must be an integer >= 1"),
        ({"c": -1.0}, "c must be a finite number > 0"),
        ({"c": float("nan")}, "c must be a finite number > 0"),
    ],
)
def test_bad_options(kwargs: dict[str, object], message: str) -> None:
    x, _, noisy, _ = _noisy(n=40)
    with pytest.raises(TunerInputError, match=message):
        audit_labels(x, noisy, **kwargs)  # type: ignore[arg-type]


def test_bad_inputs() -> None:
    x, _, noisy, _ = _noisy(n=40)
    with pytest.raises(TunerInputError, match="at least 2 classes"):
        audit_labels(x, np.zeros(40, dtype=int))
    with pytest.raises(TunerInputError, match="too few in: \\[9\\]"):
        audit_labels(x, np.concatenate([noisy[:-2], [9, 9]]))
    with pytest.raises(TunerInputError, match="rows but y has"):
        audit_labels(x, noisy[:-1])
    with pytest.raises(TunerInputError, match="NaN"):
        audit_labels(np.full((40, 8), np.nan), noisy)
    with pytest.raises(TunerInputError, match="2-D"):
        audit_labels(x[:, 0], noisy)


def test_default_score_is_self_confidence_and_binary_scores_rank_alike() -> None:
    x, _, noisy, _ = _noisy(k=4, seed=3)
    audit = audit_labels(x, noisy, c=1.0, repeats=1)
    rows = np.arange(noisy.size)
    assert audit.score == "self_confidence"
    np.testing.assert_allclose(audit.scores, 1.0 - audit.probabilities[rows, noisy])
    # two classes: margin = 1 - 2 p(given), so both scores order the rows the same way
    x2, _, noisy2, _ = _noisy(k=2, seed=4)
    a = audit_labels(x2, noisy2, c=1.0, repeats=1, score="margin")
    b = audit_labels(x2, noisy2, c=1.0, repeats=1, score="self_confidence")
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-12)
    assert (a.flagged == b.flagged).all()


def _one_sided(seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two overlapping classes; 35 % of class 0 relabelled 1 (noise that moves the boundary)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 400)
    x = (rng.normal(size=(2, 8))[y] * 1.2 + rng.normal(size=(400, 8))).astype(np.float32)
    noisy = y.copy()
    noisy[(y == 0) & (rng.random(400) < 0.35)] = 1
    return x, y, noisy


def test_choose_audit_use_excludes_when_it_helps() -> None:
    x, _, noisy = _one_sided()
    got = choose_audit_use(x, noisy, c=1.0, random_state=0)
    assert got.use == "exclude_flagged"
    assert got.gain > got.gain_se > 0
    assert got.gain == pytest.approx(got.accuracy_exclude_flagged - got.accuracy_all_rows)
    assert got.to_dict()["use"] == "exclude_flagged" and got.folds == 5 and got.c == 1.0


def test_choose_audit_use_keeps_every_row_without_a_gain() -> None:
    x, y, _ = _one_sided()
    got = choose_audit_use(x, y, c=1.0)  # clean labels: nothing worth leaving out
    assert got.use == "all_rows" and got.gain <= 0


def test_choose_audit_use_c_by_cv_fits_each_arm_as_an_lr_head_would() -> None:
    """With ``c_by_cv`` each arm's C is the one an lr head trained on that arm's rows would
    choose (same grid, folds, repeats and seed), not the audit's."""
    from nmtune.tuner import NMTuneClassifier
    from nmtune.tuner.splits import stratified_folds

    x, _, noisy = _one_sided()
    got = choose_audit_use(x, noisy, c=1.0, random_state=0, c_by_cv=True)
    assert got.use == "exclude_flagged" and got.gain > 0
    assert len(got.c_all_rows) == len(got.c_exclude_flagged) == 5 and got.c == 1.0
    held = stratified_folds(noisy, 5, 0)
    part = np.setdiff1d(np.arange(noisy.size), held[0])
    head = NMTuneClassifier(method="lr", random_state=0).fit(x[part], noisy[part])
    assert got.c_all_rows[0] == pytest.approx(head.selection_["lr"]["c"])
    assert not choose_audit_use(x, noisy, c=1.0, random_state=0).c_all_rows  # fixed C


def test_choose_audit_use_progress_cancel_and_bad_input() -> None:
    x, _, noisy = _one_sided()
    seen: list[tuple[str, int, int]] = []
    choose_audit_use(x, noisy, c=1.0, folds=3, callback=lambda *a: seen.append(a) is None)
    assert seen == [("choose_use", 1, 3), ("choose_use", 2, 3), ("choose_use", 3, 3)]
    with pytest.raises(TrainingCancelled):
        choose_audit_use(x, noisy, c=1.0, callback=lambda *a: False)
    # a class too small for an audit of every outer fold's training part
    few = np.array([0] * 390 + [1] * 6)
    with pytest.raises(TunerInputError, match="at least folds=5"):
        choose_audit_use(x[:396], few, c=1.0)
    with pytest.raises(TunerInputError, match="c must be"):
        choose_audit_use(x, noisy, c=0.0)


def _calibrated_confident_joint_rate(audit: LabelAudit) -> float:
    """Confident learning's own estimate (the calibrated confident joint, eq. 3)."""
    cj = audit.confident_joint.astype(np.float64)
    counts = audit.class_counts.astype(np.float64)
    rows = cj.sum(axis=1)
    cal = np.where(rows[:, None] > 0, cj / np.maximum(rows, 1.0)[:, None] * counts[:, None], 0)
    return float(1.0 - np.trace(cal) / cal.sum())


def test_anchors_recover_class_conditional_flips() -> None:
    # 3 separated classes; class 0 -> 1 at 30 %, 1 -> 2 at 10 %, class 2 clean: T[true, given]
    rng = np.random.default_rng(0)
    n, k = 3000, 3
    y = rng.integers(0, k, n)
    x = (rng.normal(size=(k, 8))[y] * 4.0 + rng.normal(size=(n, 8))).astype(np.float32)
    flip = rng.random(n) < np.array([0.3, 0.1, 0.0])[y]
    noisy = np.where(flip, (y + 1) % k, y)
    audit = audit_labels(x, noisy)
    truth = np.array([[0.7, 0.3, 0.0], [0.0, 0.9, 0.1], [0.0, 0.0, 1.0]])
    assert np.allclose(audit.transition.sum(axis=1), 1.0)
    # 100 anchors per class: a standard error of <= 0.046 per entry
    assert np.abs(audit.transition - truth).max() < 0.12
    assert abs(audit.noise_rate - flip.mean()) < 0.05
    prior = audit.class_counts / n
    assert np.allclose(audit.joint, (prior[:, None] * audit.transition).T)
    s = audit.summary()
    assert s["noise_estimate"] == "anchors" and len(s["transition"]) == k
    assert abs(s["estimated_noise_rate"] - audit.noise_rate) < 1e-12


def test_a_weak_head_on_clean_labels_is_not_read_as_noise() -> None:
    # 4 overlapping classes, every label right: the head errs on ~38 % of rows out of fold,
    # which confident learning's joint counts as label noise; the anchors mostly do not
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 800)
    x = (rng.normal(size=(4, 8))[y] * 0.5 + rng.normal(size=(800, 8))).astype(np.float32)
    audit = audit_labels(x, y)
    disagreement = float((audit.probabilities.argmax(axis=1) != y).mean())
    assert disagreement > 0.3 and audit.summary()["agreement"] == pytest.approx(1 - disagreement)
    assert _calibrated_confident_joint_rate(audit) > 0.25
    assert audit.noise_rate < 0.15
    assert audit.n_flagged <= round(audit.noise_rate * 800) + 4  # flags follow the estimate
