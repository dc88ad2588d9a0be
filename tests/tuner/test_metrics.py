"""Own metrics cross-checked against scikit-learn (test-only dependency)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from nmtune.tuner import classification_metrics


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("strings", [False, True])
def test_metrics_match_sklearn(seed: int, strings: bool) -> None:
    rng = np.random.default_rng(seed)
    c = 2 + seed
    yt = rng.integers(0, c, 200)
    yp = np.where(rng.random(200) < 0.6, yt, rng.integers(0, c, 200))
    if strings:
        names = np.array([f"class_{i}" for i in range(c)])
        yt, yp = names[yt], names[yp]
    m = classification_metrics(yt, yp)
    labels = sorted(set(yt.tolist()) | set(yp.tolist()))
    assert m["labels"] == labels
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(yt, yp))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(yt, yp, average="macro"))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(yt, yp))
    assert m["confusion_matrix"] == skm.confusion_matrix(yt, yp, labels=labels).tolist()
    p, r, f, s = skm.precision_recall_fscore_support(yt, yp, labels=labels, zero_division=0)
    for i, lab in enumerate(labels):
        pc = m["per_class"][lab]
        assert (pc["precision"], pc["recall"], pc["f1"]) == pytest.approx((p[i], r[i], f[i]))
        assert pc["support"] == s[i]
    json.dumps(m)


def test_degenerate_cases() -> None:
    m = classification_metrics([0, 1, 1, 0], [1, 1, 1, 1])
    assert m["mcc"] == 0.0 == skm.matthews_corrcoef([0, 1, 1, 0], [1, 1, 1, 1])
    assert m["per_class"][0]["precision"] == 0.0
    m2 = classification_metrics(["a", "b"], ["a", "b"], labels=["b", "a", "c"])
    assert m2["labels"] == ["b", "a", "c"] and m2["per_class"]["c"]["support"] == 0
    assert m2["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]
