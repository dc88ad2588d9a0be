"""Label-noise audit: which given labels are probably wrong, and how many are.

Confident learning (Northcutt, Jiang and Chuang, "Confident Learning: Estimating
Uncertainty in Dataset Labels", JAIR 70, 2021), written from the paper:

1. **Out-of-fold probabilities** ``P`` (n, K): the converged multinomial logistic regression
   of :mod:`tuner.logreg` (L2 strength C by stratified k-fold CV on the given labels), fitted
   on k-1 folds and applied to the held-out fold, so no row is scored by a model that saw its
   label. ``repeats`` seeded fold assignments are averaged.
2. **Per-class thresholds** ``t_j`` = the mean of ``P[i, j]`` over the rows labelled j (the
   model's expected self-confidence for class j; paper eq. 2).
3. **Confident joint** ``C[i, j]``: rows labelled i whose ``P[., j] >= t_j``, counted under
   the most probable such j (eq. 1), reported as it is (the paper calibrates it into its
   estimate of the joint, eq. 3; see below for why this module estimates the joint
   otherwise).
4. **Noise transition by anchors** ``T[true, given]`` (the anchor-point estimator of Liu and
   Tao, TPAMI 2016, and Patrini et al., CVPR 2017, read off the labels rather than the
   model's probabilities): for each class j, the share ``ANCHOR_SHARE`` of its rows (at
   least ``MIN_ANCHORS``, at most all of them) with the highest out-of-fold ``P[., j]`` are
   taken as rows truly of class j, and ``T[j, .]`` is the distribution of their *given*
   labels. Out of fold, no row's own label influences whether it is picked. The joint is
   ``Q[given, true] = pi_true * T[true, given]`` with ``pi`` the given-label class shares
   (exact when the flips keep the class sizes, e.g. uniform noise over balanced classes),
   and the estimated noise rate is ``1 - trace(Q) = sum_j pi_j (1 - T[j, j])``.
5. **Flagged** rows (the paper's "prune by noise rate", intersected with "confident joint
   off-diagonal"): in each given class i, the ``n * sum_{j != i} Q[i, j]`` rows with the
   highest score, among those whose most probable class is not i.

Why anchors rather than the calibrated confident joint: the confident joint counts every
row the head confidently assigns to another class, so the head's own mistakes on classes
the embedding does not separate are counted as label errors. On the dev data (MiniLM, about
3,000 audited rows per task, 10 / 20 / 40 % seeded flips, benchmarks/results/label_audit.md)
the mean absolute error of the noise rate was, anchors vs the calibrated confident joint:
2.1 vs 7.2 points on the four VADER tasks (79-92 % clean accuracy; 20 settings, without the
two-class 40 % class-conditional ones, whose labels are inverted), 10.5 vs 23.1 on WordNet
(73 %), 22.0 vs 44.6 on fortunes (49 %). The anchors read the flip rate where the head is
surest, which its mistakes reach least; where no class region is pure in the embedding the
anchors are contaminated too, so on weak tasks the estimate stays too high.

``method="cleaned"`` adds one cleaning round (the paper's section 6 retrains on the pruned
data): the rows flagged by a first pass are left out of every fold's training part (they
still get out-of-fold probabilities) and steps 2-5 run again on the new ``P``. On MiniLM
embeddings of VADER movies (1,200 rows, one exploratory run) it did not rank better than one
pass (AUROC 0.789 vs 0.814 at 10 % uniform noise, 0.809 vs 0.812 at 20 %), so
``method="auto"`` (the default) is one confident-learning pass today.

**Scores** are in [0, 1], higher = more likely mislabelled: the self-confidence score
``1 - P[i, y]`` (default; the ranking the confident-learning analysis uses), or with
``score="margin"`` ``(1 + m) / 2`` with the normalised margin
``m = max_{j != y} P[i, j] - P[i, y]``. With two classes both give the same ranking
(``m = 1 - 2 P[i, y]``). With many classes the margin ranked worse on the dev data (MiniLM,
3,000 audited rows, 10 / 20 % uniform noise: AUROC 0.941 / 0.940 vs 0.974 / 0.970 on
WordNet's 26 classes; 0.838 / 0.834 on fortunes' 43 topics, where 1 - p(given) of a plain
logistic regression reaches 0.929 / 0.923), so it is no longer the default. Scores rank rows;
they are not a calibrated probability that a label is wrong.

Pure math on arrays; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from nmtune.tuner.config import HeadConfig
from nmtune.tuner.errors import TrainingCancelled, TunerInputError
from nmtune.tuner.inputs import check_features, encode_labels
from nmtune.tuner.logreg import fit_logreg_cv, fit_logreg_folds
from nmtune.tuner.lr import solve_lr
from nmtune.tuner.splits import stratified_folds
from nmtune.tuner.training import resolve_device

__all__ = [
    "AUDIT_METHODS",
    "AUDIT_SCORES",
    "AuditProgress",
    "AuditUseChoice",
    "LabelAudit",
    "audit_labels",
    "choose_audit_use",
]

#: "auto" (the recommended method; today = "confident_learning"): one pass; "cleaned": a
#: second pass with the first pass's flagged rows left out of the training folds.
AUDIT_METHODS = ("auto", "confident_learning", "cleaned")
AUDIT_SCORES = ("margin", "self_confidence")
#: anchors per class: this share of the rows labelled j (at least MIN_ANCHORS), the rows
#: with the highest out-of-fold p(j). On the dev data 5, 10 and 20 % gave mean absolute
#: errors of the noise rate of 7.4, 7.3 and 8.2 points over 36 settings (one exploratory
#: run): smaller shares are purer but noisier.
ANCHOR_SHARE = 0.1
MIN_ANCHORS = 10

Probs = npt.NDArray[np.float64]
Labels = npt.NDArray[np.int64]

#: ``(phase, done, total)``; phase is "select_c" or "out_of_fold"; return False to cancel.
AuditProgress = Callable[[str, int, int], bool | None]


@dataclass(frozen=True)
class LabelAudit:
    """The result of :func:`audit_labels`; class indices refer to ``classes``.

    Attributes
    ----------
    classes : (K,) the distinct given labels, sorted (original type).
    given : (n,) int64, index of each row's given label.
    scores : (n,) float64 in [0, 1], higher = more likely mislabelled (a ranking).
    flagged : (n,) bool, rows the audit calls mislabelled.
    suggested : (n,) int64, the most probable class out of fold (for flagged rows: never the
        given one).
    probabilities : (n, K) float64, out-of-fold predicted probabilities (rows sum to 1).
    thresholds : (K,) float64, per-class thresholds t_j.
    confident_joint : (K, K) int64, C[given, true], the confident-learning counts.
    transition : (K, K) float64, the anchor estimate of T[true, given] = p(given | true)
        (rows sum to 1).
    joint : (K, K) float64, the estimated joint distribution Q[given, true] (sums to 1).
    noise_rate : float, estimated fraction of wrong labels, 1 - trace(joint).
    class_counts : (K,) int64, rows per given class.
    flagged_counts : (K,) int64, flagged rows per given class.
    method, score, folds, repeats, c : how it was computed (c: the logistic regression's C).
    """

    classes: np.ndarray[Any, Any]
    given: Labels
    scores: Probs
    flagged: npt.NDArray[np.bool_]
    suggested: Labels
    probabilities: Probs
    thresholds: Probs
    confident_joint: npt.NDArray[np.int64]
    transition: Probs
    joint: Probs
    noise_rate: float
    class_counts: npt.NDArray[np.int64]
    flagged_counts: npt.NDArray[np.int64]
    method: str
    score: str
    folds: int
    repeats: int
    c: float

    @property
    def n_flagged(self) -> int:
        return int(self.flagged.sum())

    @property
    def agreement(self) -> float:
        """Share of rows whose most probable class out of fold is their given label: how well
        the audit's head separates the classes. Where it is low, overlapping classes look like
        label noise and the estimates run high (module docstring)."""
        return float((self.probabilities.argmax(axis=1) == self.given).mean())

    def suggested_labels(self) -> np.ndarray[Any, Any]:
        """(n,) suggested labels in the original label type."""
        return self.classes[self.suggested]

    def weights(self) -> Probs:
        """(n,) per-row training weights ``1 - score`` in [0, 1] (down-weighting by score)."""
        return np.clip(1.0 - self.scores, 0.0, 1.0)

    def summary(self) -> dict[str, Any]:
        """JSON-safe summary: sizes, noise rate, per-class counts, joint, thresholds."""
        classes = [c.item() if hasattr(c, "item") else c for c in self.classes]
        k = len(classes)
        diag = np.diag(self.joint)
        given_mass = self.joint.sum(axis=1)  # (K,) estimated share of rows labelled i
        per_class = [
            {
                "label": classes[i],
                "n": int(self.class_counts[i]),
                "n_flagged": int(self.flagged_counts[i]),
                "threshold": float(self.thresholds[i]),
                "estimated_noise_rate": (
                    float(1.0 - diag[i] / given_mass[i]) if given_mass[i] > 0 else 0.0
                ),
            }
            for i in range(k)
        ]
        return {
            "n_examples": int(self.given.size),
            "n_flagged": self.n_flagged,
            "estimated_noise_rate": float(self.noise_rate),
            "flagged_rate": float(self.n_flagged / max(1, self.given.size)),
            "agreement": self.agreement,
            "classes": classes,
            "per_class": per_class,
            "joint": [[float(v) for v in row] for row in self.joint],
            "confident_joint": [[int(v) for v in row] for row in self.confident_joint],
            "transition": [[float(v) for v in row] for row in self.transition],
            "noise_estimate": "anchors",
            "method": self.method,
            "score": self.score,
            "folds": self.folds,
            "repeats": self.repeats,
            "c": float(self.c),
        }


def audit_labels(
    X: Any,
    y: Any,
    *,
    method: str = "auto",
    folds: int = 5,
    random_state: int = 0,
    score: str = "self_confidence",
    repeats: int = 2,
    c: float | None = None,
    cs: int = 5,
    max_iter: int = 100,
    device: str = "cpu",
    callback: AuditProgress | None = None,
) -> LabelAudit:
    """Audit the labels ``y`` of the feature rows ``X`` (e.g. cached backbone embeddings).

    Parameters
    ----------
    X : (n, D) array-like of finite numbers.
    y : (n,) labels (str or int), at least 2 distinct, each with at least ``folds`` rows.
    method : "auto" (default; today one confident-learning pass), "confident_learning" or
        "cleaned" (a second pass without the first pass's flagged rows in training).
    folds : k of the stratified k-fold split that gives out-of-fold probabilities (>= 2).
    random_state : seed of the fold assignments (repeat r uses random_state + r).
    score : "self_confidence" (1 - p(given), default) or "margin" ((1 + normalised margin)
        / 2; the same ranking with two classes).
    repeats : fold assignments averaged (>= 1).
    c : the logistic regression's inverse L2 strength; None = chosen by ``folds``-fold CV
        over ``cs`` values on a log grid [1e-2, 1e2] (best held-out accuracy on the given
        labels; ties -> the smaller C).
    max_iter : L-BFGS iterations per solve.
    device : torch device of the solver ("cpu", "cuda", "auto").
    callback : ``callback(phase, done, total)`` after each solve; returning False cancels
        (raises :class:`~tuner.errors.TrainingCancelled`).

    Returns
    -------
    LabelAudit

    Raises
    ------
    TunerInputError
        Invalid X or y, a bad option, fewer than 2 classes, or a class with fewer than
        ``folds`` rows.
    """
    _check_options(method, score, folds, repeats, c, cs, max_iter)
    x, classes, yi = _labelled(X, y)  # (n, D) float32, (K,), (n,)
    n_classes = len(classes)
    counts = np.bincount(yi, minlength=n_classes).astype(np.int64)  # (K,)
    small = [classes[i].item() for i in np.flatnonzero(counts < folds)]
    if small:
        raise TunerInputError(
            f"every class needs at least folds={folds} examples for {folds}-fold "
            f"out-of-fold probabilities; too few in: {small!r} "
            f"(smallest has {int(counts.min())}); lower folds or add examples"
        )
    dev = resolve_device(device)
    passes = 2 if method == "cleaned" else 1
    total = (0 if c is not None else 1) + passes * repeats
    done = [0]

    def tick(phase: str) -> None:
        done[0] += 1
        if callback is not None and callback(phase, done[0], total) is False:
            raise TrainingCancelled(f"audit cancelled by the callback ({phase})")

    if c is None:
        grid = [float(v) for v in np.logspace(-2, 2, cs)] if cs > 1 else [1.0]
        c = fit_logreg_cv(
            x, yi, n_classes, grid, folds, random_state, max_iter=max_iter, device=dev
        ).c
        tick("select_c")
    keep = np.ones(yi.size)  # (n,) training weight of each row
    probs = _out_of_fold(
        x, yi, n_classes, c, folds, repeats, random_state, keep, max_iter, dev, tick
    )
    thresholds, cj, trans, joint, flagged, scores = _confident_learning(probs, yi, n_classes, score)
    if method == "cleaned" and flagged.any() and not flagged.all():
        keep = (~flagged).astype(np.float64)
        probs = _out_of_fold(
            x, yi, n_classes, c, folds, repeats, random_state, keep, max_iter, dev, tick
        )
        thresholds, cj, trans, joint, flagged, scores = _confident_learning(
            probs, yi, n_classes, score
        )
    elif method == "cleaned":
        for _ in range(repeats):
            tick("out_of_fold")
    return LabelAudit(
        classes=classes,
        given=yi,
        scores=scores,
        flagged=flagged,
        suggested=probs.argmax(axis=1).astype(np.int64),
        probabilities=probs,
        thresholds=thresholds,
        confident_joint=cj,
        transition=trans,
        joint=joint,
        noise_rate=float(1.0 - np.trace(joint)),
        class_counts=counts,
        flagged_counts=np.bincount(yi[flagged], minlength=n_classes).astype(np.int64),
        method=method,
        score=score,
        folds=folds,
        repeats=repeats,
        c=float(c),
    )


@dataclass(frozen=True)
class AuditUseChoice:
    """The result of :func:`choose_audit_use`: train on every row, or without the flagged ones.

    Attributes
    ----------
    use : "exclude_flagged" or "all_rows" (the choice).
    accuracy_all_rows, accuracy_exclude_flagged : held-out accuracy on the given labels of a
        logistic regression trained on every row of the other folds / on those rows the
        fold's own audit did not flag.
    gain : accuracy_exclude_flagged - accuracy_all_rows (paired over the same held-out rows).
    gain_se : standard error of ``gain`` (per-row paired differences).
    folds : outer folds; c : the logistic regression's C (the inner audits', and both arms'
        unless ``c_by_cv``).
    c_all_rows, c_exclude_flagged : with ``c_by_cv``, the C each arm chose by CV on its own
        training rows, per outer fold (empty otherwise).
    """

    use: str
    accuracy_all_rows: float
    accuracy_exclude_flagged: float
    gain: float
    gain_se: float
    folds: int
    c: float
    c_all_rows: list[float] = field(default_factory=list)
    c_exclude_flagged: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_audit_use(
    X: Any,
    y: Any,
    *,
    c: float,
    folds: int = 5,
    random_state: int = 0,
    method: str = "auto",
    score: str = "self_confidence",
    repeats: int = 2,
    max_iter: int = 100,
    device: str = "cpu",
    callback: AuditProgress | None = None,
    c_by_cv: bool = False,
) -> AuditUseChoice:
    """Whether leaving an audit's flagged rows out of training helps, by nested CV.

    For each of ``folds`` stratified outer folds, the rows of the other folds are audited on
    their own (:func:`audit_labels` with the same options, so the held-out labels never
    influence which training rows are flagged: auditing all rows once would leak them and
    favour exclusion), and two logistic regressions at ``c`` are trained on them: one on
    every row, one without that audit's flagged rows. Both are scored on the held-out fold's
    **given** labels, every row kept. With uniform flips (each wrong label any other class,
    at one rate), accuracy on noisy labels is an increasing affine function of accuracy on the
    true labels, so the head that predicts the noisy held-out labels better is the one
    expected to predict the true ones better. With class-conditional flips that holds only
    approximately: the noisy score also rewards leaning towards the classes the flips go to,
    which the all-rows fit does, so the check then errs towards keeping every row. The choice
    is ``exclude_flagged`` only when its paired gain is positive; ties keep every row.

    Parameters
    ----------
    X : (n, D) features; y : (n,) given labels, every class with at least ``folds`` ** 2 / (folds
        - 1) rows or so (each outer training part is audited with ``folds`` folds).
    c : the logistic regression's C (e.g. the audit's own, ``LabelAudit.c``).
    folds, random_state, method, score, repeats, max_iter, device : as for
        :func:`audit_labels` (outer folds use ``random_state``, inner audits the same seed).
    callback : ``callback("choose_use", done, folds)`` after each outer fold; False cancels.
    c_by_cv : each arm's logistic regression chooses its own C by stratified ``folds``-fold
        CV on its own training rows (10 values over [1e-4, 1e4], the fold assignment
        averaged over 3 seeds below 2,000 rows), as an lr head trained on those rows does;
        ``c`` then serves the inner audits only. Without it both arms use ``c``, the audit's
        C, chosen on every (noisy) row: often a strong regularisation that suits the rows
        the audit would flag and cripples the fit without them, so the check then errs
        towards keeping every row.

    Returns
    -------
    AuditUseChoice

    Raises
    ------
    TunerInputError
        Invalid X or y, or a class too small for an audit of an outer training part.
    """
    _check_options(method, score, folds, repeats, c, 1, max_iter)
    x, classes, yi = _labelled(X, y)  # (n, D) float32, (K,), (n,)
    n_classes = len(classes)
    dev = resolve_device(device)
    held = stratified_folds(yi, folds, random_state)  # outer folds
    xt = torch.as_tensor(x, dtype=torch.float64, device=dev)  # (n, D)
    if not c_by_cv:
        w_all, b_all = fit_logreg_folds(x, yi, n_classes, c, held, max_iter=max_iter, device=dev)
    hit_all = np.zeros(yi.size)  # (n,) held-out hit of the all-rows fit
    hit_excl = np.zeros(yi.size)  # (n,) held-out hit of the fit without flagged rows
    cs_all: list[float] = []
    cs_excl: list[float] = []

    # the lr head's own C choice (grid, repeats rule), at this check's folds, seed and max_iter
    head_lr = HeadConfig(method="lr", seed=random_state, cv_folds=folds, lr_max_iter=max_iter)

    def own_c_fit(rows: npt.NDArray[np.int64]) -> tuple[torch.Tensor, torch.Tensor, float]:
        """lr on ``rows`` with its C by CV on them, as an lr head (float64 weights on dev)."""
        fit = solve_lr(head_lr, x[rows], yi[rows], n_classes, None, dev)
        return fit.weight.double(), fit.bias.double(), fit.c

    for j, idx in enumerate(held):
        part = np.setdiff1d(np.arange(yi.size), idx)  # the outer training part
        inner = audit_labels(
            x[part],
            yi[part],
            method=method,
            folds=folds,
            random_state=random_state,
            score=score,
            repeats=repeats,
            c=c,
            max_iter=max_iter,
            device=device,
        )
        it = torch.as_tensor(idx, device=dev)
        target = torch.as_tensor(yi[idx], device=dev)
        if c_by_cv:
            wa, ba, ca = own_c_fit(part)
            cs_all.append(ca)
        else:
            wa, ba = w_all[j], b_all[j]
        pred_all = (xt[it] @ wa.T + ba).argmax(dim=1)  # (n_j,)
        hit_all[idx] = (pred_all == target).cpu().numpy()
        if inner.flagged.any() and not inner.flagged.all():
            if c_by_cv:
                w_ex, b_ex, ce = own_c_fit(part[~inner.flagged])
                cs_excl.append(ce)
            else:
                keep = np.ones(yi.size)  # (n,) training weight; held-out rows masked anyway
                keep[part[inner.flagged]] = 0.0
                w_f, b_f = fit_logreg_folds(
                    x, yi, n_classes, c, [idx], sample_weight=keep, max_iter=max_iter, device=dev
                )
                w_ex, b_ex = w_f[0], b_f[0]
            pred_ex = (xt[it] @ w_ex.T + b_ex).argmax(dim=1)
            hit_excl[idx] = (pred_ex == target).cpu().numpy()
        else:  # nothing (or everything) flagged: the same fit
            hit_excl[idx] = hit_all[idx]
            if c_by_cv:
                cs_excl.append(cs_all[-1])
        if callback is not None and callback("choose_use", j + 1, folds) is False:
            raise TrainingCancelled("cancelled by the callback (choose_use)")
    diff = hit_excl - hit_all  # (n,) paired per-row differences
    gain = float(diff.mean())
    se = float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else 0.0
    return AuditUseChoice(
        use="exclude_flagged" if gain > 0 else "all_rows",
        accuracy_all_rows=float(hit_all.mean()),
        accuracy_exclude_flagged=float(hit_excl.mean()),
        gain=gain,
        gain_se=se,
        folds=folds,
        c=float(c),
        c_all_rows=cs_all,
        c_exclude_flagged=cs_excl,
    )


def _labelled(X: Any, y: Any) -> tuple[npt.NDArray[np.float32], np.ndarray[Any, Any], Labels]:
    """Checked features (n, D), the sorted distinct labels (K >= 2) and each row's index."""
    x = check_features(X)
    classes, yi, _ = encode_labels(y)
    if yi.size != x.shape[0]:
        raise TunerInputError(f"X has {x.shape[0]} rows but y has {yi.size} labels")
    if len(classes) < 2:
        raise TunerInputError(
            f"an audit needs at least 2 classes, got {len(classes)} ({classes.tolist()!r})"
        )
    return x, classes, yi


def _check_options(
    method: str, score: str, folds: int, repeats: int, c: float | None, cs: int, max_iter: int
) -> None:
    if method not in AUDIT_METHODS:
        raise TunerInputError(f"method must be one of {AUDIT_METHODS}, got {method!r}")
    if score not in AUDIT_SCORES:
        raise TunerInputError(f"score must be one of {AUDIT_SCORES}, got {score!r}")
    for name, value, low in (("folds", folds, 2), ("repeats", repeats, 1), ("cs", cs, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise TunerInputError(f"{name} must be an integer >= {low}, got {value!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise TunerInputError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    if c is not None and not (isinstance(c, int | float) and np.isfinite(c) and c > 0):
        raise TunerInputError(f"c must be a finite number > 0, got {c!r}")


def _out_of_fold(
    x: npt.NDArray[np.float32],
    y: Labels,
    n_classes: int,
    c: float,
    folds: int,
    repeats: int,
    seed: int,
    keep: Probs,
    max_iter: int,
    device: torch.device,
    tick: Callable[[str], None],
) -> Probs:
    """(n, K) out-of-fold probabilities averaged over ``repeats`` fold assignments; rows with
    ``keep`` 0 are left out of every training part (they are still scored)."""
    xt = torch.as_tensor(x, dtype=torch.float64, device=device)  # (n, D)
    probs = np.zeros((y.size, n_classes))  # (n, K)
    for r in range(repeats):
        held = stratified_folds(y, folds, seed + r)  # k index arrays
        w, b = fit_logreg_folds(
            x, y, n_classes, c, held, sample_weight=keep, max_iter=max_iter, device=device
        )  # (k, K, D), (k, K)
        for j, idx in enumerate(held):
            it = torch.as_tensor(idx, device=device)
            logits = xt[it] @ w[j].T + b[j]  # (n_j, K)
            probs[idx] += torch.softmax(logits, dim=1).cpu().numpy()
        tick("out_of_fold")
    return probs / repeats


def _confident_learning(
    probs: Probs, y: Labels, n_classes: int, score: str
) -> tuple[Probs, npt.NDArray[np.int64], Probs, Probs, npt.NDArray[np.bool_], Probs]:
    """(thresholds (K,), confident joint (K, K), transition T[true, given] (K, K), joint Q
    (K, K), flagged (n,), scores (n,))."""
    n = y.size
    rows = np.arange(n)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)  # (K,)
    # t_j: mean probability of class j over the rows labelled j
    thresholds = np.array(
        [probs[y == j, j].mean() if counts[j] else 1.0 for j in range(n_classes)]
    )  # (K,)
    above = probs >= thresholds[None, :] - 1e-12  # (n, K)
    confident = above.any(axis=1)  # (n,)
    guess = np.where(above, probs, -1.0).argmax(axis=1)  # (n,) most probable above threshold
    cj = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cj, (y[confident], guess[confident]), 1)

    trans = _anchor_transition(probs, y, counts)  # (K, K) T[true, given]
    prior = counts / n  # (K,) given-label shares, standing in for the true ones
    joint = (prior[:, None] * trans).T  # (K, K) Q[given, true] = pi_true T[true, given]

    p_given = probs[rows, y]  # (n,)
    others = probs.copy()
    others[rows, y] = -np.inf
    margin = others.max(axis=1) - p_given  # (n,) in [-1, 1]
    scores = 1.0 - p_given if score == "self_confidence" else (1.0 + margin) / 2.0  # (n,)

    # prune by noise rate (per given class, the top-scored rows), only rows whose most
    # probable class is another one (confident-joint off-diagonal condition)
    flagged = np.zeros(n, dtype=bool)
    candidate = margin > 0  # (n,) argmax != given
    for i in range(n_classes):
        n_off = round(float(n * (joint[i].sum() - joint[i, i])))
        if n_off <= 0:
            continue
        idx = np.flatnonzero((y == i) & candidate)
        top = idx[np.argsort(-scores[idx], kind="stable")[:n_off]]
        flagged[top] = True
    return thresholds, cj, trans, joint, flagged, scores


def _anchor_transition(probs: Probs, y: Labels, counts: Probs) -> Probs:
    """(K, K) T[true, given]: row j is the distribution of the given labels over class j's
    anchors, the ``ANCHOR_SHARE`` of its ``counts[j]`` rows (at least ``MIN_ANCHORS``, at
    most ``counts[j]``) with the highest out-of-fold ``probs[:, j]``; ties are broken by row
    order."""
    k = probs.shape[1]
    trans = np.zeros((k, k))
    for j in range(k):
        m = int(min(counts[j], max(MIN_ANCHORS, round(ANCHOR_SHARE * float(counts[j])))))
        m = max(m, 1)
        top = np.argsort(-probs[:, j], kind="stable")[:m]  # (m,) class j's anchors
        trans[j] = np.bincount(y[top], minlength=k) / m
    return trans
