"""scikit-learn compatibility (issue 10 item 6): the estimator checks that apply, and the tools
a data scientist reaches for first (cross_val_score, GridSearchCV, Pipeline, clone).

Checks expected to fail, and why (each is a deliberate difference, not an oversight):

* ``check_do_not_raise_errors_in_init_or_set_params``: ``NMTuneClassifier`` validates its
  configuration in ``__init__`` / ``set_params`` and raises ``ConfigError`` at once (the
  service relies on it to reject a bad request before a job is queued); scikit-learn defers
  validation to ``fit``.
* ``check_estimators_unfitted``: predicting before ``fit`` raises
  ``tuner.errors.NotFittedError`` (a ValueError and an AttributeError, like scikit-learn's
  own); the check wants scikit-learn's class itself, which tuner cannot subclass without
  depending on scikit-learn. ``sklearn.utils.validation.check_is_fitted`` works
  (``__sklearn_is_fitted__``).

Skipped by scikit-learn itself here: array-API input (SCIPY_ARRAY_API unset) and pandas input
(pandas is not installed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nmtune.tuner import NMTuneClassifier
from nmtune.tuner.errors import NotFittedError, TunerInputError

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone, is_classifier  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402
from sklearn.utils.validation import check_is_fitted  # noqa: E402

#: Fast configurations (the checks fit dozens of times on tiny data).
FAST: dict[str, Any] = {"device": "cpu", "lr_cs": 3, "cv_folds": 2}
TORCH_FAST: dict[str, Any] = {**FAST, "epochs": 3, "lp_epochs": 3, "min_steps": 30}

EXPECTED_FAILED = {
    "check_do_not_raise_errors_in_init_or_set_params": (
        "configuration is validated in __init__ / set_params (fail fast, ConfigError)"
    ),
    "check_estimators_unfitted": (
        "raises tuner.errors.NotFittedError (ValueError + AttributeError), not sklearn's class"
    ),
}


@parametrize_with_checks(
    [NMTuneClassifier(method="lr", **FAST), NMTuneClassifier(method="lp", **TORCH_FAST)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_sklearn_estimator_checks(estimator: Any, check: Any) -> None:
    check(estimator)


def data(n: int = 120, seed: int = 0) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, 8)) * 3.0
    y = rng.integers(0, 3, n)
    return (centers[y] + rng.normal(size=(n, 8))).astype(np.float32), y


def test_cross_val_score_and_grid_search() -> None:
    x, y = data()
    clf = NMTuneClassifier(method="lr", **FAST)
    assert is_classifier(clf)
    scores = cross_val_score(clf, x, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.8
    grid = GridSearchCV(
        NMTuneClassifier(method="lp", **TORCH_FAST), {"lp_lr": [1e-3, 1e-2]}, cv=2
    ).fit(x, y)
    assert grid.best_params_["lp_lr"] in (1e-3, 1e-2)
    assert grid.best_estimator_.get_params()["epochs"] == 3
    pipe = make_pipeline(StandardScaler(), NMTuneClassifier(method="lr", **FAST)).fit(x, y)
    assert pipe.score(x, y) > 0.8


def test_fitted_state_and_numeric_labels() -> None:
    x, y = data()
    clf = NMTuneClassifier(method="lr", **FAST)
    with pytest.raises(NotFittedError) as e:
        clf.predict(x)
    assert isinstance(e.value, TunerInputError | AttributeError | ValueError)
    with pytest.raises(sklearn.exceptions.NotFittedError):
        check_is_fitted(clf)
    clone(clf).fit(x, y.astype(np.float64))  # integral float labels are class indices
    fitted = clf.fit(x, y.astype(np.float64))
    check_is_fitted(fitted)
    assert fitted.classes_.tolist() == [0, 1, 2] and fitted.n_features_in_ == 8
    with pytest.raises(TunerInputError, match="Unknown label type: continuous"):
        clf.fit(x, y + 0.5)
    with pytest.warns(UserWarning, match="column-vector y"):
        clf.fit(x, y[:, None])
    with pytest.raises(TunerInputError, match="is expecting 8 features"):
        fitted.predict(x[:, :3])
    np.testing.assert_array_equal(clf.fit_transform(x, y), x)  # lr: z = x
