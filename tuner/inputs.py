"""Input validation of the estimator: feature matrices and labels (str or int)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from nmtune.tuner.errors import DataConversionWarning, InputTypeError, TunerInputError
from nmtune.tuner.metrics import to_native

__all__ = ["as_label_list", "check_features", "classes_array", "encode_labels", "label_kind"]


def check_features(
    X: Any, n_features: int | None = None, name: str = "X"
) -> npt.NDArray[np.float32]:
    """Validate a feature matrix: 2-D, >= 1 row, numeric, finite, and ``n_features`` wide."""
    if X is None:
        raise TunerInputError(f"{name} must be a numeric (n, D) array, got None")
    if hasattr(X, "tocsr") or hasattr(X, "todense"):  # scipy.sparse, without importing it
        raise TunerInputError(f"{name}: sparse input is not supported; pass a dense array")
    try:
        arr = np.asarray(X)
        if np.iscomplexobj(arr):
            raise TunerInputError(f"{name}: Complex data not supported")
        x = arr.astype(np.float32)
    except TypeError as exc:
        raise InputTypeError(f"{name} must be a numeric (n, D) array: {exc}") from exc
    except ValueError as exc:
        raise TunerInputError(f"{name} must be a numeric (n, D) array: {exc}") from exc
    if x.ndim != 2:
        raise TunerInputError(
            f"{name} must be 2-D (n, D), got shape {x.shape}. Reshape your data, e.g. "
            "x.reshape(1, -1) for one row"
        )
    if x.shape[0] < 1 or x.shape[1] < 1:
        what = "sample(s)" if x.shape[0] < 1 else "feature(s)"
        raise TunerInputError(
            f"{name} has 0 {what} (shape={x.shape}) while a minimum of 1 is required."
        )
    if n_features is not None and x.shape[1] != n_features:
        raise TunerInputError(
            f"{name} has {x.shape[1]} features, but NMTuneClassifier is expecting "
            f"{n_features} features as input (the head was trained on {n_features})"
        )
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).any(axis=1).sum())
        raise TunerInputError(f"{name} contains NaN or inf ({bad} rows)")
    return np.ascontiguousarray(x)


def label_kind(values: Sequence[Any]) -> str:
    kinds = set()
    for v in values:
        if isinstance(v, bool | np.bool_):
            raise TunerInputError("labels must be str or int, got a bool")
        if isinstance(v, str | np.str_):
            kinds.add("str")
        elif isinstance(v, int | np.integer):
            kinds.add("int")
        elif isinstance(v, float) and math.isfinite(v):
            raise TunerInputError(
                f"Unknown label type: continuous (float {v!r}); labels must be str or int"
            )
        else:
            raise TunerInputError(f"labels must be str or int, got {type(v).__name__} {v!r}")
    if len(kinds) > 1:
        raise TunerInputError("labels mix str and int")
    return kinds.pop() if kinds else "int"


def encode_labels(y: Any) -> tuple[np.ndarray[Any, Any], npt.NDArray[np.int64], str]:
    """(classes (sorted, original type), indices (n,), 'str' | 'int')."""
    values = as_label_list(y)
    kind = label_kind(values)
    classes = classes_array(sorted(set(values)), kind)
    index = {c: i for i, c in enumerate(classes.tolist())}
    return classes, np.array([index[v] for v in values], dtype=np.int64), kind


def as_label_list(y: Any) -> list[Any]:
    """Labels as native Python values; integral floats (1.0, as numeric y often arrives)
    become ints; a column vector (n, 1) is ravelled with a DataConversionWarning."""
    if y is None:
        raise TunerInputError("NMTuneClassifier requires y to be passed, but the target y is None")
    arr = np.asarray(y, dtype=object)
    if arr.ndim == 2 and arr.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; ravelled",
            DataConversionWarning,
            stacklevel=3,
        )
        arr = arr.ravel()
    if arr.ndim != 1:
        raise TunerInputError(f"y must be 1-D, got shape {arr.shape}")
    return [_integral(to_native(v)) for v in arr.tolist()]


def _integral(v: Any) -> Any:
    return int(v) if isinstance(v, float) and v.is_integer() else v


def classes_array(values: Sequence[Any], kind: str) -> np.ndarray[Any, Any]:
    if kind == "str":
        return np.array([str(v) for v in values], dtype=str)
    return np.array([int(v) for v in values], dtype=np.int64)
