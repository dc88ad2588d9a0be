"""Classification metrics in plain numpy (no scikit-learn at runtime)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "accuracy",
    "classification_metrics",
    "confusion_matrix",
    "index_scores",
    "macro_f1",
    "matthews_corrcoef",
    "to_native",
]


def to_native(value: Any) -> Any:
    """numpy scalar -> Python scalar (JSON-safe labels)."""
    return value.item() if isinstance(value, np.generic) else value


def confusion_matrix(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, labels: Sequence[Any] | npt.ArrayLike
) -> npt.NDArray[np.int64]:
    """Counts ``M[i, j]`` of true ``labels[i]`` predicted as ``labels[j]`` (C, C).

    Entries whose true or predicted label is not in ``labels`` are ignored.
    """
    yt = np.asarray(y_true)
    yp = np.asarray(y_pred)
    labs = list(np.asarray(labels).tolist())
    index = {lab: i for i, lab in enumerate(labs)}
    c = len(labs)
    ti = np.array([index.get(v, -1) for v in yt.tolist()], dtype=np.int64)
    pi = np.array([index.get(v, -1) for v in yp.tolist()], dtype=np.int64)
    keep = (ti >= 0) & (pi >= 0)
    flat = ti[keep] * c + pi[keep]
    return np.bincount(flat, minlength=c * c).reshape(c, c).astype(np.int64)


def _prf(cm: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.float64], ...]:
    tp = np.diag(cm).astype(np.float64)  # (C,)
    pred = cm.sum(axis=0).astype(np.float64)  # (C,)
    support = cm.sum(axis=1).astype(np.float64)  # (C,)
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1, support


def _mcc_from_cm(cm: npt.NDArray[np.int64]) -> float:
    r"""Multi-class MCC (Gorodkin 2004).

    .. math:: \mathrm{MCC} = \frac{c\,s - \sum_k p_k t_k}
              {\sqrt{(s^2 - \sum_k p_k^2)(s^2 - \sum_k t_k^2)}}

    c: correct predictions, s: samples, t_k: true count of class k, p_k: predicted count.
    Returns 0.0 when the denominator is 0.
    """
    m = cm.astype(np.float64)
    t = m.sum(axis=1)  # (C,)
    p = m.sum(axis=0)  # (C,)
    c = float(np.trace(m))
    s = float(m.sum())
    num = c * s - float(p @ t)
    den = (s * s - float(p @ p)) * (s * s - float(t @ t))
    return 0.0 if den <= 0 else float(num / np.sqrt(den))


def _labels_of(y_true: np.ndarray[Any, Any], y_pred: np.ndarray[Any, Any]) -> list[Any]:
    return [to_native(v) for v in np.unique(np.concatenate([y_true, y_pred]))]


def accuracy(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Fraction of exact matches (0.0 for empty input)."""
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    if yt.shape != yp.shape:
        raise ValueError(f"y_true {yt.shape} and y_pred {yp.shape} differ in shape")
    return float((yt == yp).mean()) if yt.size else 0.0


def macro_f1(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, labels: Sequence[Any] | None = None
) -> float:
    """Unweighted mean of per-class F1 over ``labels`` (default: union of both)."""
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    labs = _labels_of(yt, yp) if labels is None else list(labels)
    _, _, f1, _ = _prf(confusion_matrix(yt, yp, labs))
    return float(f1.mean()) if f1.size else 0.0


def matthews_corrcoef(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Multi-class Matthews correlation coefficient (Gorodkin form)."""
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    return _mcc_from_cm(confusion_matrix(yt, yp, _labels_of(yt, yp)))


def classification_metrics(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, labels: Sequence[Any] | None = None
) -> dict[str, Any]:
    """Accuracy, macro-F1, MCC, per-class precision/recall/F1/support, confusion matrix.

    Parameters
    ----------
    y_true, y_pred : array-like (n,)
        Labels (str or int).
    labels : sequence, optional
        Label order for the per-class entries and the confusion matrix; default: sorted union
        of the labels seen in ``y_true`` and ``y_pred``.

    Returns
    -------
    dict
        JSON-safe: ``accuracy``, ``macro_f1``, ``mcc``, ``per_class`` {label: {precision,
        recall, f1, support}}, ``confusion_matrix`` (rows: true, columns: predicted),
        ``labels``, ``n_samples``.
    """
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    if yt.ndim != 1 or yt.shape != yp.shape:
        raise ValueError(f"y_true {yt.shape} and y_pred {yp.shape} must be 1-D of equal length")
    labs = _labels_of(yt, yp) if labels is None else [to_native(v) for v in labels]
    cm = confusion_matrix(yt, yp, labs)
    precision, recall, f1, support = _prf(cm)
    return {
        "accuracy": accuracy(yt, yp),
        "macro_f1": float(f1.mean()) if f1.size else 0.0,
        "mcc": _mcc_from_cm(cm),
        "per_class": {
            lab: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, lab in enumerate(labs)
        },
        "confusion_matrix": cm.tolist(),
        "labels": labs,
        "n_samples": int(yt.size),
    }


def index_scores(
    y_true: npt.NDArray[np.int64], y_pred: npt.NDArray[np.int64], n_classes: int
) -> tuple[float, float]:
    """(accuracy, macro-F1) for integer class indices in [0, n_classes) (fast path)."""
    if y_true.size == 0:
        return 0.0, 0.0
    flat = y_true.astype(np.int64) * n_classes + y_pred.astype(np.int64)
    cm = np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    _, _, f1, _ = _prf(cm.astype(np.int64))
    return float(np.trace(cm) / y_true.size), float(f1.mean())
